// Package sdk is the wire format of Flagsmith's SDK endpoints: decoding
// identity requests with the limits the Flagsmith API enforces, and encoding
// responses in the exact shape the SDKs parse.
package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf8"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
)

// Limits from the Flagsmith API's own validation.
const (
	MaxTraitValueChars = 2000
	MaxTraitKeyChars   = 200
	MaxIdentifierChars = 2000
)

// IdentityRequest is a decoded POST /api/v1/identities/ body.
type IdentityRequest struct {
	Identity engine.Identity
	// RawTraits keeps each trait as sent, to echo it back.
	RawTraits []RawTrait
	Transient bool
}

// RawTrait is a trait as it came in.
type RawTrait struct {
	Key       string
	Value     json.RawMessage // compact; "null" for null
	Transient bool
}

// FieldError is a validation failure of one field of a request, reported in
// the shape of the Python edge proxy's 422 responses.
type FieldError struct {
	Loc  []any // e.g. "body", "traits", 0, "trait_value"
	Type string
	Msg  string
}

func (e *FieldError) Error() string {
	var b bytes.Buffer
	for i, l := range e.Loc {
		if i > 0 {
			b.WriteByte('.')
		}
		fmt.Fprint(&b, l)
	}
	return b.String() + ": " + e.Msg
}

// JSON returns the 422 body: {"detail":[{"type","loc","msg"}]}.
func (e *FieldError) JSON() []byte {
	b, _ := json.Marshal(map[string]any{"detail": []any{map[string]any{"type": e.Type, "loc": e.Loc, "msg": e.Msg}}})
	return b
}

func fieldErr(typ, msg string, loc ...any) *FieldError {
	return &FieldError{Loc: append([]any{"body"}, loc...), Type: typ, Msg: msg}
}

