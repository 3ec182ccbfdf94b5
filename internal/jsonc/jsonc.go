// Package jsonc turns JSON with comments (JSONC, the subset of JSON5 the
// conformance suite uses) into plain JSON.
package jsonc

import "errors"

// Standardize returns src with // line comments and /* block */ comments
// replaced by spaces, so byte offsets in later JSON errors still point at the
// right place. Text inside strings is left alone. Trailing commas are removed.
func Standardize(src []byte) ([]byte, error) {
	out := make([]byte, len(src))
	copy(out, src)
	inString := false
	lastSignificant := -1 // index of the last non-space, non-comment byte
	for i := 0; i < len(out); i++ {
		c := out[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
				lastSignificant = i
			}
			continue
		}
		switch {
		case c == '"':
			inString = true
			lastSignificant = i
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			for i < len(out) && out[i] != '\n' {
				out[i] = ' '
				i++
			}
		case c == '/' && i+1 < len(out) && out[i+1] == '*':
			j := i + 2
			for j+1 < len(out) && !(out[j] == '*' && out[j+1] == '/') {
				j++
			}
			if j+1 >= len(out) {
				return nil, errors.New("jsonc: unterminated block comment")
			}
			for k := i; k <= j+1; k++ {
				if out[k] != '\n' {
					out[k] = ' '
				}
			}
			i = j + 1
		case c == '}' || c == ']':
			if lastSignificant >= 0 && out[lastSignificant] == ',' {
				out[lastSignificant] = ' '
			}
			lastSignificant = i
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			lastSignificant = i
		}
	}
	if inString {
		return nil, errors.New("jsonc: unterminated string")
	}
	return out, nil
}
