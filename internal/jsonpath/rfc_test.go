package jsonpath

import "testing"

// Examples from RFC 9535. Where the RFC leaves object member order open,
// the expected results follow this package's sorted-key order.

const bookstore = `{ "store": {
	"book": [
		{ "category": "reference", "author": "Nigel Rees", "title": "Sayings of the Century", "price": 8.95 },
		{ "category": "fiction", "author": "Evelyn Waugh", "title": "Sword of Honour", "price": 12.99 },
		{ "category": "fiction", "author": "Herman Melville", "title": "Moby Dick", "isbn": "0-553-21311-3", "price": 8.99 },
		{ "category": "fiction", "author": "J. R. R. Tolkien", "title": "The Lord of the Rings", "isbn": "0-395-19395-8", "price": 22.99 }
	],
	"bicycle": { "color": "red", "price": 399 }
}}`

const (
	book0 = `{ "category": "reference", "author": "Nigel Rees", "title": "Sayings of the Century", "price": 8.95 }`
	book1 = `{ "category": "fiction", "author": "Evelyn Waugh", "title": "Sword of Honour", "price": 12.99 }`
	book2 = `{ "category": "fiction", "author": "Herman Melville", "title": "Moby Dick", "isbn": "0-553-21311-3", "price": 8.99 }`
	book3 = `{ "category": "fiction", "author": "J. R. R. Tolkien", "title": "The Lord of the Rings", "isbn": "0-395-19395-8", "price": 22.99 }`
	books = `[` + book0 + `,` + book1 + `,` + book2 + `,` + book3 + `]`
	bike  = `{ "color": "red", "price": 399 }`
)

// §1.5, Table 2.
func TestRFCOverview(t *testing.T) {
	authors := `["Nigel Rees", "Evelyn Waugh", "Herman Melville", "J. R. R. Tolkien"]`
	runQueries(t, []queryCase{
		{`$.store.book[*].author`, bookstore, authors},
		{`$..author`, bookstore, authors},
		{`$.store.*`, bookstore, `[` + bike + `,` + books + `]`},
		{`$.store..price`, bookstore, `[399, 8.95, 12.99, 8.99, 22.99]`},
		{`$..book[2]`, bookstore, `[` + book2 + `]`},
		{`$..book[2].author`, bookstore, `["Herman Melville"]`},
		{`$..book[2].publisher`, bookstore, `[]`},
		{`$..book[-1]`, bookstore, `[` + book3 + `]`},
		{`$..book[0,1]`, bookstore, `[` + book0 + `,` + book1 + `]`},
		{`$..book[:2]`, bookstore, `[` + book0 + `,` + book1 + `]`},
		{`$..book[?@.isbn]`, bookstore, `[` + book2 + `,` + book3 + `]`},
		{`$..book[?@.price<10]`, bookstore, `[` + book0 + `,` + book2 + `]`},
		{`$..*`, `{"a":[1,{"b":2}]}`, `[[1,{"b":2}], 1, {"b":2}, 2]`},
	})
}

