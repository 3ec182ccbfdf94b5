package workload

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The JSON shapes below mirror core's SDK document mapper (api.md §3). Field
// order follows the annotated example there; encoding/json keeps struct order,
// so output is byte-for-byte deterministic.

type document struct {
	ID                                int                `json:"id"`
	APIKey                            string             `json:"api_key"`
	Name                              string             `json:"name"`
	UpdatedAt                         string             `json:"updated_at"`
	AllowClientTraits                 bool               `json:"allow_client_traits"`
	HideSensitiveData                 bool               `json:"hide_sensitive_data"`
	HideDisabledFlags                 *bool              `json:"hide_disabled_flags"`
	UseIdentityCompositeKeyForHashing bool               `json:"use_identity_composite_key_for_hashing"`
	UseIdentityOverridesInLocalEval   bool               `json:"use_identity_overrides_in_local_eval"`
	Project                           project            `json:"project"`
	FeatureStates                     []featureState     `json:"feature_states"`
	IdentityOverrides                 []identityOverride `json:"identity_overrides"`
}

type project struct {
	ID                      int          `json:"id"`
	Name                    string       `json:"name"`
	HideDisabledFlags       bool         `json:"hide_disabled_flags"`
	EnableRealtimeUpdates   bool         `json:"enable_realtime_updates"`
	ServerKeyOnlyFeatureIDs []int        `json:"server_key_only_feature_ids"`
	Organisation            organisation `json:"organisation"`
	Segments                []segment    `json:"segments"`
}

type organisation struct {
	ID               int    `json:"id"`
	Name             string `json:"name"`
	FeatureAnalytics bool   `json:"feature_analytics"`
	StopServingFlags bool   `json:"stop_serving_flags"`
	PersistTraitData bool   `json:"persist_trait_data"`
}

type segment struct {
	ID            int            `json:"id"`
	Name          string         `json:"name"`
	Rules         []rule         `json:"rules"`
	FeatureStates []featureState `json:"feature_states"`
}

type rule struct {
	Type       string      `json:"type"`
	Conditions []condition `json:"conditions"`
	Rules      []rule      `json:"rules"`
}

type condition struct {
	Operator string  `json:"operator"`
	Property string  `json:"property_"`
	Value    *string `json:"value"`
}

type featureState struct {
	Feature                        feature         `json:"feature"`
	Enabled                        bool            `json:"enabled"`
	FeatureStateValue              any             `json:"feature_state_value"`
	DjangoID                       *int            `json:"django_id"`
	FeaturestateUUID               string          `json:"featurestate_uuid"`
	FeatureSegment                 *featureSegment `json:"feature_segment"`
	MultivariateFeatureStateValues []mvValue       `json:"multivariate_feature_state_values"`
}

type feature struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

type featureSegment struct {
	Priority int `json:"priority"`
}

type mvValue struct {
	ID                        int      `json:"id"`
	MvFsValueUUID             string   `json:"mv_fs_value_uuid"`
	PercentageAllocation      pyFloat  `json:"percentage_allocation"`
	MultivariateFeatureOption mvOption `json:"multivariate_feature_option"`
}

type mvOption struct {
	ID    int     `json:"id"`
	Value any     `json:"value"`
	Key   *string `json:"key"`
}

type identityOverride struct {
	Identifier        string         `json:"identifier"`
	IdentityUUID      string         `json:"identity_uuid"`
	EnvironmentAPIKey string         `json:"environment_api_key"`
	CompositeKey      string         `json:"composite_key"`
	CreatedDate       string         `json:"created_date"`
	DjangoID          *int           `json:"django_id"`
	DashboardAlias    *string        `json:"dashboard_alias"`
	IdentityTraits    []struct{}     `json:"identity_traits"`
	IdentityFeatures  []featureState `json:"identity_features"`
}

// pyFloat marshals integral values as "30.0": core dumps percentage_allocation
// from a Python float, and the engine's reason text ("SPLIT; weight=30.0")
// depends on that literal, whereas encoding/json would write 30.
type pyFloat float64

func (f pyFloat) MarshalJSON() ([]byte, error) {
	b := strconv.AppendFloat(nil, float64(f), 'f', -1, 64)
	if !bytes.ContainsAny(b, ".eE") {
		b = append(b, '.', '0')
	}
	return b, nil
}

// Fixed ids keep documents identical across runs; the magnitudes resemble
// SaaS ids so any id-width assumptions in consumers are exercised.
const (
	envID         = 49268
	projectID     = 19368
	orgID         = 13077
	featureIDBase = 100200
	envFSIDBase   = 577600
	segmentIDBase = 44120
	segFSIDBase   = 810000
	mvIDBase      = 185100
	mvOptIDBase   = 20900
)

var baseUpdatedAt = time.Date(2025, 11, 16, 13, 28, 31, 244331000, time.UTC)

// serverKeyOnly lists feature indices hidden from client keys.
var serverKeyOnly = []int{7, 33}

