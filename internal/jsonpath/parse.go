package jsonpath

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxNesting bounds the nesting of parentheses, filters and function calls
// so that the recursive-descent parser cannot be driven into a stack
// overflow.
const maxNesting = 256

// maxIndex is the largest magnitude of an index or slice bound; RFC 9535
// restricts them to the I-JSON exact integer range.
const maxIndex = 1<<53 - 1

// SyntaxError describes why a query failed to parse.
type SyntaxError struct {
	Query  string
	Offset int // byte offset into Query
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("jsonpath: %s at offset %d in %q", e.Msg, e.Offset, e.Query)
}

type parser struct {
	src   string
	pos   int
	depth int
}

func parseQuery(s string) ([]segment, error) {
	p := &parser{src: s}
	if !utf8.ValidString(s) {
		for p.pos < len(s) {
			r, size := utf8.DecodeRuneInString(s[p.pos:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			p.pos += size
		}
		return nil, p.errorf("invalid UTF-8")
	}
	if p.peek() != '$' {
		return nil, p.errorf("query must start with '$'")
	}
	p.pos++
	segs, err := p.segments()
	if err != nil {
		return nil, err
	}
	if p.pos < len(s) {
		if strings.Trim(s[p.pos:], " \t\n\r") == "" {
			return nil, p.errorf("unexpected trailing whitespace")
		}
		return nil, p.errorf("unexpected %s", p.describe())
	}
	return segs, nil
}

func (p *parser) errorf(format string, args ...any) error {
	return &SyntaxError{Query: p.src, Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) errorAt(pos int, format string, args ...any) error {
	p.pos = pos
	return p.errorf(format, args...)
}

// describe names the input at the current position for error messages.
func (p *parser) describe() string {
	if p.pos >= len(p.src) {
		return "end of query"
	}
	r, _ := utf8.DecodeRuneInString(p.src[p.pos:])
	return strconv.QuoteRune(r)
}

// peek returns the next byte, or 0 at the end of input. A literal NUL in
// the query never matches anything the grammar accepts, so the two cannot
// be confused.
func (p *parser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (p *parser) skipBlank() {
	for p.pos < len(p.src) && isBlank(p.src[p.pos]) {
		p.pos++
	}
}

// segments parses *(S segment). Whitespace is only consumed when a segment
// follows it, so the caller sees it and can report it (trailing whitespace)
// or use it (before a comparison operator).
func (p *parser) segments() ([]segment, error) {
	var segs []segment
	for {
		save := p.pos
		p.skipBlank()
		var (
			seg segment
			err error
		)
		switch p.peek() {
		case '.':
			seg, err = p.dotSegment()
		case '[':
			seg.selectors, err = p.bracketed()
		default:
			p.pos = save
			return segs, nil
		}
		if err != nil {
			return nil, err
		}
		segs = append(segs, seg)
	}
}

func (p *parser) dotSegment() (segment, error) {
	p.pos++ // '.'
	var seg segment
	if p.peek() == '.' {
		p.pos++
		seg.descendant = true
		if p.peek() == '[' {
			var err error
			seg.selectors, err = p.bracketed()
			return seg, err
		}
	}
	if p.peek() == '*' {
		p.pos++
		seg.selectors = []selector{{kind: wildcardSelector}}
		return seg, nil
	}
	name, ok := p.memberName()
	if !ok {
		if seg.descendant {
			return seg, p.errorf("expected member name, '*' or '[' after '..', found %s", p.describe())
		}
		return seg, p.errorf("expected member name or '*' after '.', found %s", p.describe())
	}
	seg.selectors = []selector{{kind: nameSelector, name: name}}
	return seg, nil
}

// memberName scans a member-name shorthand using the Python library's
// lenient pattern [A-Za-z_\u0080-\uFFFF][A-Za-z0-9_\-\u0080-\uFFFF]*.
func (p *parser) memberName() (string, bool) {
	start := p.pos
	for p.pos < len(p.src) {
		r, size := utf8.DecodeRuneInString(p.src[p.pos:])
		if !isNameRune(r, p.pos == start) {
			break
		}
		p.pos += size
	}
	return p.src[start:p.pos], p.pos > start
}

func isNameRune(r rune, first bool) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
		return true
	case r >= 0x80 && r <= 0xFFFF:
		return true
	case r >= '0' && r <= '9', r == '-':
		return !first
	}
	return false
}

// bracketed parses "[" S selector *(S "," S selector) S "]".
func (p *parser) bracketed() ([]selector, error) {
	p.pos++ // '['
	var sels []selector
	for {
		p.skipBlank()
		sel, err := p.selector()
		if err != nil {
			return nil, err
		}
		sels = append(sels, sel)
		p.skipBlank()
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return sels, nil
		default:
			return nil, p.errorf("expected ',' or ']', found %s", p.describe())
		}
	}
}

func (p *parser) selector() (selector, error) {
	switch c := p.peek(); {
	case c == '\'' || c == '"':
		name, err := p.stringLiteral()
		return selector{kind: nameSelector, name: name}, err
	case c == '*':
		p.pos++
		return selector{kind: wildcardSelector}, nil
	case c == '?':
		p.pos++
		p.skipBlank()
		e, err := p.logicalOr()
		return selector{kind: filterSelector, filter: e}, err
	case c == '-' || c == ':' || isDigit(c):
		return p.indexOrSlice()
	}
	return selector{}, p.errorf("expected selector, found %s", p.describe())
}

// indexOrSlice parses an index selector or
// [start S] ":" S [end S] [":" [S step]].
func (p *parser) indexOrSlice() (selector, error) {
	var b sliceBounds
	var err error
	if c := p.peek(); c == '-' || isDigit(c) {
		if b.start, err = p.index(); err != nil {
			return selector{}, err
		}
		b.hasStart = true
		save := p.pos
		p.skipBlank()
		if p.peek() != ':' {
			p.pos = save
			return selector{kind: indexSelector, index: b.start}, nil
		}
	}
	p.pos++ // ':'
	p.skipBlank()
	if c := p.peek(); c == '-' || isDigit(c) {
		if b.end, err = p.index(); err != nil {
			return selector{}, err
		}
		b.hasEnd = true
	}
	save := p.pos
	p.skipBlank()
	if p.peek() != ':' {
		p.pos = save
		return selector{kind: sliceSelector, slice: b}, nil
	}
	p.pos++
	save = p.pos
	p.skipBlank()
	if c := p.peek(); c == '-' || isDigit(c) {
		if b.step, err = p.index(); err != nil {
			return selector{}, err
		}
		b.hasStep = true
	} else {
		p.pos = save
	}
	return selector{kind: sliceSelector, slice: b}, nil
}

// index parses int = "0" / (["-"] DIGIT1 *DIGIT) within the I-JSON range.
func (p *parser) index() (int64, error) {
	start := p.pos
	neg := p.peek() == '-'
	if neg {
		p.pos++
	}
	if !isDigit(p.peek()) {
		return 0, p.errorf("expected digit, found %s", p.describe())
	}
	if p.peek() == '0' {
		p.pos++
		if neg {
			return 0, p.errorAt(start, "negative zero is not a valid index")
		}
		if isDigit(p.peek()) {
			return 0, p.errorAt(start, "leading zeros are not allowed")
		}
		return 0, nil
	}
	var n int64
	for isDigit(p.peek()) {
		// Once past maxIndex the value is rejected anyway, so stop
		// accumulating to avoid overflow.
		if n <= maxIndex {
			n = n*10 + int64(p.peek()-'0')
		}
		p.pos++
	}
	if n > maxIndex {
		return 0, p.errorAt(start, "index out of range")
	}
	if neg {
		n = -n
	}
	return n, nil
}

// stringLiteral parses a single- or double-quoted string with RFC 9535
// escapes.
func (p *parser) stringLiteral() (string, error) {
	quote := p.src[p.pos]
	start := p.pos
	p.pos++
	var b *strings.Builder // nil until an escape forces a copy
	chunk := p.pos
	for {
		if p.pos >= len(p.src) {
			return "", p.errorAt(start, "unclosed string literal")
		}
		c := p.src[p.pos]
		switch {
		case c == quote:
			s := p.src[chunk:p.pos]
			p.pos++
			if b == nil {
				return s, nil
			}
			b.WriteString(s)
			return b.String(), nil
		case c < 0x20:
			return "", p.errorf("control character U+%04X must be escaped", c)
		case c == '\\':
			if b == nil {
				b = new(strings.Builder)
			}
			b.WriteString(p.src[chunk:p.pos])
			if err := p.escape(b, quote); err != nil {
				return "", err
			}
			chunk = p.pos
		default:
			p.pos++
		}
	}
}

func (p *parser) escape(b *strings.Builder, quote byte) error {
	start := p.pos
	p.pos++ // '\'
	if p.pos >= len(p.src) {
		return p.errorAt(start, "invalid escape sequence")
	}
	c := p.src[p.pos]
	p.pos++
	switch c {
	case quote, '\\', '/':
		b.WriteByte(c)
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case 'u':
		r, err := p.hex4()
		if err != nil {
			return err
		}
		switch {
		case utf16.IsSurrogate(r) && r < 0xDC00:
			if !strings.HasPrefix(p.src[p.pos:], `\u`) {
				return p.errorAt(start, "high surrogate not followed by low surrogate")
			}
			p.pos += 2
			lo, err := p.hex4()
			if err != nil {
				return err
			}
			if lo < 0xDC00 || lo > 0xDFFF {
				return p.errorAt(start, "high surrogate not followed by low surrogate")
			}
			r = utf16.DecodeRune(r, lo)
		case utf16.IsSurrogate(r):
			return p.errorAt(start, "unpaired low surrogate")
		}
		b.WriteRune(r)
	default:
		return p.errorAt(start, "invalid escape sequence")
	}
	return nil
}

func (p *parser) hex4() (rune, error) {
	if len(p.src)-p.pos < 4 {
		return 0, p.errorf("expected four hex digits")
	}
	var r rune
	for i := range 4 {
		c := p.src[p.pos+i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, p.errorf("expected four hex digits")
		}
		r = r<<4 | rune(d)
	}
	p.pos += 4
	return r, nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxNesting {
		return p.errorf("expression nested too deeply")
	}
	return nil
}

// logicalOr parses logical-and-expr *(S "||" S logical-and-expr).
func (p *parser) logicalOr() (*expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	return p.binary(orExpr, "||", p.logicalAnd)
}

func (p *parser) logicalAnd() (*expr, error) {
	return p.binary(andExpr, "&&", p.basic)
}

func (p *parser) binary(kind exprKind, op string, operand func() (*expr, error)) (*expr, error) {
	first, err := operand()
	if err != nil {
		return nil, err
	}
	var ops []*expr
	for {
		save := p.pos
		p.skipBlank()
		if !strings.HasPrefix(p.src[p.pos:], op) {
			p.pos = save
			break
		}
		p.pos += len(op)
		p.skipBlank()
		e, err := operand()
		if err != nil {
			return nil, err
		}
		if ops == nil {
			ops = []*expr{first}
		}
		ops = append(ops, e)
	}
	if ops == nil {
		return first, nil
	}
	return &expr{kind: kind, operands: ops}, nil
}

// basic parses paren-expr / comparison-expr / test-expr.
func (p *parser) basic() (*expr, error) {
	switch p.peek() {
	case '!':
		// RFC 9535 allows a single '!' before a test or parenthesised
		// expression, and so does this parser.
		p.pos++
		p.skipBlank()
		var (
			e   *expr
			err error
		)
		if p.peek() == '(' {
			e, err = p.paren()
		} else {
			start := p.pos
			if e, err = p.atom(); err == nil {
				err = p.checkTest(e, start)
			}
		}
		if err != nil {
			return nil, err
		}
		return &expr{kind: notExpr, operands: []*expr{e}}, nil
	case '(':
		return p.paren()
	}
	start := p.pos
	left, err := p.atom()
	if err != nil {
		return nil, err
	}
	save := p.pos
	p.skipBlank()
	op, ok := p.cmpOp()
	if !ok {
		p.pos = save
		return left, p.checkTest(left, start)
	}
	if err := p.checkComparable(left, start); err != nil {
		return nil, err
	}
	p.skipBlank()
	rstart := p.pos
	right, err := p.atom()
	if err != nil {
		return nil, err
	}
	if err := p.checkComparable(right, rstart); err != nil {
		return nil, err
	}
	return &expr{kind: cmpExpr, op: op, operands: []*expr{left, right}}, nil
}

func (p *parser) paren() (*expr, error) {
	p.pos++ // '('
	p.skipBlank()
	e, err := p.logicalOr()
	if err != nil {
		return nil, err
	}
	p.skipBlank()
	if p.peek() != ')' {
		return nil, p.errorf("expected ')', found %s", p.describe())
	}
	p.pos++
	return e, nil
}

func (p *parser) cmpOp() (cmpOp, bool) {
	rest := p.src[p.pos:]
	for _, op := range [...]cmpOp{opEq, opNe, opLe, opGe, opLt, opGt} {
		if strings.HasPrefix(rest, cmpOpText[op]) {
			p.pos += len(cmpOpText[op])
			return op, true
		}
	}
	return 0, false
}

// checkTest enforces that an expression used on its own as a condition is
// a query (an existence test) or a function returning LogicalType or
// NodesType.
func (p *parser) checkTest(e *expr, start int) error {
	switch e.kind {
	case queryExpr:
		return nil
	case funcExpr:
		if e.fn.result == valueType {
			return p.errorAt(start, "result of %s() must be compared", e.fn.name)
		}
		return nil
	case literalExpr:
		return p.errorAt(start, "a literal must be compared")
	}
	return nil
}

// checkComparable enforces that a comparison side, or a ValueType function
// argument, is a literal, a singular query or a ValueType function.
func (p *parser) checkComparable(e *expr, start int) error {
	switch e.kind {
	case queryExpr:
		if !e.query.singular {
			return p.errorAt(start, "non-singular query is not comparable")
		}
	case funcExpr:
		if e.fn.result != valueType {
			return p.errorAt(start, "result of %s() is not comparable", e.fn.name)
		}
	}
	return nil
}

// atom parses a literal, an embedded query or a function call.
func (p *parser) atom() (*expr, error) {
	start := p.pos
	switch c := p.peek(); {
	case c == '@' || c == '$':
		p.pos++
		segs, err := p.segments()
		if err != nil {
			return nil, err
		}
		q := &query{absolute: c == '$', singular: isSingular(segs), segments: segs}
		return &expr{kind: queryExpr, query: q}, nil
	case c == '\'' || c == '"':
		s, err := p.stringLiteral()
		if err != nil {
			return nil, err
		}
		return &expr{kind: literalExpr, value: s}, nil
	case c == '-' || isDigit(c):
		return p.number()
	case c >= 'a' && c <= 'z':
		for c := p.peek(); c >= 'a' && c <= 'z' || c == '_' || isDigit(c); c = p.peek() {
			p.pos++
		}
		switch name := p.src[start:p.pos]; name {
		case "true":
			return &expr{kind: literalExpr, value: true}, nil
		case "false":
			return &expr{kind: literalExpr, value: false}, nil
		case "null":
			return &expr{kind: literalExpr, value: nil}, nil
		default:
			if p.peek() != '(' {
				return nil, p.errorAt(start, "unexpected identifier %q", name)
			}
			return p.call(name, start)
		}
	}
	return nil, p.errorf("expected literal, query or function, found %s", p.describe())
}

// number parses (int / "-0") [frac] [exp].
func (p *parser) number() (*expr, error) {
	start := p.pos
	if p.peek() == '-' {
		p.pos++
	}
	if !isDigit(p.peek()) {
		return nil, p.errorf("expected digit, found %s", p.describe())
	}
	if p.peek() == '0' {
		p.pos++
		if isDigit(p.peek()) {
			return nil, p.errorAt(start, "leading zeros are not allowed")
		}
	}
	p.digits()
	integer := true
	if p.peek() == '.' {
		p.pos++
		if !isDigit(p.peek()) {
			return nil, p.errorf("expected digit after '.', found %s", p.describe())
		}
		p.digits()
		integer = false
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.pos++
		if c := p.peek(); c == '+' || c == '-' {
			p.pos++
		}
		if !isDigit(p.peek()) {
			return nil, p.errorf("expected digit in exponent, found %s", p.describe())
		}
		p.digits()
		integer = false
	}
	text := p.src[start:p.pos]
	if integer {
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return &expr{kind: literalExpr, value: n, text: text}, nil
		}
	}
	// A range error still yields the nearest float64 (±Inf or 0), which is
	// the value such a literal denotes.
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, p.errorAt(start, "invalid number")
	}
	return &expr{kind: literalExpr, value: f, text: text}, nil
}