// §2.3.1.3, §2.3.2.3, §2.3.3.3 and §2.3.4.3.
func TestRFCSelectors(t *testing.T) {
	names := `{"o": {"j j": {"k.k": 3}}, "'": {"@": 2}}`
	wild := `{"o": {"j": 1, "k": 2}, "a": [5, 3]}`
	letters := `["a", "b", "c", "d", "e", "f", "g"]`
	runQueries(t, []queryCase{
		{`$.o['j j']`, names, `[{"k.k": 3}]`},
		{`$.o['j j']['k.k']`, names, `[3]`},
		{`$.o["j j"]["k.k"]`, names, `[3]`},
		{`$["'"]["@"]`, names, `[2]`},

		{`$[*]`, wild, `[[5, 3], {"j": 1, "k": 2}]`},
		{`$.o[*]`, wild, `[1, 2]`},
		{`$.o[*, *]`, wild, `[1, 2, 1, 2]`},
		{`$.a[*]`, wild, `[5, 3]`},
		{`$.*`, `[1, 2]`, `[1, 2]`},
		{`$.a.*`, `{"a": "str"}`, `[]`},

		{`$[1]`, `["a", "b"]`, `["b"]`},
		{`$[-2]`, `["a", "b"]`, `["a"]`},
		{`$[2]`, `["a", "b"]`, `[]`},
		{`$[-3]`, `["a", "b"]`, `[]`},
		{`$[0]`, `{"0": 1}`, `[]`},
		{`$['0']`, `["a"]`, `[]`},

		{`$[1:3]`, letters, `["b", "c"]`},
		{`$[5:]`, letters, `["f", "g"]`},
		{`$[1:5:2]`, letters, `["b", "d"]`},
		{`$[5:1:-2]`, letters, `["f", "d"]`},
		{`$[::-1]`, letters, `["g", "f", "e", "d", "c", "b", "a"]`},
		{`$[::-3]`, letters, `["g", "d", "a"]`},
		{`$[-1:-4:-1]`, letters, `["g", "f", "e"]`},
		{`$[-2:]`, letters, `["f", "g"]`},
		{`$[:-5]`, letters, `["a", "b"]`},
		{`$[3:1]`, letters, `[]`},
		{`$[::0]`, letters, `[]`},
		{`$[-100:100]`, letters, letters},
		{`$[100:-100:-1]`, letters, `["g", "f", "e", "d", "c", "b", "a"]`},
		{`$[-9007199254740991:9007199254740991:9007199254740991]`, letters, `["a"]`},
		{`$[9007199254740991::-9007199254740991]`, letters, `["g"]`},
		{`$[0:2, 5]`, letters, `["a", "b", "f"]`},
		{`$[:]`, `{"a": 1}`, `[]`},
	})
}

