package migrate

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/identity"
)

func TestTraitValue(t *testing.T) {
	s := func(v string) *string { return &v }
	i := func(v int64) *int64 { return &v }
	f := func(v float64) *float64 { return &v }
	b := func(v bool) *bool { return &v }
	tests := []struct {
		name string
		c    traitColumns
		want string // item JSON of the value
		err  bool
	}{
		{"string", traitColumns{ValueType: s("unicode"), StringValue: s("hi")}, `"hi"`, false},
		{"integer string", traitColumns{ValueType: s("unicode"), StringValue: s("007")}, `7`, false},
		{"negative zero string", traitColumns{ValueType: s("unicode"), StringValue: s("-0")}, `0`, false},
		{"decimal string", traitColumns{ValueType: s("unicode"), StringValue: s("1.50")}, `1.5`, false},
		{"exponent string stays", traitColumns{ValueType: s("unicode"), StringValue: s("1e5")}, `"1e5"`, false},
		{"plus stays", traitColumns{ValueType: s("unicode"), StringValue: s("+1")}, `"+1"`, false},
		{"space stays", traitColumns{ValueType: s("unicode"), StringValue: s(" 1")}, `" 1"`, false},
		{"trailing dot stays", traitColumns{ValueType: s("unicode"), StringValue: s("1.")}, `"1."`, false},
		{"leading dot stays", traitColumns{ValueType: s("unicode"), StringValue: s(".5")}, `".5"`, false},
		{"NaN string stays", traitColumns{ValueType: s("unicode"), StringValue: s("NaN")}, `"NaN"`, false},
		{"big integer string", traitColumns{ValueType: s("unicode"), StringValue: s("123456789012345678901234567890")}, `123456789012345678901234567890`, false},
		{"int", traitColumns{ValueType: s("int"), IntegerValue: i(-3)}, `-3`, false},
		{"int column NULL", traitColumns{ValueType: s("int")}, `""`, false},
		{"bool true stays a bool", traitColumns{ValueType: s("bool"), BooleanValue: b(true)}, `true`, false},
		{"float", traitColumns{ValueType: s("float"), FloatValue: f(0.1)}, `0.1`, false},
		{"whole float keeps its point", traitColumns{ValueType: s("float"), FloatValue: f(4)}, `4.0`, false},
		{"large float", traitColumns{ValueType: s("float"), FloatValue: f(1e16)}, `1e+16`, false},
		{"NaN float", traitColumns{ValueType: s("float"), FloatValue: f(math.NaN())}, ``, true},
		{"Inf float", traitColumns{ValueType: s("float"), FloatValue: f(math.Inf(-1))}, ``, true},
		{"NULL value_type", traitColumns{StringValue: s("x")}, `""`, false},
		{"unknown value_type", traitColumns{ValueType: s("decimal"), StringValue: s("x")}, `""`, false},
		{"type picks the column", traitColumns{ValueType: s("int"), StringValue: s("9"), IntegerValue: i(1)}, `1`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := traitValue(tt.c)
			if (err != nil) != tt.err {
				t.Fatalf("err %v", err)
			}
			if tt.err {
				if !errors.Is(err, errNonFinite) {
					t.Errorf("err %v is not errNonFinite", err)
				}
				return
			}
			if got := string(identity.ValueJSON(v)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestValueJSON(t *testing.T) {
	s := func(v string) *string { return &v }
	i := func(v int64) *int64 { return &v }
	b := func(v bool) *bool { return &v }
	tests := []struct {
		name string
		c    valueColumns
		want string
	}{
		{"unicode, no coercion", valueColumns{Type: s("unicode"), StringValue: s("123")}, `"123"`},
		{"int", valueColumns{Type: s("int"), IntegerValue: i(5)}, `5`},
		{"bool", valueColumns{Type: s("bool"), BooleanValue: b(false)}, `false`},
		{"NULL type reads string_value", valueColumns{StringValue: s("x")}, `"x"`},
		{"unknown type reads string_value", valueColumns{Type: s("float"), StringValue: s("1.5")}, `"1.5"`},
		{"NULL column", valueColumns{Type: s("int")}, ``},
		{"no value row", valueColumns{}, ``},
		{"escaping", valueColumns{Type: s("unicode"), StringValue: s(`<"a">`)}, `"<\"a\">"`},
	}
	for _, tt := range tests {
		if got := string(valueJSON(tt.c)); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestIsoformat(t *testing.T) {
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2024, 3, 19, 9, 41, 22, 0, time.UTC), "2024-03-19T09:41:22+00:00"},
		{time.Date(2024, 3, 19, 9, 41, 22, 123456000, time.UTC), "2024-03-19T09:41:22.123456+00:00"},
		{time.Date(2024, 3, 19, 9, 41, 22, 500000000, time.UTC), "2024-03-19T09:41:22.500000+00:00"},
		{time.Date(2024, 3, 19, 11, 41, 22, 1000, time.FixedZone("x", 2*3600)), "2024-03-19T09:41:22.000001+00:00"},
	}
	for _, tt := range tests {
		if got := isoformat(tt.in); got != tt.want {
			t.Errorf("%v: %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestDerivedUUID(t *testing.T) {
	a, b := derivedUUID("x:1"), derivedUUID("x:2")
	if a != derivedUUID("x:1") || a == b || len(a) != 36 || a[14] != '4' || !strings.ContainsRune("89ab", rune(a[19])) {
		t.Errorf("%s %s", a, b)
	}
}

func TestIdentifierProblem(t *testing.T) {
	tests := []struct {
		id   string
		want string
	}{
		{"alice", ""},
		{strings.Repeat("x", 1024), ""},
		{strings.Repeat("x", 1025), ReasonTooLongChars},
		{strings.Repeat("é", 512), ""},
		{strings.Repeat("é", 513), ReasonTooLongBytes},
		{strings.Repeat("é", 1025), ReasonTooLongChars},
		{"", "empty identifier"},
		{"a\xffb", "identifier is not valid UTF-8"},
	}
	for _, tt := range tests {
		if got := identifierProblem(tt.id); got != tt.want {
			t.Errorf("%.20q…: %q, want %q", tt.id, got, tt.want)
		}
	}
}

func TestProgressLogLines(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	p := newProgress(context.Background(), &buf, log, 10*time.Millisecond, 100, false)
	p.add(40)
	time.Sleep(50 * time.Millisecond)
	p.finish(true)
	out := buf.String()
	if !strings.Contains(out, "migrate: progress") || !strings.Contains(out, "done=40") || !strings.Contains(out, "total=100") || !strings.Contains(out, "eta=") {
		t.Errorf("log: %s", out)
	}
}
