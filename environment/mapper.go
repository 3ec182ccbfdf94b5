package environment

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/fledge-flags/fledge/engine"
)

// IdentityOverridesSegmentName is the name of the virtual segments that carry
// identity overrides, as in the Flagsmith SDKs.
const IdentityOverridesSegmentName = "identity_overrides"

// Context maps the document to an evaluation context without identity,
// exactly as the Flagsmith Python SDK's mapper does (engine.md §3).
func (d *Document) Context() (*engine.Context, error) {
	ctx := &engine.Context{Environment: engine.Environment{Key: d.APIKey, Name: d.Name}}
	for i := range d.FeatureStates {
		f, err := featureContext(&d.FeatureStates[i])
		if err != nil {
			return nil, fmt.Errorf("feature_states[%d] (%s): %w", i, d.FeatureStates[i].Feature.Name, err)
		}
		ctx.Features = append(ctx.Features, f)
	}
	used := make(map[string]bool, len(d.Project.Segments))
	for i := range d.Project.Segments {
		s := &d.Project.Segments[i]
		id := numberText(s.ID)
		seg := engine.Segment{
			MapKey:   id,
			Key:      id,
			Name:     s.Name,
			Metadata: segmentMetadata(s.ID),
		}
		for j := range s.Rules {
			r, err := rule(&s.Rules[j])
			if err != nil {
				return nil, fmt.Errorf("project.segments[%d] (%s).rules[%d]: %w", i, s.Name, j, err)
			}
			seg.Rules = append(seg.Rules, r)
		}
		for j := range s.FeatureStates {
			f, err := featureContext(&s.FeatureStates[j])
			if err != nil {
				return nil, fmt.Errorf("project.segments[%d] (%s).feature_states[%d]: %w", i, s.Name, j, err)
			}
			seg.Overrides = append(seg.Overrides, f)
		}
		used[id] = true
		ctx.Segments = append(ctx.Segments, seg)
	}
	ctx.Segments = append(ctx.Segments, identityOverrideSegments(d.IdentityOverrides, used)...)
	return ctx, nil
}

func numberText(n json.Number) string {
	if v, ok := engine.NumberValue(n.String()); ok {
		return v.PyString()
	}
	return n.String()
}

func segmentMetadata(id json.Number) json.RawMessage {
	return json.RawMessage(`{"id":` + numberOrNull(id) + `,"source":"api"}`)
}

func numberOrNull(n json.Number) string {
	if n == "" {
		return "null"
	}
	return n.String()
}

func featureMetadata(id int64) json.RawMessage {
	return json.RawMessage(`{"id":` + strconv.FormatInt(id, 10) + `}`)
}

// featureContext maps a feature state (engine.md §3.2).
func featureContext(fs *FeatureState) (engine.Feature, error) {
	f := engine.Feature{
		Key:      fs.FeatureStateUUID,
		Name:     fs.Feature.Name,
		Enabled:  fs.Enabled,
		Value:    compact(fs.FeatureStateValue),
		Metadata: featureMetadata(fs.Feature.ID),
	}
	if fs.DjangoID != nil && !isZero(*fs.DjangoID) {
		f.Key = numberText(*fs.DjangoID)
	}
	if fs.FeatureSegment != nil && fs.FeatureSegment.Priority != nil {
		p, ok := engine.ParsePriority(fs.FeatureSegment.Priority.String())
		if !ok {
			return f, fmt.Errorf("feature_segment.priority %q is not a number", fs.FeatureSegment.Priority)
		}
		f.Priority = p
	}
	for i := range fs.MultivariateFeatureStateValues {
		mv := &fs.MultivariateFeatureStateValues[i]
		prio, err := variantPriority(mv)
		if err != nil {
			return f, fmt.Errorf("multivariate_feature_state_values[%d]: %w", i, err)
		}
		weight := mv.PercentageAllocation.String()
		if weight == "" {
			return f, fmt.Errorf("multivariate_feature_state_values[%d]: percentage_allocation is missing", i)
		}
		v, err := engine.NewVariant(compact(mv.MultivariateFeatureOption.Value), weight, prio, mv.MultivariateFeatureOption.Key)
		if err != nil {
			return f, fmt.Errorf("multivariate_feature_state_values[%d]: %w", i, err)
		}
		f.Variants = append(f.Variants, v)
	}
	return f, nil
}