// DecodeIdentityRequest decodes and validates an identities request body.
func DecodeIdentityRequest(body []byte) (*IdentityRequest, error) {
	if !utf8.Valid(body) {
		return nil, fieldErr("json_invalid", "request body is not valid UTF-8")
	}
	var raw struct {
		Identifier json.RawMessage `json:"identifier"`
		Traits     json.RawMessage `json:"traits"`
		Transient  json.RawMessage `json:"transient"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fieldErr("model_attributes_type", "request body must be a JSON object")
		}
		return nil, fieldErr("json_invalid", "request body is not valid JSON: "+err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fieldErr("json_invalid", "request body has data after the JSON object")
	}
	req := &IdentityRequest{}
	var identifier *string
	if len(raw.Identifier) == 0 || bytes.Equal(raw.Identifier, []byte("null")) {
		return nil, fieldErr("missing", "Field required", "identifier")
	}
	if err := json.Unmarshal(raw.Identifier, &identifier); err != nil {
		return nil, fieldErr("string_type", "Input should be a valid string", "identifier")
	}
	if *identifier == "" {
		return nil, fieldErr("string_too_short", "String should have at least 1 character", "identifier")
	}
	if utf8.RuneCountInString(*identifier) > MaxIdentifierChars {
		return nil, fieldErr("string_too_long", fmt.Sprintf("String should have at most %d characters", MaxIdentifierChars), "identifier")
	}
	req.Identity.Identifier = *identifier
	if len(raw.Transient) > 0 && !bytes.Equal(raw.Transient, []byte("null")) {
		if err := json.Unmarshal(raw.Transient, &req.Transient); err != nil {
			return nil, fieldErr("bool_type", "Input should be a valid boolean", "transient")
		}
	}
	if err := decodeTraits(raw.Traits, req); err != nil {
		return nil, err
	}
	return req, nil
}

func decodeTraits(data json.RawMessage, req *IdentityRequest) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil {
		return fieldErr("list_type", "Input should be a valid list", "traits")
	}
	req.Identity.Traits = make([]engine.Trait, 0, len(items))
	req.RawTraits = make([]RawTrait, 0, len(items))
	for i, item := range items {
		var t struct {
			Key       json.RawMessage `json:"trait_key"`
			Value     json.RawMessage `json:"trait_value"`
			Transient json.RawMessage `json:"transient"`
		}
		if err := json.Unmarshal(item, &t); err != nil {
			return fieldErr("model_type", "Input should be an object", "traits", i)
		}
		var key *string
		if len(t.Key) == 0 || json.Unmarshal(t.Key, &key) != nil || key == nil {
			if len(t.Key) == 0 {
				return fieldErr("missing", "Field required", "traits", i, "trait_key")
			}
			return fieldErr("string_type", "Input should be a valid string", "traits", i, "trait_key")
		}
		if *key == "" {
			return fieldErr("string_too_short", "String should have at least 1 character", "traits", i, "trait_key")
		}
		if utf8.RuneCountInString(*key) > MaxTraitKeyChars {
			return fieldErr("string_too_long", fmt.Sprintf("String should have at most %d characters", MaxTraitKeyChars), "traits", i, "trait_key")
		}
		rt := RawTrait{Key: *key}
		if len(t.Transient) > 0 && !bytes.Equal(t.Transient, []byte("null")) {
			if err := json.Unmarshal(t.Transient, &rt.Transient); err != nil {
				return fieldErr("bool_type", "Input should be a valid boolean", "traits", i, "transient")
			}
		}
		v, compact, err := traitValue(t.Value)
		if err != nil {
			err.Loc = append([]any{"body", "traits", i, "trait_value"}, err.Loc[1:]...)
			return err
		}
		rt.Value = compact
		req.RawTraits = append(req.RawTraits, rt)
		req.Identity.Traits = append(req.Identity.Traits, engine.Trait{Name: *key, Value: v})
	}
	return nil
}

// traitValue types a trait value: string (at most 2000 characters), integer,
// float, boolean or null. Objects and lists are stringified, as core does.
func traitValue(data json.RawMessage) (engine.Value, json.RawMessage, *FieldError) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return engine.None(), json.RawMessage("null"), nil
	}
	switch data[0] {
	case 'n':
		return engine.None(), json.RawMessage("null"), nil
	case 't':
		return engine.Bool(true), data, nil
	case 'f':
		return engine.Bool(false), data, nil
	case '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return engine.Value{}, nil, fieldErr("string_type", "Input should be a valid string")
		}
		if utf8.RuneCountInString(s) > MaxTraitValueChars {
			return engine.Value{}, nil, fieldErr("string_too_long",
				fmt.Sprintf("Value string is too long. Must be less than %d character", MaxTraitValueChars))
		}
		return engine.String(s), data, nil
	case '{', '[':
		var x any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&x); err != nil {
			return engine.Value{}, nil, fieldErr("json_invalid", "invalid JSON")
		}
		v := engine.ValueFromJSON(x)
		if utf8.RuneCountInString(v.Str) > MaxTraitValueChars {
			return engine.Value{}, nil, fieldErr("string_too_long",
				fmt.Sprintf("Value string is too long. Must be less than %d character", MaxTraitValueChars))
		}
		return v, data, nil
	default:
		v, ok := engine.NumberValue(string(data))
		if !ok {
			return engine.Value{}, nil, fieldErr("float_type", "Input should be a valid number")
		}
		if v.Kind == engine.KindFloat && (math.IsInf(v.Float, 0) || math.IsNaN(v.Float)) {
			return engine.Value{}, nil, fieldErr("finite_number", "Input should be a finite number")
		}
		return v, data, nil
	}
}

// AppendIdentityResponse appends the /identities/ response body:
// {"identifier":…,"flags":[…],"traits":[…]}. Traits are echoed as sent, as
// the Flagsmith edge proxy does (it stores nothing), unless the environment
// hides sensitive data.
func AppendIdentityResponse(dst []byte, snap *environment.Snapshot, kind environment.KeyKind, req *IdentityRequest) []byte {
	dst = append(dst, `{"identifier":`...)
	dst = engine.AppendJSONString(dst, req.Identity.Identifier)
	dst = append(dst, `,"flags":`...)
	dst = snap.AppendIdentityFlags(dst, kind, &req.Identity)
	dst = append(dst, `,"traits":[`...)
	if !snap.HideSensitiveData() {
		for i, t := range req.RawTraits {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"trait_key":`...)
			dst = engine.AppendJSONString(dst, t.Key)
			dst = append(dst, `,"trait_value":`...)
			dst = append(dst, t.Value...)
			if t.Transient {
				dst = append(dst, `,"transient":true`...)
			}
			dst = append(dst, '}')
		}
	}
	return append(dst, "]}"...)
}
