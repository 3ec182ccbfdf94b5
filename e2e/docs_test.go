package e2e

import (
	"bytes"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The environment document, as far as the tests need it to build documents
// and to derive expected responses from them (api.md §3). Values decode as
// json.Number so that re-encoding keeps their literal.

type document struct {
	ID                              int                `json:"id"`
	APIKey                          string             `json:"api_key"`
	Name                            string             `json:"name"`
	UpdatedAt                       string             `json:"updated_at"`
	AllowClientTraits               bool               `json:"allow_client_traits"`
	HideSensitiveData               bool               `json:"hide_sensitive_data"`
	HideDisabledFlags               *bool              `json:"hide_disabled_flags"`
	UseIdentityCompositeKey         bool               `json:"use_identity_composite_key_for_hashing"`
	UseIdentityOverridesInLocalEval bool               `json:"use_identity_overrides_in_local_eval"`
	Project                         project            `json:"project"`
	FeatureStates                   []featureState     `json:"feature_states"`
	IdentityOverrides               []identityOverride `json:"identity_overrides"`
}

type project struct {
	ID                      int          `json:"id"`
	Name                    string       `json:"name"`
	HideDisabledFlags       bool         `json:"hide_disabled_flags"`
	EnableRealtimeUpdates   bool         `json:"enable_realtime_updates"`
	ServerKeyOnlyFeatureIDs []int64      `json:"server_key_only_feature_ids"`
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
	Feature          featureRef      `json:"feature"`
	Enabled          bool            `json:"enabled"`
	Value            any             `json:"feature_state_value"`
	DjangoID         *int64          `json:"django_id"`
	FeaturestateUUID string          `json:"featurestate_uuid"`
	FeatureSegment   *featureSegment `json:"feature_segment"`
	Multivariate     []mvValue       `json:"multivariate_feature_state_values"`
}

type featureRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

type featureSegment struct {
	Priority int `json:"priority"`
}

type mvValue struct {
	ID                   int64       `json:"id"`
	UUID                 string      `json:"mv_fs_value_uuid"`
	PercentageAllocation json.Number `json:"percentage_allocation"`
	Option               mvOption    `json:"multivariate_feature_option"`
}

type mvOption struct {
	ID    int64   `json:"id"`
	Value any     `json:"value"`
	Key   *string `json:"key"`
}

type identityOverride struct {
	Identifier       string         `json:"identifier"`
	IdentityFeatures []featureState `json:"identity_features"`
}

// parseDocument decodes a document, keeping number literals.
func parseDocument(t *testing.T, raw []byte) *document {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var d document
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("decoding test document: %v", err)
	}
	return &d
}

// newDocument returns a minimal valid document for apiKey with the given
// environment defaults; the hide-disabled settings are both off.
func newDocument(apiKey string, features ...featureState) *document {
	return &document{
		ID:                              1,
		APIKey:                          apiKey,
		Name:                            "e2e " + apiKey,
		UpdatedAt:                       "2026-03-01T12:00:00.250000+00:00",
		AllowClientTraits:               true,
		UseIdentityCompositeKey:         true,
		UseIdentityOverridesInLocalEval: true,
		Project: project{
			ID:                      1,
			Name:                    "e2e",
			ServerKeyOnlyFeatureIDs: []int64{},
			Organisation:            organisation{ID: 1, Name: "e2e", PersistTraitData: true},
			Segments:                []segment{},
		},
		FeatureStates:     features,
		IdentityOverrides: []identityOverride{},
	}
}

// feature returns an environment default (STANDARD, no variants).
func feature(id int64, name string, enabled bool, value any) featureState {
	django := 1000 + id
	return featureState{
		Feature:          featureRef{ID: id, Name: name, Type: "STANDARD"},
		Enabled:          enabled,
		Value:            value,
		DjangoID:         &django,
		FeaturestateUUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", id),
		Multivariate:     []mvValue{},
	}
}

// override returns an identity override of f (no django_id, as overrides
// made through the edge identities API have none).
func override(f featureState, enabled bool, value any) featureState {
	f.Enabled, f.Value, f.DjangoID = enabled, value, nil
	f.FeaturestateUUID = fmt.Sprintf("11111111-0000-4000-8000-%012d", f.Feature.ID)
	return f
}

// marshal encodes compactly without HTML escaping, as Flagsmith does.
func marshal(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encoding: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// readRepoFile reads a file of the repository, e.g. examples/environment.json.
func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// updatedAt parses the document's updated_at.
func (d *document) updatedAt(t *testing.T) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, d.UpdatedAt)
	if err != nil {
		t.Fatalf("test document updated_at %q: %v", d.UpdatedAt, err)
	}
	return ts
}

// hideDisabled is core's rule (api.md §2.8): the environment's setting when
// set, else the project's.
func (d *document) hideDisabled() bool {
	if d.HideDisabledFlags != nil {
		return *d.HideDisabledFlags
	}
	return d.Project.HideDisabledFlags
}

// visible says whether a flag is in responses for the key kind: server keys
// see everything; client keys see neither server-key-only features nor, when
// hide-disabled is in effect, disabled flags.
func (d *document) visible(serverKey bool, featureID int64, enabled bool) bool {
	if serverKey {
		return true
	}
	if slices.Contains(d.Project.ServerKeyOnlyFeatureIDs, featureID) {
		return false
	}
	return enabled || !d.hideDisabled()
}

// flagItem is the exact bytes of one V1Flag (api.md §2): feature
// {id, name, type}, enabled, feature_state_value.
func flagItem(t *testing.T, f featureRef, enabled bool, value any) []byte {
	t.Helper()
	typ := f.Type
	if typ == "" {
		typ = "STANDARD"
	}
	return marshal(t, struct {
		Feature featureRef `json:"feature"`
		Enabled bool       `json:"enabled"`
		Value   any        `json:"feature_state_value"`
	}{featureRef{f.ID, f.Name, typ}, enabled, value})
}

