package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
)

// Context is an evaluation context: the environment, its features and
// segments, and optionally an identity. It mirrors Flagsmith's
// evaluation-context schema.
type Context struct {
	Environment Environment
	Identity    *Identity // nil: no identity
	Segments    []Segment // in document order, which decides ties
	Features    []Feature
}

// Environment identifies the environment being evaluated.
type Environment struct {
	Key  string
	Name *string // nil when the document's name is null
}

// Identity is the subject of an evaluation.
type Identity struct {
	Identifier string
	Key        string // empty: derived as environment key + "_" + identifier
	Traits     []Trait
	// Overrides are the identity's own feature states (a stored identity's
	// identity overrides). They beat every segment override and are never
	// split into variants. Overrides for features the environment does not
	// have are ignored.
	Overrides []IdentityOverride
}

// IdentityOverride is an identity's own state for the named feature.
type IdentityOverride struct {
	Feature string
	Enabled bool
	Value   json.RawMessage // nil means null
}

// Trait is one identity trait; a KindNone value counts as not set.
type Trait struct {
	Name  string
	Value Value
}

// Feature is a feature's state: an environment default or a segment override.
type Feature struct {
	Key      string
	Name     string
	Enabled  bool
	Value    json.RawMessage // passed through to the result as is; nil means null
	Variants []Variant
	// Priority orders segment overrides, lower wins. nil is the weakest.
	Priority *big.Float
	Metadata json.RawMessage // opaque; copied to the result when non-empty
}

// Variant is one multivariate option.
type Variant struct {
	Value json.RawMessage
	// Weight is the percentage allocation; WeightText is how the document
	// wrote it, which shows up in the SPLIT reason (30 vs 30.0).
	Weight     float64
	WeightText string
	Priority   *big.Float // required; may exceed 64 bits
	Key        *string
}

// Segment is a set of rules and the overrides that apply when they match.
type Segment struct {
	MapKey    string // the key in the context's segments object
	Key       string // hashed by PERCENTAGE_SPLIT
	Name      string
	Rules     []Rule
	Overrides []Feature
	Metadata  json.RawMessage
}

// Rule combines conditions and sub-rules with a quantifier.
type Rule struct {
	Type       string // ALL, ANY, NONE
	Conditions []Condition
	Rules      []Rule
}

// Condition tests one context value.
type Condition struct {
	Property string
	Operator string
	Value    ConditionValue
}

// ConditionValue is a condition's value: a string, or for IN a list.
type ConditionValue struct {
	Str    string
	List   []string // IN with a JSON array: elements as Python text
	IsList bool
	IsNull bool
}

