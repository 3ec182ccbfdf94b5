package jsonpath

import (
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

type paramType uint8

const (
	valueParam paramType = iota
	nodesParam
)

type resultType uint8

const (
	valueType resultType = iota
	logicalType
)

type fnID uint8

const (
	fnLength fnID = iota
	fnCount
	fnMatch
	fnSearch
	fnValue
)

type function struct {
	id     fnID
	name   string
	params []paramType
	result resultType
}

// functions is the registry of RFC 9535 §2.4 function extensions. It is
// never modified.
var functions = map[string]*function{
	"length": {id: fnLength, name: "length", params: []paramType{valueParam}, result: valueType},
	"count":  {id: fnCount, name: "count", params: []paramType{nodesParam}, result: valueType},
	"match":  {id: fnMatch, name: "match", params: []paramType{valueParam, valueParam}, result: logicalType},
	"search": {id: fnSearch, name: "search", params: []paramType{valueParam, valueParam}, result: logicalType},
	"value":  {id: fnValue, name: "value", params: []paramType{nodesParam}, result: valueType},
}

// callValue evaluates a ValueType function; ok is false for Nothing.
func (ev *evaluator) callValue(e *expr, cur any) (v any, ok bool) {
	switch e.fn.id {
	case fnLength:
		v, ok := ev.value(e.operands[0], cur)
		if !ok {
			return nil, false
		}
		switch v := v.(type) {
		case string:
			return int64(utf8.RuneCountInString(v)), true
		case []any:
			return int64(len(v)), true
		case map[string]any:
			return int64(len(v)), true
		}
		return nil, false
	case fnCount:
		var n int64
		ev.nodes(e.operands[0].query, cur, func(any) bool {
			n++
			return true
		})
		return n, true
	case fnValue:
		var n int
		ev.nodes(e.operands[0].query, cur, func(x any) bool {
			v = x
			n++
			return n < 2
		})
		if n != 1 {
			return nil, false
		}
		return v, true
	}
	return nil, false
}

// callLogical evaluates a LogicalType function.
func (ev *evaluator) callLogical(e *expr, cur any) bool {
	switch e.fn.id {
	case fnMatch, fnSearch:
		v, ok := ev.value(e.operands[0], cur)
		if !ok {
			return false
		}
		s, ok := v.(string)
		if !ok {
			return false
		}
		re := e.re
		if re == nil {
			if e.badRe {
				return false
			}
			pv, ok := ev.value(e.operands[1], cur)
			if !ok {
				return false
			}
			pat, ok := pv.(string)
			if !ok {
				return false
			}
			if re = compilePattern(pat, e.fn.id == fnMatch); re == nil {
				return false
			}
		}
		return re.MatchString(s)
	}
	return false
}

// compilePattern compiles an I-Regexp for match (anchored at both ends) or
// search, returning nil if the pattern is not a valid I-Regexp or has no
// RE2 equivalent.
func compilePattern(pattern string, full bool) *regexp.Regexp {
	t, ok := translateIRegexp(pattern)
	if !ok {
		return nil
	}
	if full {
		t = `^(?:` + t + `)$`
	}
	re, err := regexp.Compile(t)
	if err != nil {
		return nil
	}
	return re
}

// translateIRegexp validates pattern against the RFC 9485 grammar and
// rewrites it into Go regexp syntax. The two differ in ways that matter:
// in I-Regexp '.' excludes only \n and \r, and '^' and '$' are ordinary
// characters.
func translateIRegexp(pattern string) (string, bool) {
	if !utf8.ValidString(pattern) {
		return "", false
	}
	t := reTranslator{src: pattern}
	if !t.alternation() || t.pos != len(t.src) {
		return "", false
	}
	return t.out.String(), true
}

// maxRegexpNesting matches the nesting limit Go's regexp parser enforces.
const maxRegexpNesting = 1000

type reTranslator struct {
	src   string
	pos   int
	depth int
	out   strings.Builder
}

func (t *reTranslator) peek() rune {
	if t.pos >= len(t.src) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(t.src[t.pos:])
	return r
}

func (t *reTranslator) next() rune {
	r := t.peek()
	if r >= 0 {
		t.pos += utf8.RuneLen(r)
	}
	return r
}

// alternation parses branch *("|" branch).
func (t *reTranslator) alternation() bool {
	t.depth++
	defer func() { t.depth-- }()
	if t.depth > maxRegexpNesting {
		return false
	}
	for {
		for r := t.peek(); r >= 0 && r != '|' && r != ')'; r = t.peek() {
			if !t.piece() {
				return false
			}
		}
		if t.peek() != '|' {
			return true
		}
		t.next()
		t.out.WriteByte('|')
	}
}

func (t *reTranslator) piece() bool {
	if !t.atom() {
		return false
	}
	switch t.peek() {
	case '*', '+', '?':
		t.out.WriteRune(t.next())
	case '{':
		t.next()
		t.out.WriteByte('{')
		if !t.quantNumber() {
			return false
		}
		if t.peek() == ',' {
			t.next()
			t.out.WriteByte(',')
			if t.peek() != '}' && !t.quantNumber() {
				return false
			}
		}
		if t.next() != '}' {
			return false
		}
		t.out.WriteByte('}')
	}
	return true
}

func (t *reTranslator) quantNumber() bool {
	start := t.pos
	for r := t.peek(); r >= '0' && r <= '9'; r = t.peek() {
		t.next()
	}
	t.out.WriteString(t.src[start:t.pos])
	return t.pos > start
}

func (t *reTranslator) atom() bool {
	switch r := t.next(); r {
	case '(':
		t.out.WriteString("(?:")
		if !t.alternation() || t.next() != ')' {
			return false
		}
		t.out.WriteByte(')')
	case '.':
		t.out.WriteString(`[^\n\r]`)
	case '[':
		return t.class()
	case '\\':
		return t.escape(false)
	case ')', '*', '+', '?', '{', '}', '|', ']', -1:
		return false
	default:
		if utf16Surrogate(r) {
			return false
		}
		writeLiteral(&t.out, r)
	}
	return true
}

func utf16Surrogate(r rune) bool { return r >= 0xD800 && r <= 0xDFFF }

// writeLiteral writes r so that Go's regexp matches it literally, both
// inside and outside a character class.
func writeLiteral(b *strings.Builder, r rune) {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r >= 0x80:
		b.WriteRune(r)
	default:
		// \x{..} is unambiguous for ASCII punctuation and control characters.
		b.WriteString(`\x{`)
		b.WriteString(strconv.FormatInt(int64(r), 16))
		b.WriteByte('}')
	}
}

