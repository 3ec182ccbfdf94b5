// Package sdk is the wire format of Flagsmith's SDK endpoints: decoding
// identity requests with the limits the Flagsmith API enforces, and encoding
// responses in the exact shape the SDKs parse.
package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	// MaxEdgeIdentifierBytes is the api role's identifier limit: DynamoDB's
	// key limit, enforced on every store (identity.MaxIdentifierBytes).
	MaxEdgeIdentifierBytes = 1024
)

// IdentityRequest is a decoded POST /api/v1/identities/ body.
type IdentityRequest struct {
	Identity engine.Identity
	// RawTraits keeps each trait as sent, to echo it back.
	RawTraits []RawTrait
	Transient bool
	// Get marks GET /identities/?identifier=: no traits; for the api role
	// a lazy create unless Transient.
	Get bool
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

// DecodeIdentityRequest decodes and validates an identities request body
// with the proxy's rules (Flagsmith's edge proxy: identifier required).
func DecodeIdentityRequest(body []byte) (*IdentityRequest, error) {
	return decodeIdentityRequest(body, false)
}

// DecodeEdgeIdentityRequest decodes and validates an identities request
// body with the api role's rules, which are core's: the identifier is
// trimmed, may be a number, and may be absent or blank (a fully transient
// identity); it must fit in MaxEdgeIdentifierBytes; trait keys are trimmed
// and trait_value is required.
func DecodeEdgeIdentityRequest(body []byte) (*IdentityRequest, error) {
	return decodeIdentityRequest(body, true)
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

// AppendIdentityResponse appends the /identities/ response body of the
// proxy role: traits are echoed as sent (it stores nothing).
func AppendIdentityResponse(dst []byte, snap *environment.Snapshot, kind environment.KeyKind, req *IdentityRequest) []byte {
	var id Identified
	Transient{}.identify(req, &id)
	return AppendIdentified(dst, snap, kind, &id)
}

// AppendIdentified appends the /identities/ response body for an
// identified request: {"identifier":…,"flags":[…],"traits":[…]}. Traits are
// left out when the environment hides sensitive data.
func AppendIdentified(dst []byte, snap *environment.Snapshot, kind environment.KeyKind, id *Identified) []byte {
	dst = append(dst, `{"identifier":`...)
	dst = engine.AppendJSONString(dst, id.Identity.Identifier)
	dst = append(dst, `,"flags":`...)
	dst = snap.AppendIdentityFlags(dst, kind, &id.Identity)
	dst = append(dst, `,"traits":`...)
	if snap.HideSensitiveData() {
		return append(dst, "[]}"...)
	}
	return append(AppendTraits(dst, id.Traits), '}')
}

// AppendTraits appends traits as the SDKs read them:
// [{"trait_key","trait_value"(,"transient":true)}].
func AppendTraits(dst []byte, traits []RawTrait) []byte {
	dst = append(dst, '[')
	for i, t := range traits {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"trait_key":`...)
		dst = engine.AppendJSONString(dst, t.Key)
		dst = append(dst, `,"trait_value":`...)
		if t.Value == nil {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, t.Value...)
		}
		if t.Transient {
			dst = append(dst, `,"transient":true`...)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}