// envFlags is what GET /flags/ must list for the key kind: the environment
// defaults, filtered (api.md §2.1).
func (d *document) envFlags(t *testing.T, serverKey bool) [][]byte {
	t.Helper()
	var out [][]byte
	for _, fs := range d.FeatureStates {
		if d.visible(serverKey, fs.Feature.ID, fs.Enabled) {
			out = append(out, flagItem(t, fs.Feature, fs.Enabled, fs.Value))
		}
	}
	return out
}

// defaultState returns the environment default of the named feature.
func (d *document) defaultState(t *testing.T, name string) featureState {
	t.Helper()
	for _, fs := range d.FeatureStates {
		if fs.Feature.Name == name {
			return fs
		}
	}
	t.Fatalf("test document has no feature %q", name)
	return featureState{}
}

// percentage is Flagsmith's hashing (engine.md §2.7): MD5 of the ids
// joined with commas, mod 9999, scaled to [0, 100), re-hashed with the ids
// repeated when it lands on exactly 100.
func percentage(ids ...string) float64 {
	for n := 1; ; n++ {
		s := strings.Join(slices.Repeat(ids, n), ",")
		sum := md5.Sum([]byte(s))
		m := 0
		for _, b := range sum {
			m = (m*256 + int(b)) % 9999
		}
		if p := float64(m) / 9998.0 * 100.0; p != 100 {
			return p
		}
	}
}

// splitValue is the value of a multivariate feature state for an identity
// (engine.md §2.9): variants sorted by id, the first whose cumulative range
// holds percentage([key, identity key]), else the control value. The
// feature state's key is its django_id, else its UUID.
func splitValue(t *testing.T, fs featureState, identityKey string) any {
	t.Helper()
	key := fs.FeaturestateUUID
	if fs.DjangoID != nil && *fs.DjangoID != 0 {
		key = strconv.FormatInt(*fs.DjangoID, 10)
	}
	variants := slices.Clone(fs.Multivariate)
	slices.SortStableFunc(variants, func(a, b mvValue) int {
		if a.ID == 0 || b.ID == 0 {
			t.Fatal("splitValue handles variants with ids only")
		}
		return int(a.ID - b.ID)
	})
	p := percentage(key, identityKey)
	start := 0.0
	for _, v := range variants {
		w, err := v.PercentageAllocation.Float64()
		if err != nil {
			t.Fatal(err)
		}
		if limit := start + w; start <= p && p < limit {
			return v.Option.Value
		}
		start += w
	}
	return fs.Value
}

func TestPercentageMatchesSpecVectors(t *testing.T) {
	t.Parallel()
	// engine.md §2.7 test vectors.
	for _, tc := range []struct {
		ids  []string
		want float64
	}{
		{[]string{"78986", "test_env_foobar"}, 54.53090618123625},
		{[]string{"12345", "test_env_foobar"}, 51.990398079615915},
		{[]string{"1016366", "8AYnz4q3KEfT5DFtnramnP_user-123"}, 39.19783956791358},
		{[]string{"1", "user_22522"}, 5.781156231246249},
	} {
		if got := percentage(tc.ids...); got != tc.want {
			t.Errorf("percentage(%q) = %v, want %v", tc.ids, got, tc.want)
		}
	}
}

// flagList splits a JSON array body into its elements' exact bytes, and
// fails unless the body is exactly those elements joined compactly.
func flagList(t *testing.T, body []byte) [][]byte {
	t.Helper()
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		t.Fatalf("body is not a JSON array: %v\n%s", err, body)
	}
	out := make([][]byte, len(items))
	for i, it := range items {
		out[i] = it
	}
	if rebuilt := joinList(out); !bytes.Equal(rebuilt, body) {
		t.Fatalf("body is not a compact JSON array:\n%s", body)
	}
	return out
}

func joinList(items [][]byte) []byte {
	return append(append([]byte{'['}, bytes.Join(items, []byte{','})...), ']')
}

// assertSameItems checks that got and want hold the same byte strings in any
// order: the order of flags is not significant (api.md §2), their bytes are.
func assertSameItems(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	g := slices.SortedFunc(slices.Values(got), bytes.Compare)
	w := slices.SortedFunc(slices.Values(want), bytes.Compare)
	if !slices.EqualFunc(g, w, bytes.Equal) {
		t.Errorf("%s:\ngot  %s\nwant %s", what, joinList(g), joinList(w))
	}
}

// assertFlagsBody checks a GET /flags/ body: a compact array holding exactly
// the wanted items.
func assertFlagsBody(t *testing.T, body []byte, want [][]byte) {
	t.Helper()
	assertSameItems(t, "flags", flagList(t, body), want)
}

// assertIdentityBody checks an /identities/ body byte for byte:
// {"identifier":…,"flags":[…],"traits":…} with the flags in any order and
// traits exactly as wantTraits (a compact JSON array).
func assertIdentityBody(t *testing.T, body []byte, identifier string, want [][]byte, wantTraits string) {
	t.Helper()
	var got struct {
		Flags json.RawMessage `json:"flags"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("identities body is not JSON: %v\n%s", err, body)
	}
	flags := flagList(t, got.Flags)
	assertSameItems(t, "identity "+identifier+" flags", flags, want)
	wantBody := `{"identifier":` + string(marshal(t, identifier)) + `,"flags":` + string(joinList(flags)) +
		`,"traits":` + wantTraits + `}`
	if string(body) != wantBody {
		t.Errorf("identities body:\ngot  %s\nwant %s", body, wantBody)
	}
}
