package dynamo

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// Items travel between identity's item JSON and DynamoDB attribute values
// the way boto3 maps them for Flagsmith (internal/avjson converts JSON to
// attribute values; appendAVJSONSorted goes back).

// traitsAV is the identity_traits attribute of an identity: what
// avjson.FromJSON makes of that attribute in the item JSON identity.MarshalItem writes,
// built without the round trip, because a trait write sends nothing else
// of the item (TestTraitsAVMatchesItemJSON holds the two together).
func traitsAV(traits []identity.Trait) types.AttributeValue {
	l := make([]types.AttributeValue, 0, len(traits))
	for _, t := range traits {
		l = append(l, &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			keyTraitKey:   &types.AttributeValueMemberS{Value: jsonString(t.Key)},
			keyTraitValue: valueAV(t.Value),
		}})
	}
	return &types.AttributeValueMemberL{Value: l}
}

// valueAV is a trait value as avjson.FromJSON reads its identity.ValueJSON: the
// JSON text of a number is its N.
func valueAV(v engine.Value) types.AttributeValue {
	switch v.Kind {
	case engine.KindString:
		return &types.AttributeValueMemberS{Value: jsonString(v.Str)}
	case engine.KindBool:
		return &types.AttributeValueMemberBOOL{Value: v.Int != 0}
	case engine.KindInt, engine.KindFloat:
		return &types.AttributeValueMemberN{Value: string(identity.ValueJSON(v))}
	}
	return &types.AttributeValueMemberNULL{Value: true}
}

// appendAVJSONSorted appends the JSON form of an attribute value, every
// object's keys in order, so that the same value always gives the same
// bytes (documents are compared by their sum to tell an unchanged one).
// Sets become lists and binaries base64 strings; numbers keep DynamoDB's
// text.
func appendAVJSONSorted(dst []byte, av types.AttributeValue) ([]byte, error) {
	var err error
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return engine.AppendJSONString(dst, v.Value), nil
	case *types.AttributeValueMemberN:
		if !validNumber(v.Value) {
			return nil, fmt.Errorf("number %q is not a JSON number", v.Value)
		}
		return append(dst, v.Value...), nil
	case *types.AttributeValueMemberBOOL:
		return strconv.AppendBool(dst, v.Value), nil
	case *types.AttributeValueMemberNULL:
		return append(dst, "null"...), nil
	case *types.AttributeValueMemberB:
		return engine.AppendJSONString(dst, base64.StdEncoding.EncodeToString(v.Value)), nil
	case *types.AttributeValueMemberM:
		dst = append(dst, '{')
		for i, k := range slices.Sorted(maps.Keys(v.Value)) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = engine.AppendJSONString(dst, k)
			dst = append(dst, ':')
			if dst, err = appendAVJSONSorted(dst, v.Value[k]); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	case *types.AttributeValueMemberL:
		dst = append(dst, '[')
		for i, e := range v.Value {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendAVJSONSorted(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case *types.AttributeValueMemberSS:
		dst = append(dst, '[')
		for i, s := range v.Value {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = engine.AppendJSONString(dst, s)
		}
		return append(dst, ']'), nil
	case *types.AttributeValueMemberNS:
		dst = append(dst, '[')
		for i, s := range v.Value {
			if !validNumber(s) {
				return nil, fmt.Errorf("number %q is not a JSON number", s)
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, s...)
		}
		return append(dst, ']'), nil
	case *types.AttributeValueMemberBS:
		dst = append(dst, '[')
		for i, b := range v.Value {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = engine.AppendJSONString(dst, base64.StdEncoding.EncodeToString(b))
		}
		return append(dst, ']'), nil
	}
	return nil, fmt.Errorf("unsupported attribute value %T", av)
}

// validNumber reports whether s, a DynamoDB number, is also a JSON number
// (DynamoDB accepts forms such as "+1" and ".5" that JSON does not).
func validNumber(s string) bool {
	return s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Valid([]byte(s))
}