// escape handles the part after a backslash: SingleCharEsc, \p{..} or
// \P{..}. In a class only a single-character escape may be a range end.
func (t *reTranslator) escape(inClass bool) bool {
	switch r := t.next(); r {
	case 'n':
		t.out.WriteString(`\n`)
	case 'r':
		t.out.WriteString(`\r`)
	case 't':
		t.out.WriteString(`\t`)
	case '(', ')', '*', '+', '-', '.', '?', '[', '\\', ']', '^', '{', '|', '}':
		writeLiteral(&t.out, r)
	case 'p', 'P':
		return t.property(r == 'P', inClass)
	default:
		return false
	}
	return true
}

// property handles \p{Cat} and \P{Cat}. Go's regexp lacks Cn (unassigned),
// so it is spelt as the complement of every assigned category where the
// syntax allows.
func (t *reTranslator) property(negated, inClass bool) bool {
	if t.next() != '{' {
		return false
	}
	end := strings.IndexByte(t.src[t.pos:], '}')
	if end < 0 {
		return false
	}
	cat := t.src[t.pos : t.pos+end]
	t.pos += end + 1
	if !validCategory(cat) {
		return false
	}
	if cat == "Cn" {
		const assigned = `\p{L}\p{M}\p{N}\p{P}\p{S}\p{Z}\p{Cc}\p{Cf}\p{Co}\p{Cs}`
		switch {
		case negated && inClass:
			t.out.WriteString(assigned)
		case negated:
			t.out.WriteString("[" + assigned + "]")
		case inClass:
			return false
		default:
			t.out.WriteString("[^" + assigned + "]")
		}
		return true
	}
	if negated {
		t.out.WriteString(`\P{`)
	} else {
		t.out.WriteString(`\p{`)
	}
	t.out.WriteString(cat)
	t.out.WriteByte('}')
	return true
}

func validCategory(c string) bool {
	if c == "" || len(c) > 2 {
		return false
	}
	var subs string
	switch c[0] {
	case 'L':
		subs = "lmotu"
	case 'M':
		subs = "cen"
	case 'N':
		subs = "dlo"
	case 'P':
		subs = "cdefios"
	case 'Z':
		subs = "lps"
	case 'S':
		subs = "ckmo"
	case 'C':
		subs = "cfno"
	default:
		return false
	}
	return len(c) == 1 || strings.IndexByte(subs, c[1]) >= 0
}

// class parses charClassExpr after its '[':
// [ "^" ] ( "-" / CCE1 ) *CCE1 [ "-" ] "]".
func (t *reTranslator) class() bool {
	t.out.WriteByte('[')
	if t.peek() == '^' {
		t.next()
		t.out.WriteByte('^')
	}
	first := true
	for {
		r := t.peek()
		switch {
		case r < 0 || r == '[':
			return false
		case r == ']':
			if first {
				return false
			}
			t.next()
			t.out.WriteByte(']')
			return true
		case r == '-':
			t.next()
			if !first && t.peek() != ']' {
				return false
			}
			t.out.WriteString(`\x{2D}`)
		default:
			lo, ok := t.classChar()
			if !ok {
				return false
			}
			if lo >= 0 && t.peek() == '-' && !strings.HasPrefix(t.src[t.pos:], "-]") {
				t.next()
				t.out.WriteByte('-')
				hi, ok := t.classChar()
				if !ok || hi < lo {
					return false
				}
			}
		}
		first = false
	}
}

// classChar translates one CCchar or class escape, returning the character
// for range checking, or -1 for a category escape.
func (t *reTranslator) classChar() (rune, bool) {
	r := t.next()
	switch {
	case r < 0, r == '-', r == '[', r == ']', utf16Surrogate(r):
		return 0, false
	case r == '\\':
		if c := t.peek(); c == 'p' || c == 'P' {
			return -1, t.escape(true)
		}
		c := t.peek()
		if !t.escape(true) {
			return 0, false
		}
		switch c {
		case 'n':
			return '\n', true
		case 'r':
			return '\r', true
		case 't':
			return '\t', true
		}
		return c, true
	}
	writeLiteral(&t.out, r)
	return r, true
}
