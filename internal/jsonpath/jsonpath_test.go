package jsonpath

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func decode(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad test JSON %q: %v", s, err)
	}
	return v
}

const identityDoc = `{
	"identity": {
		"identifier": "user-1",
		"traits": {
			"age": 42,
			"my-trait": "hyphen",
			"tamaño": "grande",
			"サイズ": "大",
			"[$the.size$]": "weird",
			"a b": "space",
			"quote'd": "single",
			"dq\"": "double",
			"tab\t": "tab",
			"😀": "emoji",
			"é": "e-acute"
		}
	}
}`

type queryCase struct {
	path string
	doc  string // JSON
	want string // JSON array of the expected nodes, in order
}

func runQueries(t *testing.T, cases []queryCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			p, err := Parse(tc.path)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.path, err)
			}
			root := decode(t, tc.doc)
			want := decode(t, tc.want).([]any)
			got := p.All(root)
			if len(got) == 0 && len(want) == 0 {
				got = want
			}
			if !reflect.DeepEqual(got, want) {
				gj, _ := json.Marshal(got)
				t.Fatalf("All = %s, want %s", gj, tc.want)
			}
			first, ok := p.First(root)
			if ok != (len(want) > 0) || ok && !reflect.DeepEqual(first, want[0]) {
				t.Fatalf("First = %v, %v; want first of %s", first, ok, tc.want)
			}
			// The canonical form must parse to a query with the same
			// results and the same canonical form.
			p2, err := Parse(p.String())
			if err != nil {
				t.Fatalf("reparse of %q: %v", p.String(), err)
			}
			if p2.String() != p.String() {
				t.Fatalf("String not stable: %q then %q", p.String(), p2.String())
			}
			if got2 := p2.All(root); len(got2) != len(want) {
				t.Fatalf("reparsed %q returned %d nodes, want %d", p.String(), len(got2), len(want))
			}
		})
	}
}

func TestIdentityPaths(t *testing.T) {
	runQueries(t, []queryCase{
		{`$.identity.traits.age`, identityDoc, `[42]`},
		{`$.identity.traits.my-trait`, identityDoc, `["hyphen"]`},
		{`$.identity.traits.tamaño`, identityDoc, `["grande"]`},
		{`$.identity.traits.サイズ`, identityDoc, `["大"]`},
		{`$.identity.traits.é`, identityDoc, `["e-acute"]`},
		{`$.identity.traits['[$the.size$]']`, identityDoc, `["weird"]`},
		{`$.identity.traits["a b"]`, identityDoc, `["space"]`},
		{`$.identity.traits['quote\'d']`, identityDoc, `["single"]`},
		{`$.identity.traits["quote'd"]`, identityDoc, `["single"]`},
		{`$.identity.traits["dq\""]`, identityDoc, `["double"]`},
		{`$.identity.traits['dq"']`, identityDoc, `["double"]`},
		{`$.identity.traits['tab\t']`, identityDoc, `["tab"]`},
		{`$.identity.traits['tab\u0009']`, identityDoc, `["tab"]`},
		{`$.identity.traits['😀']`, identityDoc, `["emoji"]`},
		{`$.identity.traits['\uD83D\uDE00']`, identityDoc, `["emoji"]`},
		{`$.identity.traits['\ud83d\ude00']`, identityDoc, `["emoji"]`},
		{`$.identity.traits['\u00e9']`, identityDoc, `["e-acute"]`},
		{`$["identity"]['traits']["age"]`, identityDoc, `[42]`},
		{`$.identity.traits.missing`, identityDoc, `[]`},
		{`$.identity.traits.age.deeper`, identityDoc, `[]`},
		{`$.identity.identifier`, identityDoc, `["user-1"]`},
		{`$`, `{"a":1}`, `[{"a":1}]`},
		{`$ .a`, `{"a":1}`, `[1]`},
		{`$.a [0]`, `{"a":[1]}`, `[1]`},
		{`$[ 'a' , 'b' ]`, `{"a":1,"b":2}`, `[1,2]`},
		{`$.x-1`, `{"x-1":1}`, `[1]`},
		{`$._`, `{"_":1}`, `[1]`},
		{`$.a1`, `{"a1":1}`, `[1]`},
		{`$.true`, `{"true":1}`, `[1]`},
		{`$..null`, `{"null":1}`, `[1]`},
	})
}

