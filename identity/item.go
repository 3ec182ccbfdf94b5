package identity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fledge-flags/fledge/engine"
)

// item is the JSON form of a flagsmith_identities item (api.md §4.5). The
// embedded store keeps identities in this form; EncodedSize measures it.
type item struct {
	CompositeKey      string          `json:"composite_key"`
	EnvironmentAPIKey string          `json:"environment_api_key"`
	Identifier        string          `json:"identifier"`
	IdentityUUID      string          `json:"identity_uuid"`
	CreatedDate       string          `json:"created_date,omitempty"`
	DjangoID          *int64          `json:"django_id"`
	IdentityTraits    []itemTrait     `json:"identity_traits"`
	IdentityFeatures  []itemOverride  `json:"identity_features"`
	DashboardAlias    string          `json:"dashboard_alias,omitempty"`
	SystemTraits      json.RawMessage `json:"system_traits,omitempty"`
}

type itemTrait struct {
	TraitKey   string          `json:"trait_key"`
	TraitValue json.RawMessage `json:"trait_value"`
}

type itemOverride struct {
	Feature                        FeatureRef      `json:"feature"`
	Enabled                        bool            `json:"enabled"`
	FeatureStateValue              json.RawMessage `json:"feature_state_value"`
	DjangoID                       *int64          `json:"django_id"`
	FeatureStateUUID               string          `json:"featurestate_uuid"`
	FeatureSegment                 json.RawMessage `json:"feature_segment"`
	MultivariateFeatureStateValues json.RawMessage `json:"multivariate_feature_state_values"`
}

// MarshalItem encodes an identity as its flagsmith_identities item JSON.
// Integers and floats stay apart: a float is always written with a decimal
// point or exponent, so it reads back as a float.
func MarshalItem(id *Identity) ([]byte, error) {
	it := item{
		CompositeKey:      CompositeKey(id.EnvironmentAPIKey, id.Identifier),
		EnvironmentAPIKey: id.EnvironmentAPIKey,
		Identifier:        id.Identifier,
		IdentityUUID:      id.UUID,
		CreatedDate:       id.CreatedDate,
		DjangoID:          id.DjangoID,
		IdentityTraits:    make([]itemTrait, 0, len(id.Traits)),
		IdentityFeatures:  make([]itemOverride, 0, len(id.Overrides)),
		DashboardAlias:    id.DashboardAlias,
	}
	for _, t := range id.Traits {
		it.IdentityTraits = append(it.IdentityTraits, itemTrait{TraitKey: t.Key, TraitValue: ValueJSON(t.Value)})
	}
	for _, o := range id.Overrides {
		it.IdentityFeatures = append(it.IdentityFeatures, overrideItem(o))
	}
	if len(id.SystemTraits) > 0 {
		var b bytes.Buffer
		b.WriteByte('{')
		for i, t := range id.SystemTraits {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(engine.AppendJSONString(nil, t.Key))
			b.WriteByte(':')
			b.Write(ValueJSON(t.Value))
		}
		b.WriteByte('}')
		it.SystemTraits = b.Bytes()
	}
	return marshalJSON(&it)
}

// marshalJSON is json.Marshal without HTML escaping: Flagsmith's writers
// (Python's json, boto3) leave <, > and & alone, and escaping them would
// change stored values byte for byte and inflate EncodedSize.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func overrideItem(o Override) itemOverride {
	v := o.Value
	if v == nil {
		v = json.RawMessage("null")
	}
	mv := o.MultivariateValues
	if mv == nil {
		mv = json.RawMessage("[]")
	}
	return itemOverride{
		Feature: o.Feature, Enabled: o.Enabled, FeatureStateValue: v, DjangoID: o.DjangoID,
		FeatureStateUUID: o.FeatureStateUUID, FeatureSegment: json.RawMessage("null"),
		MultivariateFeatureStateValues: mv,
	}
}

// MarshalOverride encodes an override as the feature_state object of
// Flagsmith's items and documents.
func MarshalOverride(o Override) ([]byte, error) {
	it := overrideItem(o)
	return marshalJSON(&it)
}