func (p *parser) digits() {
	for isDigit(p.peek()) {
		p.pos++
	}
}

// call parses a function expression whose name has been consumed and
// type-checks its arguments against the function's signature.
func (p *parser) call(name string, start int) (*expr, error) {
	fn, ok := functions[name]
	if !ok {
		return nil, p.errorAt(start, "unknown function %q", name)
	}
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.pos++ // '('
	p.skipBlank()
	var args []*expr
	if p.peek() != ')' {
		for {
			if len(args) == len(fn.params) {
				return nil, p.errorf("too many arguments to %s()", name)
			}
			a, err := p.argument(fn.params[len(args)])
			if err != nil {
				return nil, err
			}
			args = append(args, a)
			p.skipBlank()
			if p.peek() != ',' {
				break
			}
			p.pos++
			p.skipBlank()
		}
	}
	if p.peek() != ')' {
		return nil, p.errorf("expected ',' or ')', found %s", p.describe())
	}
	p.pos++
	if len(args) != len(fn.params) {
		return nil, p.errorAt(start, "%s() takes %d argument(s), got %d", name, len(fn.params), len(args))
	}
	e := &expr{kind: funcExpr, fn: fn, operands: args}
	if fn.id == fnMatch || fn.id == fnSearch {
		if s, ok := args[1].value.(string); ok && args[1].kind == literalExpr {
			e.re = compilePattern(s, fn.id == fnMatch)
			e.badRe = e.re == nil
		}
	}
	return e, nil
}

// argument parses one function argument. None of the RFC 9535 functions
// takes a LogicalType parameter, so an argument is always a single
// literal, query or function call.
func (p *parser) argument(t paramType) (*expr, error) {
	start := p.pos
	a, err := p.atom()
	if err != nil {
		return nil, err
	}
	switch t {
	case valueParam:
		return a, p.checkComparable(a, start)
	case nodesParam:
		if a.kind != queryExpr {
			return nil, p.errorAt(start, "argument must be a query")
		}
	}
	return a, nil
}
