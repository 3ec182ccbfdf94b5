package engine

import (
	"encoding/json"
	"math"
	"math/big"
	"testing"
)

// Unit tests for the Python-compatible helpers (spec §2.7, §2.10), value
// normalisation (§2.4) and SemVer parsing/precedence (§2.6.1).

func TestPercentageVectors(t *testing.T) {
	// §2.7 test vectors.
	for _, tc := range []struct {
		a, b string
		want float64
	}{
		{"78986", "test_env_foobar", 54.53090618123625},
		{"12345", "test_env_foobar", 51.990398079615915},
		{"78986", "32103813", 49.27985597119424},
		{"1016366", "8AYnz4q3KEfT5DFtnramnP_user-123", 39.19783956791358},
		{"company_segment", "test_env_user_without_company", 26.26525305061012},
		{"1", "True", 23.59471894378876},
		// m == 9998 on the first pass: re-hashed as "1,user_22522,1,user_22522".
		{"1", "user_22522", 5.781156231246249},
		// Found by search: m == 4999 and m == 0, the "round" values.
		{"mvkey", "env_user_17328", 50.0},
		{"mvkey", "env_user_5105", 0.0},
		{"seg", "14516", 0.0},
	} {
		if got := percentage(tc.a, tc.b); got != tc.want {
			t.Errorf("percentage(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	// The m values quoted by the spec, recovered from p.
	for _, tc := range []struct {
		a, b string
		m    float64
	}{
		{"78986", "test_env_foobar", 5452},
		{"12345", "test_env_foobar", 5198},
		{"78986", "32103813", 4927},
		{"1016366", "8AYnz4q3KEfT5DFtnramnP_user-123", 3919},
		{"1", "user_22522", 578},
	} {
		if got, want := percentage(tc.a, tc.b), (tc.m/9998.0)*100.0; got != want {
			t.Errorf("percentage(%q, %q) = %v, want m=%v (%v)", tc.a, tc.b, got, tc.m, want)
		}
	}
}

func TestPercentage3MatchesConcatenation(t *testing.T) {
	// percentage3 hashes a,b+c without building b+c; it must agree with
	// percentage on the concatenation, including the re-hash path and keys
	// longer than its stack buffer.
	long := string(make([]byte, 300))
	for _, tc := range [][3]string{
		{"78986", "test_env_", "foobar"},
		{"1", "user_", "22522"},
		{"1", "", "user_22522"},
		{"mvkey", "env_", "user_17328"},
		{"k", "env_", long},
		{"", "", ""},
		{"ключ", "環境_", "ユーザー"},
	} {
		if got, want := percentage3(tc[0], tc[1], tc[2]), percentage(tc[0], tc[1]+tc[2]); got != want {
			t.Errorf("percentage3(%q, %q, %q) = %v, want %v", tc[0], tc[1], tc[2], got, want)
		}
	}
	if p := percentage("1", "user_22522"); p < 0 || p >= 100 {
		t.Errorf("percentage out of [0,100): %v", p)
	}
}

// Variables, so that 0.1+0.2 is computed in float64 rather than folded
// exactly as an untyped constant.
var pointOne, pointTwo = 0.1, 0.2

func TestPyFloatString(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{35.0, "35.0"},
		{0.0001, "0.0001"},
		{1e-05, "1e-05"},
		{1e+16, "1e+16"},
		{123456789.123, "123456789.123"},
		{math.Copysign(0, -1), "-0.0"},
		{0, "0.0"},
		{math.Inf(1), "inf"},
		{math.Inf(-1), "-inf"},
		{math.NaN(), "nan"},
		{1.5, "1.5"},
		{pointOne + pointTwo, "0.30000000000000004"}, // float64 addition, not a constant
		{1e22, "1e+22"},
		{12345678901234567.0, "1.2345678901234568e+16"},
		{9999999999999998.0, "9999999999999998.0"}, // E = 15: still positional
		{100.0, "100.0"},
		{-35.5, "-35.5"},
		{0.00012, "0.00012"},
		{0.000012, "1.2e-05"},
		{-1e-05, "-1e-05"},
		{1e100, "1e+100"},
		{1.5e-300, "1.5e-300"},
		{5e-324, "5e-324"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{54.54, "54.54"},
		{2.5e16, "2.5e+16"},
	} {
		if got := pyFloatString(tc.f); got != tc.want {
			t.Errorf("pyFloatString(%v) = %q, want %q", tc.f, got, tc.want)
		}
		if got := Float(tc.f).PyString(); got != tc.want {
			t.Errorf("Float(%v).PyString() = %q, want %q", tc.f, got, tc.want)
		}
	}
	// appendPyFloat appends: it must keep what is already in dst.
	if got := string(appendPyFloat([]byte("x="), 35)); got != "x=35.0" {
		t.Errorf("appendPyFloat kept prefix wrong: %q", got)
	}
}

func TestPyStringOtherKinds(t *testing.T) {
	big1, _ := new(big.Int).SetString("-123456789012345678901234567890", 10)
	for _, tc := range []struct {
		v    Value
		want string
	}{
		{String("abc"), "abc"},
		{String(""), ""},
		{Int(0), "0"},
		{Int(-42), "-42"},
		{Int(math.MinInt64), "-9223372036854775808"},
		{Value{Kind: KindInt, Big: big1}, "-123456789012345678901234567890"},
		{Bool(true), "True"},
		{Bool(false), "False"},
		{None(), "None"},
	} {
		if got := tc.v.PyString(); got != tc.want {
			t.Errorf("%+v.PyString() = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestPyInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want string // decimal text of the result
	}{
		{"10", true, "10"},
		{" 10 ", true, "10"},
		{"\t\n10\r\n", true, "10"},
		{"+10", true, "10"},
		{"-10", true, "-10"},
		{"1_0", true, "10"},
		{"1_000_000", true, "1000000"},
		{"007", true, "7"},
		{"-0", true, "0"},
		{"00", true, "0"},
		{"9223372036854775807", true, "9223372036854775807"},
		{"9223372036854775808", true, "9223372036854775808"},
		{"-9223372036854775809", true, "-9223372036854775809"},
		{"123456789012345678901234567890", true, "123456789012345678901234567890"},
		{" -1_2_3 ", true, "-123"},
		{"1__0", false, ""},
		{"_10", false, ""},
		{"10_", false, ""},
		{"+_10", false, ""},
		{"1.5", false, ""},
		{"5.0", false, ""},
		{"1e5", false, ""},
		{"", false, ""},
		{"   ", false, ""},
		{"+", false, ""},
		{"-", false, ""},
		{"+-1", false, ""},
		{"--1", false, ""},
		{"0x10", false, ""},
		{"1 0", false, ""},
		{"true", false, ""},
		{"True", false, ""},
		{"1.0.0:semver", false, ""},
	} {
		i, b, ok := pyInt(tc.in)
		if ok != tc.ok {
			t.Errorf("pyInt(%q) ok = %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		got := Value{Kind: KindInt, Int: i, Big: b}.PyString()
		if got != tc.want {
			t.Errorf("pyInt(%q) = %s, want %s", tc.in, got, tc.want)
		}
		if b != nil && b.IsInt64() {
			t.Errorf("pyInt(%q) returned a big.Int for an int64 value", tc.in)
		}
	}
}

func TestPyFloat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want float64
	}{
		{"1.5", true, 1.5},
		{" 1.5 ", true, 1.5},
		{"+1.5", true, 1.5},
		{"-1.5", true, -1.5},
		{"10", true, 10},
		{".5", true, 0.5},
		{"5.", true, 5},
		{"-.5", true, -0.5},
		{"1e5", true, 1e5},
		{"1E5", true, 1e5},
		{"1e+5", true, 1e5},
		{"1e-5", true, 1e-5},
		{"1.5e3", true, 1500},
		{".5e1", true, 5},
		{"5.e1", true, 50},
		{"1_0.5", true, 10.5},
		{"1_0.2_5", true, 10.25},
		{"1e1_0", true, 1e10},
		{"inf", true, math.Inf(1)},
		{"INF", true, math.Inf(1)},
		{"+Inf", true, math.Inf(1)},
		{"-inf", true, math.Inf(-1)},
		{"infinity", true, math.Inf(1)},
		{"InFiNiTy", true, math.Inf(1)},
		{"-Infinity", true, math.Inf(-1)},
		{"1e400", true, math.Inf(1)},
		{"-1e400", true, math.Inf(-1)},
		{"1e-400", true, 0},
		{"54.53090618123625", true, 54.53090618123625},
		{"1__0", false, 0},
		{"_1", false, 0},
		{"1_", false, 0},
		{"1_.5", false, 0},
		{"1._5", false, 0},
		{"1_e5", false, 0},
		{"1e_5", false, 0},
		{"e5", false, 0},
		{".e5", false, 0},
		{".", false, 0},
		{"-.", false, 0},
		{"1e", false, 0},
		{"1e+", false, 0},
		{"", false, 0},
		{"  ", false, 0},
		{"+", false, 0},
		{"0x10", false, 0},
		{"0x1.8p0", false, 0},
		{"0X1P-2", false, 0},
		{"infinit", false, 0},
		{"in f", false, 0},
		{"1.0.0", false, 0},
		{"abc", false, 0},
		{"1,5", false, 0},
	} {
		got, ok := pyFloat(tc.in)
		if ok != tc.ok {
			t.Errorf("pyFloat(%q) ok = %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if ok && got != tc.want {
			t.Errorf("pyFloat(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	for _, s := range []string{"nan", "NaN", "NAN", "-nan", "+nan", " nan "} {
		if got, ok := pyFloat(s); !ok || !math.IsNaN(got) {
			t.Errorf("pyFloat(%q) = %v, %v; want NaN", s, got, ok)
		}
	}
}

func TestPyMod(t *testing.T) {
	for _, tc := range []struct{ x, d, want float64 }{
		{35, 4, 3},
		{-3, 4, 1},
		{3, -4, -1},
		{-3, -4, -3},
		{2, 2, 0},
		{-4, 4, 0},
		{34.2, 4, math.Mod(34.2, 4)},
		{5, math.Inf(1), 5},
		{1, 1, 0},
	} {
		if got := pyMod(tc.x, tc.d); got != tc.want {
			t.Errorf("pyMod(%v, %v) = %v, want %v", tc.x, tc.d, got, tc.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	bigV, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	for _, tc := range []struct {
		in   Value
		want Value
	}{
		{String("123"), Int(123)},
		{String("-123"), Int(-123)},
		{String("-0"), Int(0)},
		{String("0042"), Int(42)},
		{String("0"), Int(0)},
		{String("1.50"), Float(1.5)},
		{String("-1.5"), Float(-1.5)},
		{String("10.0"), Float(10)},
		{String("007.000"), Float(7)},
		{String("123456789012345678901234567890"), Value{Kind: KindInt, Big: bigV}},
		{String("1."), String("1.")},
		{String(".5"), String(".5")},
		{String("-.5"), String("-.5")},
		{String("1e5"), String("1e5")},
		{String("-"), String("-")},
		{String(""), String("")},
		{String("+5"), String("+5")},
		{String("--5"), String("--5")},
		{String(" 5"), String(" 5")},
		{String("5 "), String("5 ")},
		{String("5\n"), String("5\n")},
		{String("1_000"), String("1_000")},
		{String("1.2.3"), String("1.2.3")},
		{String("12a"), String("12a")},
		{String("0x10"), String("0x10")},
		{String("١٢٣"), String("١٢٣")}, // Arabic-Indic digits
		{String("１２３"), String("１２３")}, // full-width digits
		{String("²"), String("²")},
		{String("inf"), String("inf")},
		{String("nan"), String("nan")},
		{Int(5), Int(5)},
		{Float(1.5), Float(1.5)},
		{Bool(true), Bool(true)},
		{None(), None()},
	} {
		got := normalize(tc.in)
		if !sameValue(got, tc.want) {
			t.Errorf("normalize(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	if v := normalize(String("-99999999999999999999")); v.Kind != KindInt || v.Big == nil || v.Big.String() != "-99999999999999999999" {
		t.Errorf("normalize big negative = %+v", v)
	}
}

func sameValue(a, b Value) bool {
	if a.Kind != b.Kind || a.Str != b.Str || a.Int != b.Int {
		return false
	}
	if (a.Big == nil) != (b.Big == nil) || (a.Big != nil && a.Big.Cmp(b.Big) != 0) {
		return false
	}
	if a.Float != b.Float && !(math.IsNaN(a.Float) && math.IsNaN(b.Float)) {
		return false
	}
	return true
}

func TestNumberValueAndValueFromJSON(t *testing.T) {
	bigV, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	for _, tc := range []struct {
		lit  string
		want Value
	}{
		{"10", Int(10)},
		{"-0", Int(0)},
		{"10.0", Float(10)},
		{"1e2", Float(100)},
		{"1E2", Float(100)},
		{"-1.5", Float(-1.5)},
		{"1e400", Float(math.Inf(1))},
		{"123456789012345678901234567890", Value{Kind: KindInt, Big: bigV}},
	} {
		got, ok := NumberValue(tc.lit)
		if !ok || !sameValue(got, tc.want) {
			t.Errorf("NumberValue(%q) = %+v, %v; want %+v", tc.lit, got, ok, tc.want)
		}
		if got := ValueFromJSON(json.Number(tc.lit)); !sameValue(got, tc.want) {
			t.Errorf("ValueFromJSON(Number %q) = %+v; want %+v", tc.lit, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   any
		want Value
	}{
		{nil, None()},
		{"x", String("x")},
		{"123", String("123")}, // normalisation happens later, not here
		{true, Bool(true)},
		{false, Bool(false)},
		{map[string]any{"a": json.Number("1")}, String("{'a': 1}")},
		{map[string]any{"b": "it's", "a": nil}, String(`{'a': None, 'b': "it's"}`)},
		{[]any{json.Number("1"), json.Number("2")}, String("[1, 2]")},
		{[]any{"a", true, json.Number("1.0")}, String("['a', True, 1.0]")},
		{map[string]any{}, String("{}")},
	} {
		if got := ValueFromJSON(tc.in); !sameValue(got, tc.want) {
			t.Errorf("ValueFromJSON(%#v) = %+v; want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseSemver(t *testing.T) {
	valid := []string{
		"0.0.0", "1.2.3", "10.20.30", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-0.3.7", "1.0.0-x.7.z.92",
		"1.0.0-x-y-z.--", "1.0.0-alpha+001", "1.0.0+20130313144700", "1.0.0-beta+exp.sha.5114f85",
		"1.0.0+21AF26D3----117B344092BD", "1.2.3-pre.2+build.4", "1.0.0-0A.is.legal", "1.0.0-alpha-1",
		"99999999999999999999.0.0", "1.0.0\n", "1.0.0-rc.1\n",
	}
	for _, s := range valid {
		if _, ok := parseSemver(s); !ok {
			t.Errorf("parseSemver(%q) failed, want ok", s)
		}
	}
	invalid := []string{
		"", "1", "1.2", "1.2.3.4", "v1.2.3", "V1.2.3", "01.2.3", "1.02.3", "1.2.03", "1.2.3-01",
		"1.2.3-", "1.2.3+", "1.2.3-alpha..1", "1.2.3+a..b", "1.2.3-alpha_beta", "1.2.3+build+x",
		" 1.2.3", "1.2.3 ", "1 .2.3", "1.2.3\n\n", "\n1.2.3", "1.2.-3", "-1.2.3", "a.b.c", "1.2.3-pre!",
		"not_a_semver", "x", "1.0", "1.2.3-é", "1.2.3\r\n",
	}
	for _, s := range invalid {
		if _, ok := parseSemver(s); ok {
			t.Errorf("parseSemver(%q) ok, want failure", s)
		}
	}
}

func TestCompareSemver(t *testing.T) {
	mustSemver := func(s string) semver {
		v, ok := parseSemver(s)
		if !ok {
			t.Fatalf("parseSemver(%q) failed", s)
		}
		return v
	}
	// SemVer 2.0.0 §11 precedence chain, plus numeric and length rules.
	chain := []string{
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0-rc.2", "1.0.0-rc.3", "1.0.0-rc.9", "1.0.0-rc.10", "1.0.0",
		"1.0.1", "1.2.3-pre.2+build.4", "1.2.4", "1.10.0", "2.0.0", "9.0.0", "10.0.0",
		"99999999999999999999.0.0",
	}
	for i := range chain {
		for j := range chain {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := compareSemver(mustSemver(chain[i]), mustSemver(chain[j])); got != want {
				t.Errorf("compareSemver(%s, %s) = %d, want %d", chain[i], chain[j], got, want)
			}
		}
	}
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.0.0+a", "1.0.0+b", 0}, // build metadata ignored
		{"1.0.0-rc.1+x", "1.0.0-rc.1", 0},
		{"1.0.0\n", "1.0.0", 0},
		{"1.0.0-1", "1.0.0-a", -1}, // numeric < alphanumeric
		{"1.0.0-A", "1.0.0-a", -1}, // ASCII order
		// "a-b" is one identifier and "a-b" > "a", so the shorter version wins.
		{"1.0.0-a-b", "1.0.0-a.b", 1},
		{"1.0.0-2", "1.0.0-10", -1},
		{"1.0.0-alpha", "1.0.0-alpha.0", -1},
	} {
		got := compareSemver(mustSemver(tc.a), mustSemver(tc.b))
		if got != tc.want {
			t.Errorf("compareSemver(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