// UnmarshalItem decodes an item written by MarshalItem or by Flagsmith. It
// is tolerant, as a reader of data written by others must be: a trait
// without a value reads as "", a trait or override it cannot read is
// skipped and described in problems, and a null system_traits is absent.
// err is set only when the item as a whole is unreadable.
func UnmarshalItem(data []byte) (id *Identity, problems []string, err error) {
	var it struct {
		EnvironmentAPIKey string            `json:"environment_api_key"`
		Identifier        string            `json:"identifier"`
		IdentityUUID      string            `json:"identity_uuid"`
		CreatedDate       string            `json:"created_date"`
		DjangoID          json.RawMessage   `json:"django_id"`
		IdentityTraits    []json.RawMessage `json:"identity_traits"`
		IdentityFeatures  []json.RawMessage `json:"identity_features"`
		DashboardAlias    *string           `json:"dashboard_alias"`
		SystemTraits      json.RawMessage   `json:"system_traits"`
	}
	if err := json.Unmarshal(data, &it); err != nil {
		return nil, nil, fmt.Errorf("decoding identity item: %w", err)
	}
	id = &Identity{
		EnvironmentAPIKey: it.EnvironmentAPIKey,
		Identifier:        it.Identifier,
		UUID:              it.IdentityUUID,
		CreatedDate:       it.CreatedDate,
	}
	if it.DashboardAlias != nil {
		id.DashboardAlias = *it.DashboardAlias
	}
	if d, ok := intOf(it.DjangoID); ok {
		id.DjangoID = &d
	}
	for i, raw := range it.IdentityTraits {
		var t struct {
			TraitKey   *string         `json:"trait_key"`
			TraitValue json.RawMessage `json:"trait_value"`
		}
		if err := json.Unmarshal(raw, &t); err != nil || t.TraitKey == nil || *t.TraitKey == "" {
			problems = append(problems, fmt.Sprintf("identity_traits[%d]: unreadable trait skipped", i))
			continue
		}
		v, ok := ValueFromJSON(t.TraitValue)
		if !ok {
			problems = append(problems, fmt.Sprintf("identity_traits[%d] %q: unreadable value skipped", i, *t.TraitKey))
			continue
		}
		if v.Kind == engine.KindNone {
			v = engine.String("") // core's repair rule (flagsmith#2806)
		}
		id.Traits = append(id.Traits, Trait{Key: *t.TraitKey, Value: v})
	}
	for i, raw := range it.IdentityFeatures {
		o, err := UnmarshalOverride(raw)
		if err != nil {
			problems = append(problems, fmt.Sprintf("identity_features[%d]: %v; skipped", i, err))
			continue
		}
		id.Overrides = append(id.Overrides, o)
	}
	if len(it.SystemTraits) > 0 && !bytes.Equal(bytes.TrimSpace(it.SystemTraits), []byte("null")) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(it.SystemTraits, &m); err != nil {
			problems = append(problems, "system_traits: not an object; ignored")
		} else {
			for _, k := range sortedKeys(m) {
				if v, ok := ValueFromJSON(m[k]); ok && v.Kind != engine.KindNone {
					id.SystemTraits = append(id.SystemTraits, Trait{Key: k, Value: v})
				}
			}
		}
	}
	return id, problems, nil
}