// §2.3.5.3: filter selector examples and the comparison table.
func TestRFCFilters(t *testing.T) {
	doc := `{
		"a": [3, 5, 1, 2, 4, 6, {"b": "j"}, {"b": "k"}, {"b": {}}, {"b": "kilo"}],
		"o": {"p": 1, "q": 2, "r": 3, "s": 5, "t": {"u": 6}},
		"e": "f"
	}`
	runQueries(t, []queryCase{
		{`$.a[?@.b == 'kilo']`, doc, `[{"b": "kilo"}]`},
		{`$.a[?(@.b == 'kilo')]`, doc, `[{"b": "kilo"}]`},
		{`$.a[?@>3.5]`, doc, `[5, 4, 6]`},
		{`$.a[?@.b]`, doc, `[{"b": "j"}, {"b": "k"}, {"b": {}}, {"b": "kilo"}]`},
		{`$[?@.*]`, doc, `[[3, 5, 1, 2, 4, 6, {"b": "j"}, {"b": "k"}, {"b": {}}, {"b": "kilo"}], {"p": 1, "q": 2, "r": 3, "s": 5, "t": {"u": 6}}]`},
		{`$[?@[?@.b]]`, doc, `[[3, 5, 1, 2, 4, 6, {"b": "j"}, {"b": "k"}, {"b": {}}, {"b": "kilo"}]]`},
		{`$.o[?@<3, ?@<3]`, doc, `[1, 2, 1, 2]`},
		{`$.a[?@<2 || @.b == "k"]`, doc, `[1, {"b": "k"}]`},
		{`$.a[?match(@.b, "[jk]")]`, doc, `[{"b": "j"}, {"b": "k"}]`},
		{`$.a[?search(@.b, "[jk]")]`, doc, `[{"b": "j"}, {"b": "k"}, {"b": "kilo"}]`},
		{`$.o[?@>1 && @<4]`, doc, `[2, 3]`},
		{`$.o[?@.u || @.x]`, doc, `[{"u": 6}]`},
		{`$.a[?@.b == $.x]`, doc, `[3, 5, 1, 2, 4, 6]`},
		{`$.a[?@ == @]`, doc, `[3, 5, 1, 2, 4, 6, {"b": "j"}, {"b": "k"}, {"b": {}}, {"b": "kilo"}]`},
		{`$.a[?!@.b]`, doc, `[3, 5, 1, 2, 4, 6]`},
		{`$.a[?!(@ < 5)]`, doc, `[5, 6, {"b": "j"}, {"b": "k"}, {"b": {}}, {"b": "kilo"}]`},
	})

	// Each row of the comparison table becomes a filter over a root with
	// two children: it selects both children if the comparison holds.
	cmpDoc := `{"obj": {"x": "y"}, "arr": [2, 3]}`
	both := `[[2, 3], {"x": "y"}]`
	for _, tc := range []struct {
		cmp  string
		want bool
	}{
		{`$.absent1 == $.absent2`, true},
		{`$.absent1 <= $.absent2`, true},
		{`$.absent == 'g'`, false},
		{`$.absent1 != $.absent2`, false},
		{`$.absent != 'g'`, true},
		{`1 <= 2`, true},
		{`1 > 2`, false},
		{`13 == '13'`, false},
		{`'a' <= 'b'`, true},
		{`'a' > 'b'`, false},
		{`$.obj == $.arr`, false},
		{`$.obj != $.arr`, true},
		{`$.obj == $.obj`, true},
		{`$.obj != $.obj`, false},
		{`$.arr == $.arr`, true},
		{`$.arr != $.arr`, false},
		{`$.obj == 17`, false},
		{`$.obj != 17`, true},
		{`$.obj <= $.arr`, false},
		{`$.obj < $.arr`, false},
		{`$.obj <= $.obj`, true},
		{`$.arr <= $.arr`, true},
		{`1 <= $.arr`, false},
		{`1 >= $.arr`, false},
		{`1 > $.arr`, false},
		{`1 < $.arr`, false},
		{`true <= true`, true},
		{`true > true`, false},
		// Beyond the table.
		{`null == null`, true},
		{`null == false`, false},
		{`1 == 1.0`, true},
		{`1.5e1 == 15`, true},
		{`-0 == 0`, true},
		{`'ab' < 'abc'`, true},
		{`'Z' < 'a'`, true},
		{`'é' > 'z'`, true},
		{`'\uFFFF' < '\uD83D\uDE00'`, true},
		{`$.arr[0] >= 2`, true},
		{`$.arr[-1] > $.arr[0]`, true},
		{`$.obj.x == 'y'`, true},
		{`$.absent < 1`, false},
		{`$.absent >= $.absent`, true},
		{`false < true`, false},
		{`null < null`, false},
		{`null <= null`, true},
	} {
		want := `[]`
		if tc.want {
			want = both
		}
		runQueries(t, []queryCase{{`$[?` + tc.cmp + `]`, cmpDoc, want}})
	}
}

