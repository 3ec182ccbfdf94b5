// Package avjson converts JSON values to DynamoDB attribute values the way
// boto3 maps them for Flagsmith: objects are M, lists L, strings S,
// booleans BOOL, null NULL and every number N, its text passed through
// unchanged (DynamoDB normalises it: 4.0 is stored as 4). The identity
// store writes its items this way, and the tests' stand-in for Flagsmith's
// core writes its documents this way.
package avjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// FromJSON converts one JSON value to an attribute value.
func FromJSON(data []byte) (types.AttributeValue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	// One Decode into interface values, then a walk: several times faster
	// than reading the value token by token (json.Decoder.Token allocates
	// for every token), and the identity store runs this on every write.
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return fromAny(v), nil
}

// fromAny converts what encoding/json decodes into an interface value
// (with UseNumber) to an attribute value.
func fromAny(v any) types.AttributeValue {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]types.AttributeValue, len(t))
		for k, e := range t {
			m[k] = fromAny(e)
		}
		return &types.AttributeValueMemberM{Value: m}
	case []any:
		l := make([]types.AttributeValue, 0, len(t))
		for _, e := range t {
			l = append(l, fromAny(e))
		}
		return &types.AttributeValueMemberL{Value: l}
	case string:
		return &types.AttributeValueMemberS{Value: t}
	case json.Number:
		return &types.AttributeValueMemberN{Value: t.String()}
	case bool:
		return &types.AttributeValueMemberBOOL{Value: t}
	}
	return &types.AttributeValueMemberNULL{Value: true} // nil: JSON null
}