// UnmarshalOverride decodes a feature_state object.
func UnmarshalOverride(raw json.RawMessage) (Override, error) {
	var f struct {
		Feature *struct {
			ID   json.RawMessage `json:"id"`
			Name string          `json:"name"`
			Type string          `json:"type"`
		} `json:"feature"`
		Enabled                        bool            `json:"enabled"`
		FeatureStateValue              json.RawMessage `json:"feature_state_value"`
		DjangoID                       json.RawMessage `json:"django_id"`
		FeatureStateUUID               string          `json:"featurestate_uuid"`
		MultivariateFeatureStateValues json.RawMessage `json:"multivariate_feature_state_values"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return Override{}, fmt.Errorf("unreadable feature state: %w", err)
	}
	if f.Feature == nil || f.Feature.Name == "" {
		return Override{}, fmt.Errorf("feature state without a feature name")
	}
	fid, ok := intOf(f.Feature.ID)
	if !ok {
		return Override{}, fmt.Errorf("feature %q without an integer id", f.Feature.Name)
	}
	o := Override{
		Feature:          FeatureRef{ID: fid, Name: f.Feature.Name, Type: f.Feature.Type},
		Enabled:          f.Enabled,
		FeatureStateUUID: f.FeatureStateUUID,
	}
	if v := bytes.TrimSpace(f.FeatureStateValue); len(v) > 0 && !bytes.Equal(v, []byte("null")) {
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return Override{}, fmt.Errorf("feature %q: bad value", f.Feature.Name)
		}
		o.Value = buf.Bytes()
	}
	if d, ok := intOf(f.DjangoID); ok {
		o.DjangoID = &d
	}
	if mv := bytes.TrimSpace(f.MultivariateFeatureStateValues); len(mv) > 0 && mv[0] == '[' && !bytes.Equal(mv, []byte("[]")) {
		var buf bytes.Buffer
		if err := json.Compact(&buf, mv); err == nil {
			o.MultivariateValues = buf.Bytes()
		}
	}
	return o, nil
}

func intOf(raw json.RawMessage) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] == 'n' {
		return 0, false
	}
	if raw[0] == '"' { // ids sometimes arrive as strings
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, false
		}
		return ParseID(s)
	}
	return ParseID(string(raw))
}

// ParseID reads an id (django_id, a feature's id) as the text of a JSON
// number or the content of a JSON string: an integer, or a number with an
// integral value within ±2^53 (4.0, 1e3), as Python writers may leave one.
// Readers of items in other forms (DynamoDB attribute values) use it to
// read ids exactly as UnmarshalItem does.
func ParseID(s string) (int64, bool) {
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, false
		}
		return int64(f), true
	}
	return i, true
}

// ValueJSON encodes a trait value: strings, booleans, integers, and floats
// always with a decimal point or an exponent.
func ValueJSON(v engine.Value) json.RawMessage { return AppendValueJSON(nil, v) }

// AppendValueJSON appends ValueJSON(v) to dst.
func AppendValueJSON(dst []byte, v engine.Value) []byte {
	switch v.Kind {
	case engine.KindString:
		return engine.AppendJSONString(dst, v.Str)
	case engine.KindBool:
		if v.Int != 0 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case engine.KindInt:
		if v.Big != nil {
			return v.Big.Append(dst, 10)
		}
		return strconv.AppendInt(dst, v.Int, 10)
	case engine.KindFloat:
		start := len(dst)
		dst = strconv.AppendFloat(dst, v.Float, 'g', -1, 64)
		if !bytes.ContainsAny(dst[start:], ".eEN") { // N: NaN, Inf never reach here
			dst = append(dst, ".0"...)
		}
		return dst
	}
	return append(dst, "null"...)
}

// ValueFromJSON reads a stored scalar value; objects and lists are not trait
// values (ok false). null gives KindNone.
func ValueFromJSON(raw json.RawMessage) (engine.Value, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return engine.None(), true
	}
	switch raw[0] {
	case 'n':
		return engine.None(), string(raw) == "null"
	case 't':
		return engine.Bool(true), string(raw) == "true"
	case 'f':
		return engine.Bool(false), string(raw) == "false"
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return engine.Value{}, false
		}
		return engine.String(s), true
	case '{', '[':
		return engine.Value{}, false
	}
	return engine.NumberValue(string(raw))
}

var (
	intText   = regexp.MustCompile(`^-?[0-9]+$`)
	floatText = regexp.MustCompile(`^-?[0-9]+\.[0-9]+$`)
)

// Coerce applies Flagsmith's write-time typing of trait values: a string
// that looks like an integer (-?[0-9]+) becomes an integer, one that looks
// like a decimal (-?[0-9]+\.[0-9]+) a float; everything else is unchanged.
// "007" becomes 7, while " 1", "+5" and "1e5" stay strings.
func Coerce(v engine.Value) engine.Value {
	if v.Kind != engine.KindString || len(v.Str) == 0 || len(v.Str) > 400 {
		return v
	}
	switch {
	case intText.MatchString(v.Str):
		if len(strings.TrimLeft(strings.TrimPrefix(v.Str, "-"), "0")) > 38 {
			return v // more significant digits than a DynamoDB number holds
		}
		if i, err := strconv.ParseInt(v.Str, 10, 64); err == nil {
			return engine.Int(i)
		}
		if b, ok := new(big.Int).SetString(v.Str, 10); ok {
			return engine.Value{Kind: engine.KindInt, Big: b}
		}
	case floatText.MatchString(v.Str):
		if f, err := strconv.ParseFloat(v.Str, 64); err == nil && !math.IsInf(f, 0) {
			return engine.Float(f)
		}
	}
	return v
}

func sortedKeys(m map[string]json.RawMessage) []string { return slices.Sorted(maps.Keys(m)) }