// variantPriority is the variant's id, or its UUID read as a 128-bit
// integer when it has no id.
func variantPriority(mv *MultivariateValue) (string, error) {
	if mv.ID != nil && !isZero(*mv.ID) {
		return mv.ID.String(), nil
	}
	h := strings.ReplaceAll(mv.MvFsValueUUID, "-", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 {
		return "", fmt.Errorf("mv_fs_value_uuid %q is not a UUID and there is no id", mv.MvFsValueUUID)
	}
	return new(big.Int).SetBytes(b).String(), nil
}

func isZero(n json.Number) bool {
	f, err := n.Float64()
	return err == nil && f == 0
}

func compact(v json.RawMessage) json.RawMessage {
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

func rule(r *Rule) (engine.Rule, error) {
	out := engine.Rule{Type: r.Type}
	for i, c := range r.Conditions {
		cond := engine.Condition{Operator: c.Operator}
		if c.Property != nil {
			cond.Property = *c.Property
		}
		var x any
		if v := bytes.TrimSpace(c.Value); len(v) > 0 {
			dec := json.NewDecoder(bytes.NewReader(v))
			dec.UseNumber()
			if err := dec.Decode(&x); err != nil {
				return out, fmt.Errorf("conditions[%d].value: %w", i, err)
			}
		}
		switch t := x.(type) {
		case nil:
			// Old documents carry null for IS_SET/IS_NOT_SET; the API maps it to "".
			cond.Value = engine.ConditionValue{}
		case string:
			cond.Value = engine.ConditionValue{Str: t}
		case []any:
			list := make([]string, len(t))
			for j, e := range t {
				if s, ok := e.(string); ok {
					list[j] = s
				} else {
					list[j] = engine.ValueFromJSON(e).PyString()
				}
			}
			cond.Value = engine.ConditionValue{IsList: true, List: list}
		default:
			cond.Value = engine.ConditionValue{Str: engine.ValueFromJSON(x).PyString()}
		}
		out.Conditions = append(out.Conditions, cond)
	}
	for i := range r.Rules {
		sub, err := rule(&r.Rules[i])
		if err != nil {
			return out, fmt.Errorf("rules[%d]: %w", i, err)
		}
		out.Rules = append(out.Rules, sub)
	}
	return out, nil
}

// identityOverrideSegments groups identities with identical override sets
// into virtual segments matched by identifier (engine.md §3.3).
func identityOverrideSegments(overrides []IdentityOverride, used map[string]bool) []engine.Segment {
	type group struct {
		identifiers []string
		features    []*FeatureState
	}
	var groups []*group
	byKey := map[string]*group{}
	for i := range overrides {
		o := &overrides[i]
		if len(o.IdentityFeatures) == 0 {
			continue
		}
		fs := make([]*FeatureState, len(o.IdentityFeatures))
		for j := range o.IdentityFeatures {
			fs[j] = &o.IdentityFeatures[j]
		}
		sort.SliceStable(fs, func(a, b int) bool { return fs[a].Feature.Name < fs[b].Feature.Name })
		key := overrideSetKey(fs)
		g, ok := byKey[key]
		if !ok {
			g = &group{features: fs}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.identifiers = append(g.identifiers, o.Identifier)
	}
	negInf := new(big.Float).SetInf(true)
	segs := make([]engine.Segment, 0, len(groups))
	for i, g := range groups {
		mapKey := "identity_overrides:" + strconv.Itoa(i)
		for used[mapKey] {
			mapKey += "_"
		}
		seg := engine.Segment{
			MapKey: mapKey,
			Name:   IdentityOverridesSegmentName,
			Rules: []engine.Rule{{Type: "ALL", Conditions: []engine.Condition{{
				Property: "$.identity.identifier",
				Operator: "IN",
				Value:    engine.ConditionValue{IsList: true, List: g.identifiers},
			}}}},
			Metadata: json.RawMessage(`{"source":"identity_overrides"}`),
		}
		for _, fs := range g.features {
			seg.Overrides = append(seg.Overrides, engine.Feature{
				Name:     fs.Feature.Name,
				Enabled:  fs.Enabled,
				Value:    compact(fs.FeatureStateValue),
				Priority: negInf,
				Metadata: featureMetadata(fs.Feature.ID),
			})
		}
		segs = append(segs, seg)
	}
	return segs
}

// overrideSetKey identifies an override set by its (id, name, enabled,
// value) tuples. Values compare by their JSON text, so 1 and 1.0 count as
// different sets here where Python would merge them: the flags served are
// the same either way.
func overrideSetKey(fs []*FeatureState) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(strconv.FormatInt(f.Feature.ID, 10))
		b.WriteByte(0)
		b.WriteString(f.Feature.Name)
		b.WriteByte(0)
		b.WriteString(strconv.FormatBool(f.Enabled))
		b.WriteByte(0)
		b.Write(compact(f.FeatureStateValue))
		b.WriteByte(1)
	}
	return b.String()
}
