package jsonpath

import (
	"reflect"
	"strings"
	"testing"
)

const fuzzDoc = `{
	"identity": {"identifier": "u", "traits": {"age": 42, "my-trait": "x", "tamaño": 1.5, "サイズ": null, "list": [1, "a", true, {"k": [2]}]}},
	"a": [3, 5, 1, {"b": "j"}, {"b": {}}, [7, [8]]],
	"o": {"p": 1, "q": "2", "r": false, "": {"": 0}},
	"e": "f"
}`

// FuzzParse checks that parsing and evaluation never panic, that First
// agrees with All, that Names agrees with evaluation, and that String
// produces an equivalent, stable query.
func FuzzParse(f *testing.F) {
	for _, s := range invalidQueries {
		f.Add(s)
	}
	for _, s := range validQueries {
		f.Add(s)
	}
	for _, s := range []string{
		`$.identity.traits.age`, `$.identity.traits.my-trait`, `$..*`, `$..[?@.b]`,
		`$.a[?match(@.b, "[jk]") || search(@.b, '\\p{L}')]`, `$.a[::-1]`, `$.o[?count(@.*) > 0]`,
		`$[?value(@..b) == 'j']`, `$.a[?length(@) >= 2 && !(@[0] < 4)]`, `$['o', 'e', 0]`,
	} {
		f.Add(s)
	}
	root := decode(f, fuzzDoc)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			if p != nil {
				t.Fatalf("Parse(%q) returned both a path and an error", s)
			}
			return
		}
		canon := p.String()
		p2, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) ok but canonical form %q fails: %v", s, canon, err)
		}
		if c2 := p2.String(); c2 != canon {
			t.Fatalf("canonical form not stable for %q: %q then %q", s, canon, c2)
		}
		// Every descendant segment, wildcard or filter can multiply the
		// work; past a handful the cost is inherent to the query, not a bug.
		if strings.Count(s, "..")+strings.Count(s, "*")+strings.Count(s, "?") > 4 {
			return
		}
		all := p.All(root)
		first, ok := p.First(root)
		if ok != (len(all) > 0) || ok && !reflect.DeepEqual(first, all[0]) {
			t.Fatalf("%q: First = %v, %v but All = %v", s, first, ok, all)
		}
		if all2 := p2.All(root); !reflect.DeepEqual(all, all2) {
			t.Fatalf("%q: canonical form %q selects %v, want %v", s, canon, all2, all)
		}
		if names, ok := p.Names(); ok {
			var v any = root
			found := true
			for _, n := range names {
				m, isMap := v.(map[string]any)
				if !isMap {
					found = false
					break
				}
				if v, found = m[n]; !found {
					break
				}
			}
			if found != (len(all) == 1) || found && !reflect.DeepEqual(v, all[0]) {
				t.Fatalf("%q: Names %q disagree with All %v", s, names, all)
			}
		}
	})
}