// ParseContext decodes an evaluation context from JSON, keeping the order of
// segments and the difference between integer and float literals.
func ParseContext(data []byte) (*Context, error) {
	var raw struct {
		Environment *struct {
			Key  *string `json:"key"`
			Name *string `json:"name"`
		} `json:"environment"`
		Identity json.RawMessage `json:"identity"`
		Segments json.RawMessage `json:"segments"`
		Features json.RawMessage `json:"features"`
	}
	if err := decodeStrict(data, &raw); err != nil {
		return nil, fmt.Errorf("context: %w", err)
	}
	if raw.Environment == nil || raw.Environment.Key == nil {
		return nil, fmt.Errorf("context: environment.key is required")
	}
	ctx := &Context{Environment: Environment{Key: *raw.Environment.Key, Name: raw.Environment.Name}}
	var err error
	if ctx.Identity, err = parseIdentity(raw.Identity); err != nil {
		return nil, fmt.Errorf("context: identity: %w", err)
	}
	if err := forEachMember(raw.Segments, func(key string, v json.RawMessage) error {
		s, err := parseSegment(key, v)
		if err != nil {
			return fmt.Errorf("segments[%q]: %w", key, err)
		}
		ctx.Segments = append(ctx.Segments, s)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("context: %w", err)
	}
	if err := forEachMember(raw.Features, func(key string, v json.RawMessage) error {
		f, err := parseFeature(v)
		if err != nil {
			return fmt.Errorf("features[%q]: %w", key, err)
		}
		ctx.Features = append(ctx.Features, f)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("context: %w", err)
	}
	return ctx, nil
}

// ParseIdentity decodes an identity context object. null and {} give nil.
func ParseIdentity(data []byte) (*Identity, error) { return parseIdentity(data) }

func parseIdentity(data json.RawMessage) (*Identity, error) {
	if isNullOrEmpty(data) {
		return nil, nil
	}
	var members int
	if err := forEachMember(data, func(string, json.RawMessage) error { members++; return nil }); err != nil {
		return nil, err
	}
	if members == 0 {
		return nil, nil // Python treats {} as no identity
	}
	var raw struct {
		Identifier *string         `json:"identifier"`
		Key        *string         `json:"key"`
		Traits     json.RawMessage `json:"traits"`
	}
	if err := decodeStrict(data, &raw); err != nil {
		return nil, err
	}
	if raw.Identifier == nil {
		return nil, fmt.Errorf("identifier is required")
	}
	id := &Identity{Identifier: *raw.Identifier}
	if raw.Key != nil {
		id.Key = *raw.Key
	}
	err := forEachMember(raw.Traits, func(name string, v json.RawMessage) error {
		x, err := decodeAny(v)
		if err != nil {
			return fmt.Errorf("traits[%q]: %w", name, err)
		}
		id.Traits = append(id.Traits, Trait{Name: name, Value: ValueFromJSON(x)})
		return nil
	})
	return id, err
}

func parseSegment(mapKey string, data json.RawMessage) (Segment, error) {
	var raw struct {
		Key       *string           `json:"key"`
		Name      *string           `json:"name"`
		Rules     []json.RawMessage `json:"rules"`
		Overrides []json.RawMessage `json:"overrides"`
		Metadata  json.RawMessage   `json:"metadata"`
	}
	if err := decodeStrict(data, &raw); err != nil {
		return Segment{}, err
	}
	s := Segment{MapKey: mapKey, Metadata: compactMetadata(raw.Metadata)}
	if raw.Key != nil {
		s.Key = *raw.Key
	}
	if raw.Name != nil {
		s.Name = *raw.Name
	}
	for i, r := range raw.Rules {
		rule, err := parseRule(r)
		if err != nil {
			return s, fmt.Errorf("rules[%d]: %w", i, err)
		}
		s.Rules = append(s.Rules, rule)
	}
	for i, o := range raw.Overrides {
		f, err := parseFeature(o)
		if err != nil {
			return s, fmt.Errorf("overrides[%d]: %w", i, err)
		}
		s.Overrides = append(s.Overrides, f)
	}
	return s, nil
}

func parseRule(data json.RawMessage) (Rule, error) {
	var raw struct {
		Type       string `json:"type"`
		Conditions []struct {
			Property *string         `json:"property"`
			Operator string          `json:"operator"`
			Value    json.RawMessage `json:"value"`
		} `json:"conditions"`
		Rules []json.RawMessage `json:"rules"`
	}
	if err := decodeStrict(data, &raw); err != nil {
		return Rule{}, err
	}
	r := Rule{Type: raw.Type}
	for i, c := range raw.Conditions {
		cond := Condition{Operator: c.Operator}
		if c.Property != nil {
			cond.Property = *c.Property
		}
		v, err := parseConditionValue(c.Value)
		if err != nil {
			return r, fmt.Errorf("conditions[%d].value: %w", i, err)
		}
		cond.Value = v
		r.Conditions = append(r.Conditions, cond)
	}
	for i, sub := range raw.Rules {
		rule, err := parseRule(sub)
		if err != nil {
			return r, fmt.Errorf("rules[%d]: %w", i, err)
		}
		r.Rules = append(r.Rules, rule)
	}
	return r, nil
}

func parseConditionValue(data json.RawMessage) (ConditionValue, error) {
	x, err := decodeAny(data)
	if err != nil {
		return ConditionValue{}, err
	}
	switch t := x.(type) {
	case nil:
		return ConditionValue{IsNull: true}, nil
	case string:
		return ConditionValue{Str: t}, nil
	case []any:
		return ConditionValue{IsList: true, List: inElements(t)}, nil
	default:
		// Outside the schema: use the value's Python text.
		return ConditionValue{Str: string(appendPyRepr(nil, x))}, nil
	}
}

// inElements turns IN list elements into the text they are compared as.
func inElements(xs []any) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		if s, ok := x.(string); ok {
			out[i] = s
		} else {
			out[i] = string(appendPyRepr(nil, x))
		}
	}
	return out
}

