package jsonpath

import (
	"strconv"
	"strings"
)

func writeSegments(b *strings.Builder, segs []segment) {
	for i := range segs {
		s := &segs[i]
		if s.descendant {
			b.WriteString("..")
		}
		b.WriteByte('[')
		for j := range s.selectors {
			if j > 0 {
				b.WriteString(", ")
			}
			writeSelector(b, &s.selectors[j])
		}
		b.WriteByte(']')
	}
}

func writeSelector(b *strings.Builder, sel *selector) {
	switch sel.kind {
	case nameSelector:
		writeQuoted(b, sel.name)
	case indexSelector:
		b.WriteString(strconv.FormatInt(sel.index, 10))
	case sliceSelector:
		s := sel.slice
		if s.hasStart {
			b.WriteString(strconv.FormatInt(s.start, 10))
		}
		b.WriteByte(':')
		if s.hasEnd {
			b.WriteString(strconv.FormatInt(s.end, 10))
		}
		if s.hasStep {
			b.WriteByte(':')
			b.WriteString(strconv.FormatInt(s.step, 10))
		}
	case wildcardSelector:
		b.WriteByte('*')
	case filterSelector:
		b.WriteByte('?')
		writeExpr(b, sel.filter)
	}
}

// writeQuoted writes s as a single-quoted string literal using the escapes
// of RFC 9535 normalized paths (§2.7).
func writeQuoted(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\'':
			b.WriteString(`\'`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[r>>4])
				b.WriteByte(hex[r&0xF])
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('\'')
}

// writeExpr adds parentheses only where the tree shape would otherwise be
// lost on reparsing.
func writeExpr(b *strings.Builder, e *expr) {
	switch e.kind {
	case orExpr, andExpr:
		sep := " || "
		if e.kind == andExpr {
			sep = " && "
		}
		for i, o := range e.operands {
			if i > 0 {
				b.WriteString(sep)
			}
			wrap := o.kind == orExpr || (e.kind == andExpr && o.kind == andExpr)
			writeMaybeParen(b, o, wrap)
		}
	case notExpr:
		b.WriteByte('!')
		o := e.operands[0]
		writeMaybeParen(b, o, o.kind != queryExpr && o.kind != funcExpr)
	case cmpExpr:
		writeExpr(b, e.operands[0])
		b.WriteByte(' ')
		b.WriteString(cmpOpText[e.op])
		b.WriteByte(' ')
		writeExpr(b, e.operands[1])
	case literalExpr:
		switch v := e.value.(type) {
		case string:
			writeQuoted(b, v)
		case bool:
			b.WriteString(strconv.FormatBool(v))
		case nil:
			b.WriteString("null")
		default:
			b.WriteString(e.text)
		}
	case queryExpr:
		if e.query.absolute {
			b.WriteByte('$')
		} else {
			b.WriteByte('@')
		}
		writeSegments(b, e.query.segments)
	case funcExpr:
		b.WriteString(e.fn.name)
		b.WriteByte('(')
		for i, a := range e.operands {
			if i > 0 {
				b.WriteString(", ")
			}
			writeExpr(b, a)
		}
		b.WriteByte(')')
	}
}

func writeMaybeParen(b *strings.Builder, e *expr, paren bool) {
	if paren {
		b.WriteByte('(')
	}
	writeExpr(b, e)
	if paren {
		b.WriteByte(')')
	}
}
