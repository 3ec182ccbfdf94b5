// Package environment handles Flagsmith's environment document: its model,
// its mapping to the engine's evaluation context (as the Flagsmith SDKs map
// it), and the compiled, pre-serialized Snapshot that the server answers from.
package environment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Document is the environment document served by
// GET /api/v1/environment-document/. Only the fields Fledge reads are
// modelled; the raw bytes are kept for serving the document itself.
type Document struct {
	ID                              json.Number        `json:"id"`
	APIKey                          string             `json:"api_key"`
	Name                            *string            `json:"name"`
	UpdatedAt                       string             `json:"updated_at"`
	AllowClientTraits               *bool              `json:"allow_client_traits"`
	HideSensitiveData               bool               `json:"hide_sensitive_data"`
	HideDisabledFlags               *bool              `json:"hide_disabled_flags"`
	UseIdentityOverridesInLocalEval *bool              `json:"use_identity_overrides_in_local_eval"`
	UseIdentityCompositeKeyForHash  *bool              `json:"use_identity_composite_key_for_hashing"`
	Project                         Project            `json:"project"`
	FeatureStates                   []FeatureState     `json:"feature_states"`
	IdentityOverrides               []IdentityOverride `json:"identity_overrides"`
}

// Project is the document's project.
type Project struct {
	ID                      json.Number     `json:"id"`
	Name                    string          `json:"name"`
	HideDisabledFlags       bool            `json:"hide_disabled_flags"`
	ServerKeyOnlyFeatureIDs []int64         `json:"server_key_only_feature_ids"`
	Organisation            json.RawMessage `json:"organisation"`
	Segments                []Segment       `json:"segments"`
}

// Segment is a project segment with its overrides in this environment.
type Segment struct {
	ID            json.Number    `json:"id"`
	Name          string         `json:"name"`
	Rules         []Rule         `json:"rules"`
	FeatureStates []FeatureState `json:"feature_states"`
}

// Rule is a segment rule.
type Rule struct {
	Type       string      `json:"type"`
	Conditions []Condition `json:"conditions"`
	Rules      []Rule      `json:"rules"`
}

// Condition is a segment condition. property_ may be null or absent.
type Condition struct {
	Operator string          `json:"operator"`
	Property *string         `json:"property_"`
	Value    json.RawMessage `json:"value"`
}

// FeatureRef names a feature.
type FeatureRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// FeatureState is a feature's state in the environment, a segment, or an
// identity override.
type FeatureState struct {
	Feature                        FeatureRef          `json:"feature"`
	Enabled                        bool                `json:"enabled"`
	FeatureStateValue              json.RawMessage     `json:"feature_state_value"`
	DjangoID                       *json.Number        `json:"django_id"`
	FeatureStateUUID               string              `json:"featurestate_uuid"`
	FeatureSegment                 *FeatureSegment     `json:"feature_segment"`
	MultivariateFeatureStateValues []MultivariateValue `json:"multivariate_feature_state_values"`
}

// FeatureSegment carries a segment override's priority.
type FeatureSegment struct {
	Priority *json.Number `json:"priority"`
}

// MultivariateValue is one variant's allocation.
type MultivariateValue struct {
	ID                        *json.Number       `json:"id"`
	MvFsValueUUID             string             `json:"mv_fs_value_uuid"`
	PercentageAllocation      json.Number        `json:"percentage_allocation"`
	MultivariateFeatureOption MultivariateOption `json:"multivariate_feature_option"`
}

// MultivariateOption is a variant's value.
type MultivariateOption struct {
	ID    *json.Number    `json:"id"`
	Value json.RawMessage `json:"value"`
	Key   *string         `json:"key"`
}

// IdentityOverride is an identity's feature overrides embedded in the
// document (when the environment enables it for local evaluation).
type IdentityOverride struct {
	Identifier       string         `json:"identifier"`
	IdentityFeatures []FeatureState `json:"identity_features"`
}

// ErrNotDocument is wrapped by Parse errors for input that is JSON but not an
// environment document.
var ErrNotDocument = errors.New("not an environment document")

// Parse decodes and checks an environment document.
func Parse(data []byte) (*Document, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var d Document
	if err := dec.Decode(&d); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%w: field %s: got JSON %s, want %s", ErrNotDocument, te.Field, te.Value, te.Type)
		}
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("invalid JSON: unexpected data after the document")
	}
	if d.APIKey == "" {
		return nil, fmt.Errorf("%w: api_key is missing", ErrNotDocument)
	}
	for i, fs := range d.FeatureStates {
		if fs.Feature.Name == "" {
			return nil, fmt.Errorf("%w: feature_states[%d].feature.name is missing", ErrNotDocument, i)
		}
	}
	for i, s := range d.Project.Segments {
		for j, fs := range s.FeatureStates {
			if fs.Feature.Name == "" {
				return nil, fmt.Errorf("%w: project.segments[%d].feature_states[%d].feature.name is missing", ErrNotDocument, i, j)
			}
		}
	}
	return &d, nil
}

// UpdatedAtTime parses updated_at (ISO-8601; UTC when it has no zone).
// The zero time is returned when it is missing or unparsable.
func (d *Document) UpdatedAtTime() time.Time {
	return parseTimestamp(d.UpdatedAt)
}

func parseTimestamp(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// Organisation is the organisation settings the edge applies.
type Organisation struct {
	PersistTraitData *bool `json:"persist_trait_data"`
	StopServingFlags bool  `json:"stop_serving_flags"`
}

// Org reads the project's organisation; a missing or unreadable one gives
// the defaults (traits persisted, flags served).
func (d *Document) Org() Organisation {
	var o Organisation
	if len(d.Project.Organisation) > 0 {
		_ = json.Unmarshal(d.Project.Organisation, &o)
	}
	return o
}

// EffectiveHideDisabledFlags applies core's rule: the environment's setting
// when it is set, else the project's.
func (d *Document) EffectiveHideDisabledFlags() bool {
	if d.HideDisabledFlags != nil {
		return *d.HideDisabledFlags
	}
	return d.Project.HideDisabledFlags
}

// UpdatedAtHeader formats updated_at as epoch seconds with microseconds, the
// form of X-Flagsmith-Document-Updated-At.
func UpdatedAtHeader(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatFloat(float64(t.UnixMicro())/1e6, 'f', 6, 64)
}
