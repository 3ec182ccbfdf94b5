package engine

import (
	"encoding/json"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// Kind is the type of a trait or context value as the engine sees it.
type Kind uint8

// Value kinds. KindNone stands for a missing value, a JSON null, or a JSONPath
// that found nothing or found an object or array.
const (
	KindNone Kind = iota
	KindString
	KindInt
	KindFloat
	KindBool
)

// Value is a scalar trait value. Integers and floats are kept apart because
// the reference engine's rules differ between them (typing, hashing text).
type Value struct {
	Kind  Kind
	Str   string   // KindString
	Int   int64    // KindInt (when Big is nil); KindBool: 0 or 1
	Big   *big.Int // KindInt outside the int64 range
	Float float64  // KindFloat
}

// String returns a string value.
func String(s string) Value { return Value{Kind: KindString, Str: s} }

// Int returns an integer value.
func Int(i int64) Value { return Value{Kind: KindInt, Int: i} }

// Float returns a float value.
func Float(f float64) Value { return Value{Kind: KindFloat, Float: f} }

// Bool returns a boolean value.
func Bool(b bool) Value {
	if b {
		return Value{Kind: KindBool, Int: 1}
	}
	return Value{Kind: KindBool}
}

// None is the absent value.
func None() Value { return Value{} }

// IsNone reports whether v is absent.
func (v Value) IsNone() bool { return v.Kind == KindNone }

// NumberValue types a JSON number literal: integer when it has no '.', 'e'
// or 'E', float otherwise, as Python's json module does.
func NumberValue(lit string) (Value, bool) {
	if !strings.ContainsAny(lit, ".eE") {
		if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return Int(i), true
		}
		if b, ok := new(big.Int).SetString(lit, 10); ok {
			return Value{Kind: KindInt, Big: b}, true
		}
		return Value{}, false
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return Value{}, false
		}
	}
	return Float(f), true
}

// ValueFromJSON converts a decoded JSON scalar (decoded with UseNumber) to a
// Value. Objects and arrays are outside the schema; they become their Python
// repr text so that IS_SET still holds for them.
func ValueFromJSON(x any) Value {
	switch t := x.(type) {
	case nil:
		return None()
	case string:
		return String(t)
	case bool:
		return Bool(t)
	case json.Number:
		if v, ok := NumberValue(string(t)); ok {
			return v
		}
		return String(string(t))
	case float64:
		return Float(t)
	case int64:
		return Int(t)
	case int:
		return Int(int64(t))
	default:
		return String(string(appendPyRepr(nil, x)))
	}
}

// appendPyRepr writes Python's repr of a decoded JSON value, used only for
// values that are outside the schema (IN array elements, object traits).
func appendPyRepr(dst []byte, x any) []byte {
	switch t := x.(type) {
	case nil:
		return append(dst, "None"...)
	case string:
		return appendPyStrRepr(dst, t)
	case map[string]any:
		// Go maps lose the document's key order; sorted keys at least
		// make the text deterministic.
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = appendPyStrRepr(dst, k)
			dst = append(dst, ": "...)
			dst = appendPyRepr(dst, t[k])
		}
		return append(dst, '}')
	case []any:
		dst = append(dst, '[')
		for i, v := range t {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = appendPyRepr(dst, v)
		}
		return append(dst, ']')
	default:
		return ValueFromJSON(x).appendPyStr(dst)
	}
}

func appendPyStrRepr(dst []byte, s string) []byte {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	dst = append(dst, q)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			dst = append(dst, '\\', '\\')
		case c == q:
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, q)
}

// appendPyStr appends Python's str() of the value.
func (v Value) appendPyStr(dst []byte) []byte {
	switch v.Kind {
	case KindString:
		return append(dst, v.Str...)
	case KindInt:
		if v.Big != nil {
			return v.Big.Append(dst, 10)
		}
		return strconv.AppendInt(dst, v.Int, 10)
	case KindFloat:
		return appendPyFloat(dst, v.Float)
	case KindBool:
		if v.Int != 0 {
			return append(dst, "True"...)
		}
		return append(dst, "False"...)
	default:
		return append(dst, "None"...)
	}
}

// PyString is Python's str() of the value.
func (v Value) PyString() string {
	if v.Kind == KindString {
		return v.Str
	}
	return string(v.appendPyStr(nil))
}

// normalize applies the reference engine's trait typing: strings that are
// plain decimal integers or decimals become numbers.
func normalize(v Value) Value {
	if v.Kind != KindString {
		return v
	}
	s := v.Str
	if s == "" {
		return v
	}
	i := 0
	if s[0] == '-' {
		i = 1
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == start {
		return v
	}
	if i == len(s) {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return Int(n)
		}
		b, _ := new(big.Int).SetString(s, 10)
		return Value{Kind: KindInt, Big: b}
	}
	if s[i] != '.' {
		return v
	}
	i++
	fracStart := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == fracStart || i != len(s) {
		return v
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return v
		}
	}
	return Float(f)
}

// asFloat converts a numeric or boolean value to float64, as Python does in
// mixed arithmetic.
func (v Value) asFloat() (float64, bool) {
	switch v.Kind {
	case KindInt:
		if v.Big != nil {
			f, _ := new(big.Float).SetInt(v.Big).Float64()
			return f, true
		}
		return float64(v.Int), true
	case KindFloat:
		return v.Float, true
	case KindBool:
		return float64(v.Int), true
	}
	return 0, false
}