// invalidQueries must all fail to parse; the fuzz target also uses them as seeds.
var invalidQueries = []string{
	``,
	` `,
	`a`,
	`$.`,
	`$..`,
	`$...a`,
	`$.identity. traits`,
	`$.  i am not" a valid jsonpath`,
	`$.identity.traits.1abc`,
	`$.identity.traits.-a`,
	`$.a `,
	`$.a` + "\n",
	`$ `,
	` $.a`,
	"\t$.a",
	`$.😀`,
	`$.a😀`,
	`$a`,
	`$$`,
	`@.a`,
	`$.a.`,
	`$[`,
	`$[]`,
	`$[,]`,
	`$['a',]`,
	`$['a'`,
	`$['a]`,
	`$["a']`,
	`$['a\"']`,
	`$["a\'"]`,
	`$['\x']`,
	`$['\u12']`,
	`$['\u12G4']`,
	`$['\uD800']`,
	`$['\uDC00']`,
	`$['\uD800\u0041']`,
	"$['a\nb']",
	"$['\x01']",
	`$[01]`,
	`$[-0]`,
	`$[-]`,
	`$[1.0]`,
	`$[9007199254740992]`,
	`$[-9007199254740992]`,
	`$[1:2:3:4]`,
	`$[::-0]`,
	`$[a]`,
	`$[?]`,
	`$[?@.a==]`,
	`$[?@.a=1]`,
	`$[?@.a===1]`,
	`$[?1]`,
	`$[?'a']`,
	`$[?true]`,
	`$[?null]`,
	`$[?@.a==1==1]`,
	`$[?@.* == 1]`,
	`$[?@..a == 1]`,
	`$[?@['a','b'] == 1]`,
	`$[?@[0:1] == 1]`,
	`$[?(@.a]`,
	`$[?@.a)]`,
	`$[?@.a & @.b]`,
	`$[?@.a | @.b]`,
	`$[?@.a == 01]`,
	`$[?@.a == 1.]`,
	`$[?@.a == .5]`,
	`$[?@.a == 1e]`,
	`$[?@.a == --1]`,
	`$[?@.a == -01]`,
	`$[?@.a == truex]`,
	`$[?@.a == True]`,
	`$[?!@.a == 1]`,
	`$[?length(@.*) < 3]`,
	`$[?count(1) == 1]`,
	`$[?count(foo(@.*)) == 1]`,
	`$[?match(@.timezone, 'Europe/.*') == true]`,
	`$[?value(@..color)]`,
	`$[?length(@.a)]`,
	`$[?count(@.a)]`,
	`$[?bar(@.a)]`,
	`$[?length()]`,
	`$[?length(@.a, @.b) == 1]`,
	`$[?match(@.a) ]`,
	`$[?length (@.a) == 1]`,
	`$[?length(@.a == 1) == 1]`,
	`$[?count(@.a == 1) == 1]`,
	`$[?length(!@.a) == 1]`,
	`$[?(@.a) == 1]`,
	`$[?match(@.a, 'a'), 0`,
	`$[?@.a == 1]x`,
	"$.a\xff",
	`$[?` + strings.Repeat("(", 1000) + `@` + strings.Repeat(")", 1000) + `]`,
	`$[?` + strings.Repeat("length(", 1000) + `@` + strings.Repeat(")", 1000) + ` == 1]`,
}

func TestSyntaxErrors(t *testing.T) {
	for _, s := range invalidQueries {
		p, err := Parse(s)
		if err == nil {
			t.Errorf("Parse(%q) = %q, want syntax error", s, p)
			continue
		}
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) error %T is not *SyntaxError", s, err)
		} else if se.Offset < 0 || se.Offset > len(s) {
			t.Errorf("Parse(%q) error offset %d out of range", s, se.Offset)
		}
	}
}

