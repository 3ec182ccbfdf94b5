package sdk

import (
	"encoding/json"
	"fmt"
	"strings"

	"unicode/utf8"

	"github.com/fledge-flags/fledge/engine"
)

// maxNesting bounds how deep unknown or object-valued members may nest, so a
// hostile body cannot exhaust the stack.
const maxNesting = 64

// decoder is a strict, single-pass JSON reader specialised for identity
// requests. encoding/json spent most of an identities request on reflection
// and per-field copies; this reads the body once, takes strings as
// substrings of one copy of it and allocates a handful of times per request.
type decoder struct {
	s   string // the body, copied once
	raw []byte // the same bytes, for json.RawMessage slices
	i   int
	// edge applies the api role's rules (core's serializer): identifiers
	// and trait keys are trimmed and may be numbers, a missing identifier
	// means a fully transient identity, and trait_value is required.
	edge bool
}

type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return e.msg }

func (d *decoder) fail(format string, args ...any) error {
	return &syntaxError{fmt.Sprintf("offset %d: ", d.i) + fmt.Sprintf(format, args...)}
}

func (d *decoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) peek() byte {
	d.ws()
	if d.i >= len(d.s) {
		return 0
	}
	return d.s[d.i]
}

// atEnd reports whether only whitespace is left. (peek's 0 cannot tell the
// end from a NUL byte in the body.)
func (d *decoder) atEnd() bool {
	d.ws()
	return d.i >= len(d.s)
}

func (d *decoder) expect(c byte) error {
	if d.peek() != c {
		if d.i >= len(d.s) {
			return d.fail("unexpected end of input, want %q", c)
		}
		return d.fail("unexpected %q, want %q", d.s[d.i], c)
	}
	d.i++
	return nil
}

// str reads a JSON string and returns its value.
func (d *decoder) str() (string, error) {
	if d.peek() != '"' {
		return "", d.fail("want a string")
	}
	start := d.i
	d.i++
	escaped := false
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			if !escaped {
				return d.s[start+1 : d.i-1], nil
			}
			var v string
			if err := json.Unmarshal(d.raw[start:d.i], &v); err != nil {
				return "", d.fail("invalid string: %v", err)
			}
			return v, nil
		case c == '\\':
			escaped = true
			d.i += 2
		case c < 0x20:
			return "", d.fail("control character in string")
		default:
			d.i++
		}
	}
	return "", d.fail("unterminated string")
}

// value skips over any JSON value, validating it, and returns its span.
func (d *decoder) value(depth int) (start, end int, err error) {
	if depth > maxNesting {
		return 0, 0, d.fail("nesting deeper than %d", maxNesting)
	}
	c := d.peek()
	start = d.i
	switch {
	case c == '"':
		_, err = d.str()
	case c == '{':
		d.i++
		if d.peek() == '}' {
			d.i++
			break
		}
		for {
			if _, err = d.str(); err != nil {
				return
			}
			if err = d.expect(':'); err != nil {
				return
			}
			if _, _, err = d.value(depth + 1); err != nil {
				return
			}
			if d.peek() == ',' {
				d.i++
				continue
			}
			err = d.expect('}')
			break
		}
	case c == '[':
		d.i++
		if d.peek() == ']' {
			d.i++
			break
		}
		for {
			if _, _, err = d.value(depth + 1); err != nil {
				return
			}
			if d.peek() == ',' {
				d.i++
				continue
			}
			err = d.expect(']')
			break
		}
	case c == 't':
		err = d.literal("true")
	case c == 'f':
		err = d.literal("false")
	case c == 'n':
		err = d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		err = d.number()
	case c == 0:
		err = d.fail("unexpected end of input")
	default:
		err = d.fail("unexpected %q", c)
	}
	return start, d.i, err
}

func (d *decoder) literal(word string) error {
	if len(d.s)-d.i < len(word) || d.s[d.i:d.i+len(word)] != word {
		return d.fail("invalid literal")
	}
	d.i += len(word)
	return nil
}