func featureID(i int) int { return featureIDBase + 3*i }

func featureName(i int) string { return fmt.Sprintf("feature_%02d", i) }

func isMultivariate(i int) bool { return i%5 == 0 }

// versioned reports whether feature i's value tracks the document version, so
// successive versions differ in content as well as in updated_at.
func versioned(i int) bool { return i%20 == 1 || i%20 == 2 }

var configTemplates = []string{
	`{"layout":"grid","columns":%d,"accent":"#3b82f6","headline":"Try the redesigned reporting dashboard"}`,
	`Welcome back! Your workspace now supports %d concurrent exports and scheduled delivery to Slack.`,
	`{"retry":{"max_attempts":%d,"backoff_ms":[100,400,1600]},"endpoint":"https://api.example.com/v2/sync"}`,
	`checkout-experience-variant-%d: single-page flow with saved payment methods and address autocomplete`,
	`{"banner":{"text":"Scheduled maintenance on Sunday 02:00-04:00 UTC","severity":"info","dismissable":true,"id":%d}}`,
}

// envValue is the environment-default value of feature i; the kind cycles so
// that every document holds strings, ints, bools and nulls.
func envValue(i, version int) any {
	switch i % 5 {
	case 0:
		return fmt.Sprintf("control-%02d", i)
	case 1:
		s := fmt.Sprintf(configTemplates[(i/5)%len(configTemplates)], i)
		if versioned(i) {
			s += fmt.Sprintf(" (rev %d)", version)
		}
		return s
	case 2:
		n := 100 + 7*i
		if versioned(i) {
			n += version
		}
		return n
	case 3:
		return i%2 == 1
	default:
		return nil
	}
}

// segmentValue keeps the type of the environment value so overrides look like
// edits of the same feature. Strings are short, as segment overrides usually
// are; the long remote-config strings live at environment level.
func segmentValue(i, seg int) any {
	switch v := envValue(i, 0).(type) {
	case string:
		if isMultivariate(i) {
			return fmt.Sprintf("segment-%02d-control-%02d", seg, i)
		}
		return fmt.Sprintf("%s-segment-%02d-override", featureName(i), seg)
	case int:
		return v + 1000*(seg+1)
	case bool:
		return v != ((seg+i)%2 == 0)
	default:
		return nil
	}
}