// validQueries must parse; their results are covered elsewhere.
var validQueries = []string{
	`$[?@.a == -0]`,
	`$[?@.a == 1E+2]`,
	`$[?@.a == 1.5e-3]`,
	`$[?@.a == 9007199254740993]`,
	`$[?@.a == 1e400]`,
	`$[?!(@.a == 1)]`,
	`$[?!@.a]`,
	`$[? @.a ]`,
	`$[ ?@.a , 0 ]`,
	`$[?@ .a]`,
	`$[?length( @.a ) == 1]`,
	`$[?match(@.a, "a")]`,
	`$[?search(@.a, $.pattern)]`,
	`$[?value(@..color) == "red"]`,
	`$[?count(@.*) == 1]`,
	`$[?length(@) < 3]`,
	`$[?$.a]`,
	`$[?@[?@.b]]`,
	`$[?@.a==true&&@.b==false||@.c==null]`,
	"$[?@.a\n==\t1]",
	`$[9007199254740991]`,
	`$[-9007199254740991]`,
	`$[1 : 2 : 3]`,
	`$[::]`,
	`$[:]`,
	`$[1:]`,
	`$['\b\f\n\r\t\/\\']`,
	`$["\u0000"]`,
	`$..[*]`,
	`$.*`,
	`$[*]`,
	`$.ￜ`,
}

func TestValidSyntax(t *testing.T) {
	for _, s := range validQueries {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		path  string
		names []string
		ok    bool
	}{
		{`$`, []string{}, true},
		{`$.a.b['c']`, []string{"a", "b", "c"}, true},
		{`$.identity.traits.age`, []string{"identity", "traits", "age"}, true},
		{`$["a"][ 'b' ]`, []string{"a", "b"}, true},
		{`$.a[0]`, nil, false},
		{`$..a`, nil, false},
		{`$['a','b']`, nil, false},
		{`$.*`, nil, false},
		{`$[?@.a]`, nil, false},
	} {
		p := MustParse(tc.path)
		names, ok := p.Names()
		if ok != tc.ok || !slices.Equal(names, tc.names) {
			t.Errorf("%s: Names() = %q, %v; want %q, %v", tc.path, names, ok, tc.names, tc.ok)
		}
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`$.a.b`, `$['a']['b']`},
		{`$..a`, `$..['a']`},
		{`$.*`, `$[*]`},
		{`$..*`, `$..[*]`},
		{`$[1:2, ::-1, 3:, :4]`, `$[1:2, ::-1, 3:, :4]`},
		{`$["it's"]`, `$['it\'s']`},
		{"$['a\\u0001\\n\\\\']", `$['a\u0001\n\\']`},
		{`$[?@.a==1&&(@.b||!@.c)]`, `$[?@['a'] == 1 && (@['b'] || !@['c'])]`},
		{`$[?!(@.a<2)]`, `$[?!(@['a'] < 2)]`},
		{`$[?length(@.a)>=1.50]`, `$[?length(@['a']) >= 1.50]`},
		{`$[?match(@.a, "x.*")]`, `$[?match(@['a'], 'x.*')]`},
		{`$[?@.a == null || $.b != true]`, `$[?@['a'] == null || $['b'] != true]`},
	} {
		if got := MustParse(tc.in).String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestFirstNameChainAllocs guards the fast path used for segment rules.
func TestFirstNameChainAllocs(t *testing.T) {
	root := decode(t, identityDoc)
	p := MustParse(`$.identity.traits.age`)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := p.First(root); !ok {
			t.Fatal("not found")
		}
	})
	if allocs != 0 {
		t.Fatalf("First allocated %v times per run, want 0", allocs)
	}
	miss := MustParse(`$.identity.traits.nope`)
	allocs = testing.AllocsPerRun(1000, func() {
		if _, ok := miss.First(root); ok {
			t.Fatal("found")
		}
	})
	if allocs != 0 {
		t.Fatalf("First (miss) allocated %v times per run, want 0", allocs)
	}
}

func TestNumberTypes(t *testing.T) {
	var num any
	dec := json.NewDecoder(strings.NewReader(`{"a":[1, 2.5, 9007199254740993, 1e3], "n": 1000}`))
	dec.UseNumber()
	if err := dec.Decode(&num); err != nil {
		t.Fatal(err)
	}
	native := map[string]any{
		"a": []any{int64(1), float64(2.5), int64(9007199254740993), int(1000)},
		"n": uint8(200),
	}
	for _, tc := range []struct {
		root any
		path string
		want int
	}{
		{num, `$.a[?@ == 1]`, 1},
		{num, `$.a[?@ == 1.0]`, 1},
		{num, `$.a[?@ > 2]`, 3},
		{num, `$.a[?@ == 9007199254740993]`, 1},
		{num, `$.a[?@ == 9007199254740992]`, 0},
		{num, `$.a[?@ == $.n]`, 1},
		{num, `$.a[?@ == 1000]`, 1},
		{native, `$.a[?@ == 1]`, 1},
		{native, `$.a[?@ < 2.5]`, 1},
		{native, `$.a[?@ <= 2.5]`, 2},
		{native, `$.a[?@ == 9007199254740993]`, 1},
		{native, `$.a[?@ == 9007199254740992.0]`, 0},
		{native, `$.a[?@ > 9007199254740992.0]`, 1},
		{native, `$.a[?@ == 1e3]`, 1},
		{native, `$[?@ == 200]`, 1},
		{native, `$.a[?@ == '1']`, 0},
		{native, `$.a[?@ == true]`, 0},
	} {
		if got := MustParse(tc.path).All(tc.root); len(got) != tc.want {
			t.Errorf("%s: got %v, want %d nodes", tc.path, got, tc.want)
		}
	}
}