// number validates the JSON number grammar.
func (d *decoder) number() error {
	s, i := d.s, d.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return d.fail("invalid number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return d.fail("invalid number")
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return d.fail("invalid number")
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	d.i = i
	return nil
}

// members walks an object's members, calling fn with each key; fn must
// consume the member's value.
func (d *decoder) members(fn func(key string) error) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.i++
		return nil
	}
	for {
		key, err := d.str()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := fn(key); err != nil {
			return err
		}
		if d.peek() == ',' {
			d.i++
			continue
		}
		return d.expect('}')
	}
}

func invalidJSON(err error) *FieldError {
	return fieldErr("json_invalid", "request body is not valid JSON: "+err.Error())
}

// decodeIdentityRequest is DecodeIdentityRequest's reader.
func decodeIdentityRequest(body []byte, edge bool) (*IdentityRequest, error) {
	if !utf8.Valid(body) {
		return nil, fieldErr("json_invalid", "request body is not valid UTF-8")
	}
	d := &decoder{raw: append([]byte(nil), body...), edge: edge}
	d.s = string(d.raw)
	if c := d.peek(); c != '{' {
		if _, _, err := d.value(0); err != nil {
			return nil, invalidJSON(err)
		}
		return nil, fieldErr("model_attributes_type", "request body must be a JSON object")
	}
	req := &IdentityRequest{}
	var (
		identifierSeen bool
		identifierErr  *FieldError
		fieldError     *FieldError // first semantic error, reported once the JSON is known valid
	)
	note := func(fe *FieldError) {
		if fieldError == nil {
			fieldError = fe
		}
	}
	err := d.members(func(key string) error {
		switch key {
		case "identifier":
			identifierSeen = true
			identifierErr = nil
			if d.peek() == 'n' {
				if err := d.literal("null"); err != nil {
					return err
				}
				identifierSeen = false
				return nil
			}
			if d.peek() != '"' {
				start, end, err := d.value(1)
				if err != nil {
					return err
				}
				if d.edge && isNumberStart(d.s[start]) {
					req.Identity.Identifier = d.s[start:end] // core turns a number into its text
					return nil
				}
				identifierErr = fieldErr("string_type", "Input should be a valid string", "identifier")
				return nil
			}
			s, err := d.str()
			if err != nil {
				return err
			}
			if d.edge {
				s = strings.TrimSpace(s)
			}
			req.Identity.Identifier = s
		case "transient":
			start, end, err := d.value(1)
			if err != nil {
				return err
			}
			switch d.s[start:end] {
			case "true":
				req.Transient = true
			case "false", "null":
				req.Transient = false
			default:
				note(fieldErr("bool_type", "Input should be a valid boolean", "transient"))
			}
		case "traits":
			return d.traits(req, note)
		default:
			_, _, err := d.value(1)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, invalidJSON(err)
	}
	if !d.atEnd() {
		return nil, fieldErr("json_invalid", "request body has data after the JSON object")
	}
	if d.edge {
		// No identifier (missing, null, empty or blank) is a fully
		// transient identity, decided by the identify stage.
		if len(req.Identity.Identifier) > MaxEdgeIdentifierBytes {
			return nil, fieldErr("string_too_long", fmt.Sprintf("Identifier is %d UTF-8 bytes; the limit is %d", len(req.Identity.Identifier), MaxEdgeIdentifierBytes), "identifier")
		}
		if identifierErr != nil {
			return nil, identifierErr
		}
		if fieldError != nil {
			return nil, fieldError
		}
		return req, nil
	}
	switch {
	case !identifierSeen:
		return nil, fieldErr("missing", "Field required", "identifier")
	case identifierErr != nil:
		return nil, identifierErr
	case req.Identity.Identifier == "":
		return nil, fieldErr("string_too_short", "String should have at least 1 character", "identifier")
	case utf8.RuneCountInString(req.Identity.Identifier) > MaxIdentifierChars:
		return nil, fieldErr("string_too_long", fmt.Sprintf("String should have at most %d characters", MaxIdentifierChars), "identifier")
	}
	if fieldError != nil {
		return nil, fieldError
	}
	return req, nil
}

func (d *decoder) traits(req *IdentityRequest, note func(*FieldError)) error {
	switch d.peek() {
	case 'n':
		req.Identity.Traits, req.RawTraits = nil, nil
		return d.literal("null")
	case '[':
	default:
		if _, _, err := d.value(1); err != nil {
			return err
		}
		note(fieldErr("list_type", "Input should be a valid list", "traits"))
		return nil
	}
	d.i++
	// Size the lists once: every trait names its key, so counting the key
	// name bounds the number of traits closely.
	n := strings.Count(d.s[d.i:], `"trait_key"`)
	req.Identity.Traits = make([]engine.Trait, 0, n)
	req.RawTraits = make([]RawTrait, 0, n)
	if d.peek() == ']' {
		d.i++
		return nil
	}
	for i := 0; ; i++ {
		if err := d.trait(req, i, note); err != nil {
			return err
		}
		if d.peek() == ',' {
			d.i++
			continue
		}
		return d.expect(']')
	}
}

func (d *decoder) trait(req *IdentityRequest, i int, note func(*FieldError)) error {
	if d.peek() != '{' {
		if _, _, err := d.value(2); err != nil {
			return err
		}
		note(fieldErr("model_type", "Input should be an object", "traits", i))
		return nil
	}
	var (
		key                  string
		keySeen, keyIsString bool
		rt                   RawTrait
		valStart, valEnd     = -1, -1
		strVal               string
		isStr                bool
	)
	err := d.members(func(member string) error {
		switch member {
		case "trait_key":
			keySeen = true
			if d.peek() == '"' {
				s, err := d.str()
				if d.edge {
					s = strings.TrimSpace(s)
				}
				key, keyIsString = s, true
				return err
			}
			keyIsString = false
			start, end, err := d.value(3)
			if err == nil && d.edge && isNumberStart(d.s[start]) {
				key, keyIsString = d.s[start:end], true
			}
			return err
		case "trait_value":
			var err error
			if d.peek() == '"' {
				// Strings, the common case, come straight from the body copy.
				valStart = d.i
				strVal, err = d.str()
				valEnd, isStr = d.i, true
				return err
			}
			isStr = false
			valStart, valEnd, err = d.value(3)
			return err
		case "transient":
			start, end, err := d.value(3)
			if err != nil {
				return err
			}
			switch d.s[start:end] {
			case "true":
				rt.Transient = true
			case "false", "null":
				rt.Transient = false
			default:
				note(fieldErr("bool_type", "Input should be a valid boolean", "traits", i, "transient"))
			}
			return nil
		default:
			_, _, err := d.value(3)
			return err
		}
	})
	if err != nil {
		return err
	}
	switch {
	case !keySeen:
		note(fieldErr("missing", "Field required", "traits", i, "trait_key"))
		return nil
	case !keyIsString:
		note(fieldErr("string_type", "Input should be a valid string", "traits", i, "trait_key"))
		return nil
	case key == "":
		note(fieldErr("string_too_short", "String should have at least 1 character", "traits", i, "trait_key"))
		return nil
	case utf8.RuneCountInString(key) > MaxTraitKeyChars:
		note(fieldErr("string_too_long", fmt.Sprintf("String should have at most %d characters", MaxTraitKeyChars), "traits", i, "trait_key"))
		return nil
	}
	if valStart < 0 && d.edge {
		note(fieldErr("missing", "Field required", "traits", i, "trait_value"))
		return nil
	}
	rt.Key = key
	var raw json.RawMessage
	if valStart >= 0 {
		raw = d.raw[valStart:valEnd:valEnd]
	}
	var (
		v       engine.Value
		compact json.RawMessage
		fe      *FieldError
	)
	if isStr {
		v, compact = engine.String(strVal), raw
		if len(strVal) > MaxTraitValueChars && utf8.RuneCountInString(strVal) > MaxTraitValueChars {
			fe = fieldErr("string_too_long", fmt.Sprintf("Value string is too long. Must be less than %d character", MaxTraitValueChars))
		}
	} else {
		v, compact, fe = traitValue(raw)
	}
	if fe != nil {
		fe.Loc = append([]any{"body", "traits", i, "trait_value"}, fe.Loc[1:]...)
		note(fe)
		return nil
	}
	rt.Value = compact
	req.RawTraits = append(req.RawTraits, rt)
	req.Identity.Traits = append(req.Identity.Traits, engine.Trait{Name: key, Value: v})
	return nil
}

// isNumberStart reports whether a JSON value starting with c is a number.
func isNumberStart(c byte) bool { return c == '-' || (c >= '0' && c <= '9') }