// uuidFor derives a version-4-shaped UUID from a label so that documents are
// reproducible while still looking like what core emits.
func uuidFor(label string) string {
	sum := sha256.Sum256([]byte("fledge-bench/" + label))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// apiKey derives a 22-character key, the length of Flagsmith's keys.
func apiKey(label string) string {
	sum := sha256.Sum256([]byte("fledge-bench-key/" + label))
	out := make([]byte, 22)
	for i := range out {
		out[i] = keyAlphabet[int(sum[i])%len(keyAlphabet)]
	}
	return string(out)
}

func intPtr(n int) *int { return &n }

func mvValues(i int, scope string, idBase int) []mvValue {
	if !isMultivariate(i) {
		return []mvValue{}
	}
	allocs := []float64{30, 20}
	if i%10 == 0 {
		allocs = []float64{25, 25, 12.5}
	}
	out := make([]mvValue, len(allocs))
	for k, a := range allocs {
		out[k] = mvValue{
			ID:                   idBase + k,
			MvFsValueUUID:        uuidFor(fmt.Sprintf("%s/mv/%d/%d", scope, i, k)),
			PercentageAllocation: pyFloat(a),
			MultivariateFeatureOption: mvOption{
				ID:    mvOptIDBase + 4*i + k,
				Value: fmt.Sprintf("variant-%c-%02d", 'a'+k, i),
			},
		}
	}
	return out
}

func featureRef(i int) feature {
	t := "STANDARD"
	if isMultivariate(i) {
		t = "MULTIVARIATE"
	}
	return feature{ID: featureID(i), Name: featureName(i), Type: t}
}

func envFeatureStates(p Profile, version int) []featureState {
	out := make([]featureState, p.Features)
	for i := range out {
		out[i] = featureState{
			Feature:                        featureRef(i),
			Enabled:                        i%7 != 3,
			FeatureStateValue:              envValue(i, version),
			DjangoID:                       intPtr(envFSIDBase + i),
			FeaturestateUUID:               uuidFor(fmt.Sprintf("%s/env/%d", p.Name, i)),
			MultivariateFeatureStateValues: mvValues(i, p.Name+"/env", mvIDBase+4*i),
		}
	}
	return out
}

// segmentThemes make P2 resemble a real project, where segment names are
// descriptive; they also contribute to the realistic document size.
var segmentThemes = []string{
	"enterprise_customers_in_europe_on_ios_with_high_engagement",
	"beta_programme_participants_recently_upgraded_mobile_app",
	"growth_plan_accounts_with_large_teams_and_frequent_exports",
	"power_users_with_lifetime_spend_above_threshold",
	"localised_english_speaking_markets_excluding_trial_accounts",
}

func segments(p Profile) []segment {
	out := make([]segment, p.Segments)
	for s := range out {
		conds := make([]condition, p.ConditionsPerSegment)
		for c := range conds {
			conds[c] = conditionFor(p, s, c)
		}
		overrides := make([]featureState, p.Features)
		for i := range overrides {
			fsID := segFSIDBase + 100*s + i
			overrides[i] = featureState{
				Feature:                        featureRef(i),
				Enabled:                        (s+i)%3 != 0,
				FeatureStateValue:              segmentValue(i, s),
				DjangoID:                       intPtr(fsID),
				FeaturestateUUID:               uuidFor(fmt.Sprintf("%s/seg/%d/%d", p.Name, s, i)),
				FeatureSegment:                 &featureSegment{Priority: s},
				MultivariateFeatureStateValues: segmentMV(p, s, i),
			}
		}
		out[s] = segment{
			ID:            segmentIDBase + s,
			Name:          fmt.Sprintf("cohort_%02d_%s", s, segmentThemes[s%len(segmentThemes)]),
			Rules:         []rule{{Type: "ALL", Conditions: conds, Rules: []rule{}}},
			FeatureStates: overrides,
		}
	}
	return out
}

// overrideIdentifiers are deliberately distinct from any identifier the
// benchmarks use, so identity requests take the segment path, not the
// override shortcut.
var overrideIdentifiers = []string{"qa-override-user-1", "qa-override-user-2", "support-agent-override"}

func identityOverrides(p Profile) []identityOverride {
	key := ClientKey(p)
	out := make([]identityOverride, 0, len(overrideIdentifiers))
	for n, id := range overrideIdentifiers {
		var feats []featureState
		for _, i := range []int{1 + n, 4 + 2*n} {
			if i >= p.Features {
				continue
			}
			feats = append(feats, featureState{
				Feature:                        featureRef(i),
				Enabled:                        n%2 == 0,
				FeatureStateValue:              fmt.Sprintf("identity-override-%s", id),
				FeaturestateUUID:               uuidFor(fmt.Sprintf("%s/identity/%s/%d", p.Name, id, i)),
				MultivariateFeatureStateValues: []mvValue{},
			})
		}
		if len(feats) == 0 {
			continue
		}
		out = append(out, identityOverride{
			Identifier:        id,
			IdentityUUID:      uuidFor(fmt.Sprintf("%s/identity/%s", p.Name, id)),
			EnvironmentAPIKey: key,
			CompositeKey:      key + "_" + id,
			CreatedDate:       baseUpdatedAt.Add(-time.Duration(400+n) * time.Hour).Format(timeLayout),
			IdentityTraits:    []struct{}{},
			IdentityFeatures:  feats,
		})
	}
	return out
}

// timeLayout is RFC 3339 with microseconds and a numeric offset, the form
// core serves; Go SDK decoding fails without the offset.
const timeLayout = "2006-01-02T15:04:05.000000-07:00"

func buildDocument(p Profile, version int) document {
	var ids []int
	for _, i := range serverKeyOnly {
		if i < p.Features {
			ids = append(ids, featureID(i))
		}
	}
	if ids == nil {
		ids = []int{}
	}
	updated := baseUpdatedAt.Add(time.Duration(version)*97*time.Second + time.Duration(version)*1013*time.Microsecond)
	return document{
		ID:                                envID,
		APIKey:                            ClientKey(p),
		Name:                              "Benchmark " + p.Name,
		UpdatedAt:                         updated.Format(timeLayout),
		AllowClientTraits:                 true,
		UseIdentityCompositeKeyForHashing: true,
		UseIdentityOverridesInLocalEval:   true,
		Project: project{
			ID:                      projectID,
			Name:                    "Fledge workload " + p.Name,
			ServerKeyOnlyFeatureIDs: ids,
			Organisation: organisation{
				ID:               orgID,
				Name:             "Fledge Benchmarks Ltd",
				PersistTraitData: true,
			},
			Segments: segments(p),
		},
		FeatureStates:     envFeatureStates(p, version),
		IdentityOverrides: identityOverrides(p),
	}
}

// marshal encodes compactly without HTML escaping: core (Python json) does not
// escape '<', '>' or '&', and the bytes should look like what it serves.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only our own plain structs are encoded here, so failure is a bug.
		panic("workload: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// segmentMV gives multivariate overrides their own variant weights only in
// the highest-priority segment: a matching identity then exercises splits
// inside overrides, while the other segments set plain values, which keeps P2
// within the 200–250 KB size of the published sizing profile.
func segmentMV(p Profile, s, i int) []mvValue {
	if s != 0 {
		return []mvValue{}
	}
	return mvValues(i, fmt.Sprintf("%s/seg/%d", p.Name, s), mvIDBase+1000*(s+1)+4*i)
}
