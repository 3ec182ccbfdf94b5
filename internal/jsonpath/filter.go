package jsonpath

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
)

// test evaluates a logical expression with cur as the current node @.
func (ev *evaluator) test(e *expr, cur any) bool {
	switch e.kind {
	case orExpr:
		for _, o := range e.operands {
			if ev.test(o, cur) {
				return true
			}
		}
		return false
	case andExpr:
		for _, o := range e.operands {
			if !ev.test(o, cur) {
				return false
			}
		}
		return true
	case notExpr:
		return !ev.test(e.operands[0], cur)
	case cmpExpr:
		l, lok := ev.value(e.operands[0], cur)
		r, rok := ev.value(e.operands[1], cur)
		return compare(e.op, l, lok, r, rok)
	case queryExpr:
		found := false
		ev.nodes(e.query, cur, func(any) bool {
			found = true
			return false
		})
		return found
	case funcExpr:
		return e.fn.result == logicalType && ev.callLogical(e, cur)
	}
	return false
}

// value evaluates a comparable: a literal, a singular query or a ValueType
// function. ok is false for the special result Nothing.
func (ev *evaluator) value(e *expr, cur any) (v any, ok bool) {
	switch e.kind {
	case literalExpr:
		return e.value, true
	case queryExpr:
		start := cur
		if e.query.absolute {
			start = ev.root
		}
		return singularLookup(e.query.segments, start)
	case funcExpr:
		return ev.callValue(e, cur)
	}
	return nil, false
}

// compare implements RFC 9535 §2.3.5.2.2. Every operator is derived from
// == and <, which is what makes Nothing <= Nothing true but Nothing < 1
// false.
func compare(op cmpOp, l any, lok bool, r any, rok bool) bool {
	switch op {
	case opEq:
		return equal(l, lok, r, rok)
	case opNe:
		return !equal(l, lok, r, rok)
	case opLt:
		return less(l, lok, r, rok)
	case opLe:
		return less(l, lok, r, rok) || equal(l, lok, r, rok)
	case opGt:
		return less(r, rok, l, lok)
	case opGe:
		return less(r, rok, l, lok) || equal(l, lok, r, rok)
	}
	return false
}

func equal(l any, lok bool, r any, rok bool) bool {
	if !lok || !rok {
		return lok == rok
	}
	return deepEqual(l, r, 0)
}

func less(l any, lok bool, r any, rok bool) bool {
	if !lok || !rok {
		return false
	}
	if a, ok := asNumber(l); ok {
		if b, ok := asNumber(r); ok {
			c, ok := a.cmp(b)
			return ok && c < 0
		}
		return false
	}
	if a, ok := l.(string); ok {
		if b, ok := r.(string); ok {
			// Byte order of UTF-8 is code point order.
			return a < b
		}
	}
	return false
}

func deepEqual(a, b any, depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch a := a.(type) {
	case nil:
		return b == nil
	case bool:
		b, ok := b.(bool)
		return ok && a == b
	case string:
		b, ok := b.(string)
		return ok && a == b
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !deepEqual(a[i], b[i], depth+1) {
				return false
			}
		}
		return true
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok || !deepEqual(av, bv, depth+1) {
				return false
			}
		}
		return true
	}
	if x, ok := asNumber(a); ok {
		if y, ok := asNumber(b); ok {
			c, ok := x.cmp(y)
			return ok && c == 0
		}
	}
	return false
}

// number is a JSON number that keeps integers exact: comparing through
// float64 alone would call 2^53 and 2^53+1 equal.
type number struct {
	isInt bool
	i     int64
	f     float64
}

func asNumber(v any) (number, bool) {
	switch v := v.(type) {
	case float64:
		return number{f: v}, true
	case int64:
		return number{isInt: true, i: v}, true
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return number{isInt: true, i: i}, true
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return number{}, false
		}
		return number{f: f}, true
	case int:
		return number{isInt: true, i: int64(v)}, true
	case int32:
		return number{isInt: true, i: int64(v)}, true
	case int16:
		return number{isInt: true, i: int64(v)}, true
	case int8:
		return number{isInt: true, i: int64(v)}, true
	case uint:
		return fromUint(uint64(v)), true
	case uint64:
		return fromUint(v), true
	case uint32:
		return number{isInt: true, i: int64(v)}, true
	case uint16:
		return number{isInt: true, i: int64(v)}, true
	case uint8:
		return number{isInt: true, i: int64(v)}, true
	case float32:
		return number{f: float64(v)}, true
	}
	return number{}, false
}

func fromUint(u uint64) number {
	if u > math.MaxInt64 {
		return number{f: float64(u)}
	}
	return number{isInt: true, i: int64(u)}
}

// cmp returns the sign of a-b; ok is false if either is NaN.
func (a number) cmp(b number) (int, bool) {
	switch {
	case a.isInt && b.isInt:
		return cmpOrdered(a.i, b.i), true
	case a.isInt:
		return cmpIntFloat(a.i, b.f)
	case b.isInt:
		c, ok := cmpIntFloat(b.i, a.f)
		return -c, ok
	}
	if math.IsNaN(a.f) || math.IsNaN(b.f) {
		return 0, false
	}
	return cmpOrdered(a.f, b.f), true
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cmpIntFloat compares exactly, without rounding i to float64.
func cmpIntFloat(i int64, f float64) (int, bool) {
	switch {
	case math.IsNaN(f):
		return 0, false
	case f >= 0x1p63:
		return -1, true
	case f < -0x1p63:
		return 1, true
	}
	t := math.Trunc(f)
	if c := cmpOrdered(i, int64(t)); c != 0 {
		return c, true
	}
	return cmpOrdered(0, f-t), true
}
