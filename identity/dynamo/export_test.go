package dynamo

import (
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// Decoded is what reading an identity item gives.
type Decoded struct {
	ID       *identity.Identity
	Version  int64
	Problems []string
	Err      error
}

// DecodeItem is the store's item reader.
func DecodeItem(item map[string]types.AttributeValue) Decoded {
	id, version, problems, err := decodeItem(item)
	return Decoded{id, version, problems, err}
}

// DecodeOverride is the store's feature_state reader.
func DecodeOverride(av types.AttributeValue) (identity.Override, error) { return decodeOverride(av) }

// AVJSON is the JSON of an attribute value, map keys in order.
func AVJSON(av types.AttributeValue) ([]byte, error) { return appendAVJSONSorted(nil, av) }

// The reader decodeItem replaced, kept as the reference it is tested
// against: the item converted to JSON (refAppendAV is the converter as it
// was), then identity.UnmarshalItem, then the float repair and the
// version. sorted false writes every map in Go's map order, as the store
// did; true in key order, which is one of the orders the old reader could
// take, and the one decodeItem follows where the order matters.

// DecodeItemViaJSON is the old reader (Store.decode without its logging).
func DecodeItemViaJSON(item map[string]types.AttributeValue, sorted bool) Decoded {
	data, err := refAppendAV(make([]byte, 0, 512), &types.AttributeValueMemberM{Value: item}, sorted)
	if err != nil {
		return Decoded{Err: fmt.Errorf("dynamo: decoding identity item %s: %w", itemKey(item), err)}
	}
	id, problems, err := identity.UnmarshalItem(data)
	if err != nil {
		return Decoded{Err: fmt.Errorf("dynamo: identity item %s: %w", itemKey(item), err)}
	}
	if fl, ok := item[attrFloatTraits].(*types.AttributeValueMemberSS); ok {
		for i := range id.Traits {
			t := &id.Traits[i]
			if t.Value.Kind == engine.KindInt && slices.Contains(fl.Value, t.Key) {
				t.Value = engine.Float(intAsFloat(t.Value))
			}
		}
	}
	var version int64
	if v, ok := item[attrVersion].(*types.AttributeValueMemberN); ok {
		version, _ = strconv.ParseInt(v.Value, 10, 64)
	}
	return Decoded{id, version, problems, nil}
}

// DecodeOverrideViaJSON is the old reader of an override item's
// feature_state.
func DecodeOverrideViaJSON(av types.AttributeValue, sorted bool) (identity.Override, error) {
	data, err := refAppendAV(nil, av, sorted)
	if err == nil {
		return identity.UnmarshalOverride(data)
	}
	return identity.Override{}, err
}

func refAppendAV(dst []byte, av types.AttributeValue, sorted bool) ([]byte, error) {
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
		if sorted {
			for i, k := range slices.Sorted(maps.Keys(v.Value)) {
				if dst, err = refAppendMember(dst, i, k, v.Value[k], sorted); err != nil {
					return nil, err
				}
			}
		} else {
			i := 0
			for k, e := range v.Value {
				if dst, err = refAppendMember(dst, i, k, e, sorted); err != nil {
					return nil, err
				}
				i++
			}
		}
		return append(dst, '}'), nil
	case *types.AttributeValueMemberL:
		dst = append(dst, '[')
		for i, e := range v.Value {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = refAppendAV(dst, e, sorted); err != nil {
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

// refAppendMember appends the i-th member of an object.
func refAppendMember(dst []byte, i int, k string, e types.AttributeValue, sorted bool) ([]byte, error) {
	if i > 0 {
		dst = append(dst, ',')
	}
	dst = engine.AppendJSONString(dst, k)
	dst = append(dst, ':')
	return refAppendAV(dst, e, sorted)
}