// TestOddRoots checks that unusual Go values, including cyclic ones, are
// handled without panicking or hanging.
func TestOddRoots(t *testing.T) {
	cyclic := map[string]any{"a": 1}
	cyclic["self"] = cyclic
	loop := []any{nil}
	loop[0] = loop
	roots := []any{
		nil, true, "str", 1.5, json.Number("x"), struct{}{}, []string{"a"},
		map[string]string{"a": "b"}, map[string]any{"f": func() {}, "s": []int{1}},
		cyclic, loop,
	}
	paths := []string{
		`$`, `$.a`, `$[0]`, `$.*`, `$..*`, `$..a`, `$[?@ == @]`, `$[?@.s == $.s]`,
		`$..[?@ == $]`, `$[?length(@) > 0]`, `$[?count(@..*) > 0]`, `$[0:10:-1]`,
	}
	for _, r := range roots {
		for _, s := range paths {
			p := MustParse(s)
			p.All(r)
			p.First(r)
		}
	}
}

func TestEscapes(t *testing.T) {
	for _, tc := range []struct{ path, key string }{
		{`$['\b\f\n\r\t\/\\']`, "\b\f\n\r\t/\\"},
		{`$["\b\f\n\r\t\/\\"]`, "\b\f\n\r\t/\\"},
		{`$['\'']`, "'"},
		{`$["\""]`, `"`},
		{`$['"']`, `"`},
		{`$["'"]`, "'"},
		{`$['\u0041\u00e9\u4E2D']`, "Aé中"},
		{`$['\uD834\uDD1E']`, "𝄞"},
		{`$['\u0000']`, "\x00"},
		{`$['𝄞 raw']`, "𝄞 raw"},
		{`$['']`, ""},
	} {
		p, err := Parse(tc.path)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.path, err)
			continue
		}
		if names, ok := p.Names(); !ok || len(names) != 1 || names[0] != tc.key {
			t.Errorf("%s: Names() = %q, %v; want [%q]", tc.path, names, ok, tc.key)
		}
		if v, ok := p.First(map[string]any{tc.key: 1.0}); !ok || v != 1.0 {
			t.Errorf("%s: First = %v, %v", tc.path, v, ok)
		}
	}
}

func TestFirstStopsEarly(t *testing.T) {
	// A filter that would find an incomparable value later must not be
	// needed for First; this checks order rather than laziness.
	root := decode(t, `{"a": [{"x": 1}, {"x": 2}, {"x": 3}]}`)
	if v, ok := MustParse(`$.a[?@.x > 1].x`).First(root); !ok || v != 2.0 {
		t.Fatalf("First = %v, %v; want 2", v, ok)
	}
	if v, ok := MustParse(`$.a[-1].x`).First(root); !ok || v != 3.0 {
		t.Fatalf("First = %v, %v; want 3", v, ok)
	}
}

func BenchmarkFirstNameChain(b *testing.B) {
	root := decode(b, identityDoc)
	p := MustParse(`$.identity.traits.age`)
	b.ReportAllocs()
	for b.Loop() {
		p.First(root)
	}
}

func BenchmarkFirstFilter(b *testing.B) {
	root := decode(b, bookstore)
	p := MustParse(`$.store.book[?@.price < 10 && match(@.category, 'fic.*')].title`)
	b.ReportAllocs()
	for b.Loop() {
		p.First(root)
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(`$.store.book[?@.price < 10 && match(@.category, 'fic.*')].title`); err != nil {
			b.Fatal(err)
		}
	}
}
