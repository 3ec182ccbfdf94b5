package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
)

// MaxBulkIdentities is the bulk-identities endpoint's limit per request.
const MaxBulkIdentities = 100

// TraitRequest is a decoded POST /api/v1/traits/ body:
// {"identity":{"identifier"},"trait_key","trait_value"}.
type TraitRequest struct {
	Identifier string
	Key        string
	Value      engine.Value
}

// TraitWriter is the api role's trait endpoints: POST /api/v1/traits/ and
// POST|PUT /api/v1/bulk-identities/. The proxy has none.
type TraitWriter interface {
	// SetTrait stores one trait and returns the value as stored.
	SetTrait(ctx context.Context, snap *environment.Snapshot, kind environment.KeyKind, req *TraitRequest) (engine.Value, error)
	// Bulk identifies every request; replace (POST) makes each identity's
	// stored traits exactly the ones sent, otherwise (PUT) they are merged
	// as POST /identities/ merges them.
	Bulk(ctx context.Context, snap *environment.Snapshot, kind environment.KeyKind, reqs []*IdentityRequest, replace bool) error
}

// DecodeTraitRequest decodes and validates a POST /api/v1/traits/ body
// with core's rules: identifier and trait_key trimmed and required,
// trait_value required and not null, the usual length limits.
func DecodeTraitRequest(body []byte) (*TraitRequest, error) {
	if !utf8.Valid(body) {
		return nil, fieldErr("json_invalid", "request body is not valid UTF-8")
	}
	var raw struct {
		Identity *struct {
			Identifier json.RawMessage `json:"identifier"`
		} `json:"identity"`
		TraitKey   json.RawMessage `json:"trait_key"`
		TraitValue json.RawMessage `json:"trait_value"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		if bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
			return nil, fieldErr("json_invalid", "request body is not valid JSON: "+err.Error())
		}
		return nil, fieldErr("model_attributes_type", "request body must be a JSON object")
	}
	if raw.Identity == nil {
		return nil, fieldErr("missing", "Field required", "identity")
	}
	identifier, fe := textField(raw.Identity.Identifier, "identity", "identifier")
	if fe != nil {
		return nil, fe
	}
	if len(identifier) > MaxEdgeIdentifierBytes {
		return nil, fieldErr("string_too_long", fmt.Sprintf("Identifier is %d UTF-8 bytes; the limit is %d", len(identifier), MaxEdgeIdentifierBytes), "identity", "identifier")
	}
	key, fe := textField(raw.TraitKey, "trait_key")
	if fe != nil {
		return nil, fe
	}
	if utf8.RuneCountInString(key) > MaxTraitKeyChars {
		return nil, fieldErr("string_too_long", fmt.Sprintf("String should have at most %d characters", MaxTraitKeyChars), "trait_key")
	}
	if raw.TraitValue == nil {
		return nil, fieldErr("missing", "Field required", "trait_value")
	}
	v, _, fe := traitValue(raw.TraitValue)
	if fe != nil {
		fe.Loc = []any{"body", "trait_value"}
		return nil, fe
	}
	if v.Kind == engine.KindNone {
		return nil, fieldErr("null", "This field may not be null.", "trait_value")
	}
	return &TraitRequest{Identifier: identifier, Key: key, Value: v}, nil
}

// textField reads a required string (or number, as core's CharField
// accepts) and trims it.
func textField(raw json.RawMessage, loc ...any) (string, *FieldError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", fieldErr("missing", "Field required", loc...)
	}
	var s string
	switch c := raw[0]; {
	case c == '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fieldErr("string_type", "Input should be a valid string", loc...)
		}
	case c == '-' || (c >= '0' && c <= '9'):
		s = string(raw)
	default:
		return "", fieldErr("string_type", "Input should be a valid string", loc...)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fieldErr("string_too_short", "This field may not be blank.", loc...)
	}
	return s, nil
}

// DecodeBulkRequest decodes a bulk-identities body:
// {"data":[{"identifier","traits":[…]|null,"transient"?}…]}, at most
// MaxBulkIdentities items, each decoded as an api-role identities request
// that must name its identifier.
func DecodeBulkRequest(body []byte) ([]*IdentityRequest, error) {
	if !utf8.Valid(body) {
		return nil, fieldErr("json_invalid", "request body is not valid UTF-8")
	}
	var raw struct {
		Data *[]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fieldErr("json_invalid", "request body must be a JSON object with a data list: "+err.Error())
	}
	if raw.Data == nil {
		return nil, fieldErr("missing", "Field required", "data")
	}
	if len(*raw.Data) > MaxBulkIdentities {
		return nil, fieldErr("too_long", fmt.Sprintf("Number of identities must not be more than %d", MaxBulkIdentities), "data")
	}
	reqs := make([]*IdentityRequest, 0, len(*raw.Data))
	for i, item := range *raw.Data {
		req, err := DecodeEdgeIdentityRequest(item)
		if err != nil {
			if fe, ok := err.(*FieldError); ok {
				fe.Loc = append([]any{"body", "data", i}, fe.Loc[1:]...)
			}
			return nil, err
		}
		if req.Identity.Identifier == "" {
			return nil, fieldErr("missing", "Field required", "data", i, "identifier")
		}
		reqs = append(reqs, req)
	}
	return reqs, nil
}
