// Package jsonpath implements JSONPath query expressions as specified by
// RFC 9535, in the dialect of the Python library jsonpath-rfc9535 that
// Flagsmith's reference engine uses to resolve segment condition properties
// such as $.identity.traits.age.
//
// The one deliberate leniency, inherited from that library, concerns
// member-name shorthands (.name and ..name): a name may contain '-' after
// its first character, so $.identity.traits.my-trait is a valid query. In
// the same way the library's lexer does, shorthand names are limited to
// the Basic Multilingual Plane; characters above U+FFFF must be written in
// a bracketed, quoted name selector instead.
//
// Other implementation choices:
//
//   - RFC 9535 leaves the order of object members unspecified. Members are
//     visited in sorted key order so that results are deterministic.
//   - Queries are evaluated against values as produced by encoding/json:
//     map[string]any, []any, string, bool, nil and numbers (float64,
//     json.Number, and for convenience Go's other integer and float types).
//     Values of any other type are opaque leaves that equal nothing.
//   - The match and search functions validate their pattern as an I-Regexp
//     (RFC 9485) and translate it to Go's regexp syntax. An invalid pattern
//     makes the function false, as in the Python library.
//   - To keep hostile input from exhausting the stack, filter expressions may
//     nest at most 256 deep, and descendant segments and deep equality stop
//     1024 levels down into the queried value, which also bounds cyclic Go
//     values.
package jsonpath

import (
	"slices"
	"strings"
)

// Path is a compiled JSONPath query. It is immutable and safe for
// concurrent use.
type Path struct {
	segments []segment
	// singular means every segment selects at most one child by name or
	// index, so evaluation is a plain walk with no node lists.
	singular bool
	// names holds the member names when the query is a plain chain of name
	// selectors; nil otherwise.
	names []string
}

// Parse compiles a JSONPath query. It returns a *SyntaxError for any syntax
// error, including queries that are not well-typed (RFC 9535 §2.4.3).
func Parse(s string) (*Path, error) {
	segs, err := parseQuery(s)
	if err != nil {
		return nil, err
	}
	p := &Path{segments: segs, singular: isSingular(segs)}
	if p.singular {
		names := make([]string, 0, len(segs))
		for i := range segs {
			sel := &segs[i].selectors[0]
			if sel.kind != nameSelector {
				names = nil
				break
			}
			names = append(names, sel.name)
		}
		p.names = names
	}
	return p, nil
}

// MustParse is like Parse but panics on error; it is meant for queries
// that are constants in the program.
func MustParse(s string) *Path {
	p, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return p
}

// First evaluates the path against root and returns the first node in
// RFC 9535 result order, and whether any node was found. Evaluation stops
// as soon as the first node is known.
func (p *Path) First(root any) (any, bool) {
	if p.singular {
		// Walking the value directly keeps the common $.a.b case free of
		// allocations.
		return singularLookup(p.segments, root)
	}
	var (
		first any
		found bool
	)
	ev := evaluator{root: root}
	ev.walk(p.segments, root, func(v any) bool {
		first, found = v, true
		return false
	})
	return first, found
}

// All returns every node selected by the path, in RFC 9535 result order.
// It returns nil if nothing is selected.
func (p *Path) All(root any) []any {
	if p.singular {
		if v, ok := singularLookup(p.segments, root); ok {
			return []any{v}
		}
		return nil
	}
	var out []any
	ev := evaluator{root: root}
	ev.walk(p.segments, root, func(v any) bool {
		out = append(out, v)
		return true
	})
	return out
}

// Names reports whether the path is a plain chain of single name selectors,
// such as $.a.b['c'], and if so returns those names (empty for $). Callers
// can use it to resolve such paths without the evaluator; the returned
// slice is a copy.
func (p *Path) Names() ([]string, bool) {
	if p.names == nil {
		return nil, false
	}
	return slices.Clone(p.names), true
}

// String returns the query in canonical form: every segment in bracket
// notation and names in single quotes. Parsing the result yields an
// equivalent Path.
func (p *Path) String() string {
	var b strings.Builder
	b.WriteByte('$')
	writeSegments(&b, p.segments)
	return b.String()
}
