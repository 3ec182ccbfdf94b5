package jsonpath

import "regexp"

type segment struct {
	descendant bool
	selectors  []selector
}

type selectorKind uint8

const (
	nameSelector selectorKind = iota
	indexSelector
	sliceSelector
	wildcardSelector
	filterSelector
)

type selector struct {
	kind   selectorKind
	name   string
	index  int64
	slice  sliceBounds
	filter *expr
}

type sliceBounds struct {
	start, end, step          int64
	hasStart, hasEnd, hasStep bool
}

// query is an embedded @ or $ query inside a filter expression.
type query struct {
	absolute bool
	singular bool
	segments []segment
}

type exprKind uint8

const (
	orExpr exprKind = iota
	andExpr
	notExpr
	cmpExpr
	literalExpr
	queryExpr
	funcExpr
)

type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

var cmpOpText = [...]string{opEq: "==", opNe: "!=", opLt: "<", opLe: "<=", opGt: ">", opGe: ">="}

// expr is a node of a filter expression. A single struct with a kind tag
// keeps the evaluator a pair of switch statements.
type expr struct {
	kind     exprKind
	op       cmpOp   // cmpExpr
	operands []*expr // or/and/not operands, comparison sides, function arguments
	// value of a literalExpr: string, bool, nil, int64 or float64.
	value any
	// text is the source spelling of a number literal, kept so that String
	// round-trips literals that float64 cannot represent exactly.
	text  string
	query *query    // queryExpr
	fn    *function // funcExpr
	// re is the compiled pattern of match/search when it is a string
	// literal; badRe records that the literal is not a valid I-Regexp.
	re    *regexp.Regexp
	badRe bool
}

func isSingular(segs []segment) bool {
	for i := range segs {
		s := &segs[i]
		if s.descendant || len(s.selectors) != 1 {
			return false
		}
		if k := s.selectors[0].kind; k != nameSelector && k != indexSelector {
			return false
		}
	}
	return true
}