func parseFeature(data json.RawMessage) (Feature, error) {
	var raw struct {
		Key      *string         `json:"key"`
		Name     *string         `json:"name"`
		Enabled  bool            `json:"enabled"`
		Value    json.RawMessage `json:"value"`
		Variants []struct {
			Value    json.RawMessage `json:"value"`
			Weight   *json.Number    `json:"weight"`
			Priority *json.Number    `json:"priority"`
			Key      *string         `json:"key"`
		} `json:"variants"`
		Priority *json.Number    `json:"priority"`
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := decodeStrict(data, &raw); err != nil {
		return Feature{}, err
	}
	if raw.Name == nil {
		return Feature{}, fmt.Errorf("name is required")
	}
	f := Feature{Name: *raw.Name, Enabled: raw.Enabled, Value: compactValue(raw.Value), Metadata: compactMetadata(raw.Metadata)}
	if raw.Key != nil {
		f.Key = *raw.Key
	}
	if raw.Priority != nil {
		p, ok := ParsePriority(raw.Priority.String())
		if !ok {
			return f, fmt.Errorf("priority %q is not a number", raw.Priority.String())
		}
		f.Priority = p
	}
	for i, v := range raw.Variants {
		if v.Weight == nil || v.Priority == nil {
			return f, fmt.Errorf("variants[%d]: weight and priority are required", i)
		}
		variant, err := NewVariant(compactValue(v.Value), v.Weight.String(), v.Priority.String(), v.Key)
		if err != nil {
			return f, fmt.Errorf("variants[%d]: %w", i, err)
		}
		f.Variants = append(f.Variants, variant)
	}
	return f, nil
}

// NewVariant builds a variant from JSON number literals for its weight and
// priority, keeping the weight's literal form for the SPLIT reason.
func NewVariant(value json.RawMessage, weight, priority string, key *string) (Variant, error) {
	w, ok := NumberValue(weight)
	if !ok {
		return Variant{}, fmt.Errorf("weight %q is not a number", weight)
	}
	p, ok := ParsePriority(priority)
	if !ok {
		return Variant{}, fmt.Errorf("priority %q is not a number", priority)
	}
	wf, _ := w.asFloat()
	return Variant{Value: value, Weight: wf, WeightText: w.PyString(), Priority: p, Key: key}, nil
}

// compactValue returns the JSON value with insignificant space removed, or
// nil for null and absent values.
func compactValue(v json.RawMessage) json.RawMessage {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return v
	}
	return buf.Bytes()
}

// compactMetadata keeps metadata only when it is a non-empty object, since
// the result leaves out empty metadata.
func compactMetadata(v json.RawMessage) json.RawMessage {
	v = compactValue(v)
	if len(v) == 0 || v[0] != '{' || bytes.Equal(v, []byte("{}")) {
		return nil
	}
	return v
}

func isNullOrEmpty(data json.RawMessage) bool {
	d := bytes.TrimSpace(data)
	return len(d) == 0 || bytes.Equal(d, []byte("null"))
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				field = "value"
			}
			return fmt.Errorf("%s: got JSON %s, want %s", field, te.Value, jsonKind(te.Type.Kind().String()))
		}
		return err
	}
	if dec.More() {
		return fmt.Errorf("unexpected data after the JSON value")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "a list"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "ptr", "interface":
		return "a value"
	}
	return "a number"
}

func decodeAny(data json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	var x any
	err := decodeStrict(data, &x)
	return x, err
}

// forEachMember walks a JSON object's members in document order. null or
// absent data is an empty object.
func forEachMember(data json.RawMessage, fn func(key string, value json.RawMessage) error) error {
	if isNullOrEmpty(data) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("expected a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if err := fn(key, v); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

// ParsePriority reads a priority literal exactly: integers of any size (UUID
// priorities exceed 64 bits) as integers, anything else as a float64. It
// avoids big.Float's decimal parser, whose cost grows with the exponent.
func ParsePriority(lit string) (*big.Float, bool) {
	v, ok := NumberValue(lit)
	if !ok {
		return nil, false
	}
	f := new(big.Float).SetPrec(256)
	switch {
	case v.Kind == KindInt && v.Big != nil:
		return f.SetInt(v.Big), true
	case v.Kind == KindInt:
		return f.SetInt64(v.Int), true
	case math.IsNaN(v.Float):
		return nil, false
	}
	return f.SetFloat64(v.Float), true
}
