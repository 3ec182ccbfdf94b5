package engine

import (
	"math"
	"math/big"
	"strconv"
	"strings"
)

// The reference engine is written in Python, and several rules (hash inputs,
// REGEX subjects, IN candidates, the SPLIT reason text) depend on how Python
// turns values into text or parses text into numbers. These helpers reproduce
// exactly those conversions; Go's own formats differ in small but visible ways.

// appendPyFloat appends Python's repr of f: shortest round-trip digits,
// positional for decimal exponents in [-4, 16), scientific otherwise.
func appendPyFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "nan"...)
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	neg := e[0] == '-'
	if neg {
		e = e[1:]
	}
	// e looks like d[.ddd]e±XX
	epos := strings.IndexByte(string(e), 'e')
	mant := e[:epos]
	exp, _ := strconv.Atoi(string(e[epos+1:]))
	digits := make([]byte, 0, 20)
	for _, c := range mant {
		if c != '.' {
			digits = append(digits, c)
		}
	}
	if neg {
		dst = append(dst, '-')
	}
	if exp >= -4 && exp < 16 {
		if exp < 0 {
			dst = append(dst, '0', '.')
			for i := 0; i < -exp-1; i++ {
				dst = append(dst, '0')
			}
			return append(dst, digits...)
		}
		intLen := exp + 1
		if len(digits) <= intLen {
			dst = append(dst, digits...)
			for i := len(digits); i < intLen; i++ {
				dst = append(dst, '0')
			}
			return append(dst, '.', '0')
		}
		dst = append(dst, digits[:intLen]...)
		dst = append(dst, '.')
		return append(dst, digits[intLen:]...)
	}
	dst = append(dst, digits[0])
	if len(digits) > 1 {
		dst = append(dst, '.')
		dst = append(dst, digits[1:]...)
	}
	dst = append(dst, 'e')
	if exp < 0 {
		dst = append(dst, '-')
		exp = -exp
	} else {
		dst = append(dst, '+')
	}
	if exp < 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, int64(exp), 10)
}

// pyFloatString is Python's str(float).
func pyFloatString(f float64) string { return string(appendPyFloat(nil, f)) }

// isPySpace reports the ASCII whitespace Python's str.strip removes; the
// Unicode spaces it also removes are not worth the cost here.
func trimPySpace(s string) string {
	return strings.Trim(s, " \t\n\r\v\f")
}

// digitsWithUnderscores validates Python's digit grammar: one or more ASCII
// digits, single underscores allowed only between two digits. It returns the
// digits with the underscores removed.
func digitsWithUnderscores(s string) (string, bool) {
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' {
		return "", false
	}
	hasUnderscore := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c == '_':
			if s[i-1] == '_' {
				return "", false
			}
			hasUnderscore = true
		default:
			return "", false
		}
	}
	if !hasUnderscore {
		return s, true
	}
	return strings.ReplaceAll(s, "_", ""), true
}

// pyInt parses text as Python's int() does. The result is either an int64
// or, for values outside int64, a *big.Int.
func pyInt(s string) (i int64, b *big.Int, ok bool) {
	s = trimPySpace(s)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	d, ok := digitsWithUnderscores(s)
	if !ok {
		return 0, nil, false
	}
	if neg {
		d = "-" + d
	}
	if v, err := strconv.ParseInt(d, 10, 64); err == nil {
		return v, nil, true
	}
	b, ok = new(big.Int).SetString(d, 10)
	return 0, b, ok
}

// pyFloat parses text as Python's float() does: no hex, underscores only
// between digits, inf/infinity/nan in any case.
func pyFloat(s string) (float64, bool) {
	s = trimPySpace(s)
	body := s
	sign := ""
	if body != "" && (body[0] == '+' || body[0] == '-') {
		sign = body[:1]
		body = body[1:]
	}
	switch strings.ToLower(body) {
	case "inf", "infinity":
		if sign == "-" {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	case "nan":
		return math.NaN(), true
	}
	mant, exp := body, ""
	if i := strings.IndexAny(body, "eE"); i >= 0 {
		mant, exp = body[:i], body[i+1:]
		if exp != "" && (exp[0] == '+' || exp[0] == '-') {
			exp = exp[1:]
			if _, ok := digitsWithUnderscores(exp); !ok {
				return 0, false
			}
		} else if _, ok := digitsWithUnderscores(exp); !ok {
			return 0, false
		}
	}
	intPart, fracPart := mant, ""
	hasDot := false
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, fracPart, hasDot = mant[:i], mant[i+1:], true
	}
	if intPart == "" && fracPart == "" {
		return 0, false
	}
	if intPart != "" {
		if _, ok := digitsWithUnderscores(intPart); !ok {
			return 0, false
		}
	}
	if fracPart != "" {
		if _, ok := digitsWithUnderscores(fracPart); !ok {
			return 0, false
		}
	} else if !hasDot && intPart == "" {
		return 0, false
	}
	clean := strings.ReplaceAll(sign+body, "_", "")
	f, err := strconv.ParseFloat(clean, 64)
	if err != nil {
		// Out-of-range literals become ±Inf or 0 in Python as well.
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f, true
		}
		return 0, false
	}
	return f, true
}

// pyMod is Python's floored modulo on floats.
func pyMod(x, d float64) float64 {
	r := math.Mod(x, d)
	if r != 0 && (r < 0) != (d < 0) {
		r += d
	}
	return r
}