// §2.4: function extensions.
func TestRFCFunctions(t *testing.T) {
	doc := `{
		"a": ["", "ab", "añ😀", [1, 2], {"x": 1}, 3, true, null],
		"people": [
			{"name": "Ann", "tz": "Europe/Paris", "tags": ["x", "y"]},
			{"name": "Bob", "tz": "America/Chicago", "tags": []},
			{"name": "Cyd", "tz": "Europe/London"},
			{"name": "Dee", "tz": "europe/x", "color": "red"}
		],
		"pattern": "^[A-Z].*o$"
	}`
	runQueries(t, []queryCase{
		{`$.a[?length(@) == 0]`, doc, `[""]`},
		{`$.a[?length(@) == 2]`, doc, `["ab", [1, 2]]`},
		{`$.a[?length(@) == 3]`, doc, `["añ😀"]`},
		{`$.a[?length(@) == 1]`, doc, `[{"x": 1}]`},
		{`$.a[?length(@) >= 0]`, doc, `["", "ab", "añ😀", [1, 2], {"x": 1}]`},
		{`$.a[?length(@.nope) == length(@.nope)]`, doc, `["", "ab", "añ😀", [1, 2], {"x": 1}, 3, true, null]`},
		{`$[?length(@) < 3]`, `{"a": [1, 2], "b": "abc", "c": {}}`, `[[1, 2], {}]`},
		{`$.people[?length(@.tags) > 0].name`, doc, `["Ann"]`},
		{`$.people[?count(@.*) == 2].name`, doc, `["Cyd"]`},
		{`$.people[?count(@.tags[*]) == 0].name`, doc, `["Bob", "Cyd", "Dee"]`},
		{`$[?count(@.*) == 1]`, `{"a": [1], "b": {"c": 2, "d": 3}, "e": {"f": 4}}`, `[[1], {"f": 4}]`},
		{`$.people[?match(@.tz, 'Europe/.*')].name`, doc, `["Ann", "Cyd"]`},
		{`$.people[?search(@.tz, '[Ee]urope')].name`, doc, `["Ann", "Cyd", "Dee"]`},
		{`$.people[?match(@.tz, 'Europe')].name`, doc, `[]`},
		{`$.people[?!match(@.tz, 'Europe/.*')].name`, doc, `["Bob", "Dee"]`},
		{`$.people[?match(@.name, 'A.n|B.b')].name`, doc, `["Ann", "Bob"]`},
		{`$.people[?match(@.name, $.people[1].name)].name`, doc, `["Bob"]`},
		{`$.people[?match(@.name, 1)].name`, doc, `[]`},
		{`$.people[?match(@.name, '(')].name`, doc, `[]`},
		{`$.people[?search(@.name, '\\d')].name`, doc, `[]`},
		{`$.people[?value(@..color) == "red"].name`, doc, `["Dee"]`},
		{`$.people[?value(@.tags[*]) == "x"].name`, doc, `[]`},
		{`$.people[?value(@.tags[1]) == "y"].name`, doc, `["Ann"]`},
		{`$.people[?length(value(@.name)) == 3 && @.color].name`, doc, `["Dee"]`},
	})
}

// §2.5.2.3 descendant segment examples and §2.6 null semantics.
func TestRFCDescendantsAndNull(t *testing.T) {
	doc := `{"o": {"j": 1, "k": 2}, "a": [5, 3, [{"j": 4}, {"k": 6}]]}`
	nulls := `{"a": null, "b": [null], "c": [{}], "null": 1}`
	runQueries(t, []queryCase{
		{`$..j`, doc, `[4, 1]`},
		{`$..[0]`, doc, `[5, {"j": 4}]`},
		{`$..*`, doc, `[[5, 3, [{"j": 4}, {"k": 6}]], {"j": 1, "k": 2}, 5, 3, [{"j": 4}, {"k": 6}], {"j": 4}, {"k": 6}, 4, 6, 1, 2]`},
		{`$..o`, doc, `[{"j": 1, "k": 2}]`},
		{`$.o..[*, *]`, doc, `[1, 2, 1, 2]`},
		{`$.a..[0, 1]`, doc, `[5, 3, {"j": 4}, {"k": 6}]`},
		{`$..[?@.j]`, doc, `[{"j": 1, "k": 2}, {"j": 4}]`},
		{`$..[?@ > 4]`, doc, `[5, 6]`},

		{`$.a`, nulls, `[null]`},
		{`$.a[0]`, nulls, `[]`},
		{`$.a.d`, nulls, `[]`},
		{`$.b[0]`, nulls, `[null]`},
		{`$.b[*]`, nulls, `[null]`},
		{`$.b[?@]`, nulls, `[null]`},
		{`$.b[?@==null]`, nulls, `[null]`},
		{`$.c[?@.d==null]`, nulls, `[]`},
		{`$.null`, nulls, `[1]`},
	})
}
