package workload

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test decodes documents through its own minimal types rather than the
// generator's, so a field the generator forgets to emit shows up here.
type tDoc struct {
	APIKey            *string          `json:"api_key"`
	UpdatedAt         string           `json:"updated_at"`
	HideDisabledFlags *bool            `json:"hide_disabled_flags"`
	Project           tProject         `json:"project"`
	FeatureStates     []tFeatureState  `json:"feature_states"`
	IdentityOverrides []map[string]any `json:"identity_overrides"`
}

type tProject struct {
	ServerKeyOnlyFeatureIDs []int      `json:"server_key_only_feature_ids"`
	Segments                []tSegment `json:"segments"`
}

type tSegment struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Rules []struct {
		Type       string       `json:"type"`
		Conditions []tCondition `json:"conditions"`
		Rules      []any        `json:"rules"`
	} `json:"rules"`
	FeatureStates []tFeatureState `json:"feature_states"`
}

type tCondition struct {
	Operator string  `json:"operator"`
	Property string  `json:"property_"`
	Value    *string `json:"value"`
}

type tFeatureState struct {
	Feature struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"feature"`
	Enabled           bool            `json:"enabled"`
	FeatureStateValue json.RawMessage `json:"feature_state_value"`
	DjangoID          *int            `json:"django_id"`
	FeaturestateUUID  string          `json:"featurestate_uuid"`
	FeatureSegment    *struct {
		Priority *int `json:"priority"`
	} `json:"feature_segment"`
	MV []struct {
		ID                   int             `json:"id"`
		MvFsValueUUID        string          `json:"mv_fs_value_uuid"`
		PercentageAllocation json.RawMessage `json:"percentage_allocation"`
	} `json:"multivariate_feature_state_values"`
}

func decode(t *testing.T, b []byte) tDoc {
	t.Helper()
	if !json.Valid(b) {
		t.Fatal("document is not valid JSON")
	}
	var d tDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestDocumentShape(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			raw := Document(p, 0)
			d := decode(t, raw)

			if d.APIKey == nil || *d.APIKey != ClientKey(p) {
				t.Errorf("api_key = %v, want %s", d.APIKey, ClientKey(p))
			}
			if !strings.HasPrefix(ServerKey(p), "ser.") || len(ClientKey(p)) != 22 {
				t.Errorf("keys %q / %q have the wrong shape", ClientKey(p), ServerKey(p))
			}
			if d.HideDisabledFlags != nil {
				t.Error("environment hide_disabled_flags should be null")
			}
			if _, err := time.Parse(time.RFC3339Nano, d.UpdatedAt); err != nil || !strings.HasSuffix(d.UpdatedAt, "+00:00") {
				t.Errorf("updated_at %q: want RFC 3339 with a numeric offset (%v)", d.UpdatedAt, err)
			}
			if len(d.Project.ServerKeyOnlyFeatureIDs) == 0 {
				t.Error("server_key_only_feature_ids is empty")
			}
			if len(d.IdentityOverrides) == 0 {
				t.Error("no identity_overrides")
			}

			if len(d.FeatureStates) != p.Features {
				t.Fatalf("%d feature states, want %d", len(d.FeatureStates), p.Features)
			}
			multivariate := 0
			kinds := map[byte]bool{}
			for i, fs := range d.FeatureStates {
				if fs.Feature.Name != fmt.Sprintf("feature_%02d", i) {
					t.Errorf("feature %d named %q", i, fs.Feature.Name)
				}
				if fs.FeatureSegment != nil || fs.DjangoID == nil || !uuidRE.MatchString(fs.FeaturestateUUID) {
					t.Errorf("%s: bad env feature state metadata", fs.Feature.Name)
				}
				kinds[fs.FeatureStateValue[0]] = true
				if fs.Feature.Type == "MULTIVARIATE" {
					multivariate++
					if n := len(fs.MV); n < 2 || n > 3 {
						t.Errorf("%s: %d variants", fs.Feature.Name, n)
					}
					for _, mv := range fs.MV {
						if !bytes.Contains(mv.PercentageAllocation, []byte(".")) || mv.ID == 0 || !uuidRE.MatchString(mv.MvFsValueUUID) {
							t.Errorf("%s: bad variant %+v", fs.Feature.Name, mv)
						}
					}
				}
			}
			if multivariate != p.Features/5 {
				t.Errorf("%d multivariate features, want %d", multivariate, p.Features/5)
			}
			// String, int, bool and null values must all occur.
			for _, c := range []byte{'"', '1', 't', 'n'} {
				if !kinds[c] {
					t.Errorf("no feature value starting with %q", c)
				}
			}

			if len(d.Project.Segments) != p.Segments {
				t.Fatalf("%d segments, want %d", len(d.Project.Segments), p.Segments)
			}
			overrides, regexes := 0, 0
			for s, seg := range d.Project.Segments {
				if len(seg.Rules) != 1 || seg.Rules[0].Type != "ALL" || seg.Rules[0].Rules == nil {
					t.Fatalf("segment %d: want one ALL rule with an empty rules list", s)
				}
				conds := seg.Rules[0].Conditions
				if len(conds) != p.ConditionsPerSegment {
					t.Errorf("segment %d: %d conditions", s, len(conds))
				}
				for c, cond := range conds {
					if cond.Property != fmt.Sprintf("trait_%02d", c) {
						t.Errorf("segment %d condition %d reads %q", s, c, cond.Property)
					}
					if cond.Operator == "REGEX" {
						regexes++
					}
				}
				for i, fs := range seg.FeatureStates {
					overrides++
					if fs.FeatureSegment == nil || fs.FeatureSegment.Priority == nil || *fs.FeatureSegment.Priority != s {
						t.Errorf("segment %d override %d: bad feature_segment", s, i)
					}
					if fs.Feature.ID != d.FeatureStates[i].Feature.ID {
						t.Errorf("segment %d override %d: feature id mismatch", s, i)
					}
				}
			}
			if overrides != p.Segments*p.Features {
				t.Errorf("%d overrides, want %d", overrides, p.Segments*p.Features)
			}
			if regexes > 1 {
				t.Errorf("%d REGEX conditions, want at most 1", regexes)
			}
		})
	}
}

func TestDocumentHasAllTopLevelFields(t *testing.T) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(Document(P2, 0), &top); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "api_key", "name", "updated_at", "allow_client_traits", "hide_sensitive_data",
		"hide_disabled_flags", "use_identity_composite_key_for_hashing", "use_identity_overrides_in_local_eval",
		"project", "feature_states", "identity_overrides"} {
		if _, ok := top[k]; !ok {
			t.Errorf("missing top-level %q", k)
		}
	}
	var proj map[string]json.RawMessage
	if err := json.Unmarshal(top["project"], &proj); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "name", "hide_disabled_flags", "server_key_only_feature_ids", "organisation", "segments"} {
		if _, ok := proj[k]; !ok {
			t.Errorf("missing project.%q", k)
		}
	}
}

func TestP2Size(t *testing.T) {
	n := len(Document(P2, 0))
	t.Logf("P1 %d bytes, P2 %d bytes", len(Document(P1, 0)), n)
	if n < 200_000 || n > 250_000 {
		t.Errorf("P2 document is %d bytes, want 200–250 KB", n)
	}
}

func TestDeterministic(t *testing.T) {
	for _, p := range Profiles() {
		if !bytes.Equal(Document(p, 3), Document(p, 3)) {
			t.Errorf("%s: Document differs between calls", p.Name)
		}
		if !bytes.Equal(IdentityBody(p, "u"), IdentityBody(p, "u")) {
			t.Errorf("%s: IdentityBody differs between calls", p.Name)
		}
	}
}

func TestVersionChangesDocument(t *testing.T) {
	for _, p := range Profiles() {
		a, b := decode(t, Document(p, 0)), decode(t, Document(p, 1))
		ta, _ := time.Parse(time.RFC3339Nano, a.UpdatedAt)
		tb, _ := time.Parse(time.RFC3339Nano, b.UpdatedAt)
		if !tb.After(ta) {
			t.Errorf("%s: updated_at %s is not after %s", p.Name, b.UpdatedAt, a.UpdatedAt)
		}
		// Whole seconds must differ too, or If-Modified-Since could not tell
		// the versions apart.
		if ta.Truncate(time.Second).Equal(tb.Truncate(time.Second)) {
			t.Errorf("%s: versions share the same second", p.Name)
		}
		changed := 0
		for i := range a.FeatureStates {
			if !bytes.Equal(a.FeatureStates[i].FeatureStateValue, b.FeatureStates[i].FeatureStateValue) {
				changed++
			}
		}
		if changed == 0 || changed > 10 {
			t.Errorf("%s: %d feature values changed between versions, want a few", p.Name, changed)
		}
	}
}

func TestIdentityBody(t *testing.T) {
	var body struct {
		Identifier string `json:"identifier"`
		Traits     []struct {
			Key   string          `json:"trait_key"`
			Value json.RawMessage `json:"trait_value"`
		} `json:"traits"`
	}
	if err := json.Unmarshal(IdentityBody(P2, "bench-user"), &body); err != nil {
		t.Fatal(err)
	}
	ts := Traits(P2)
	if body.Identifier != "bench-user" || len(body.Traits) != 15 || len(ts) != 15 {
		t.Fatalf("identifier %q with %d traits", body.Identifier, len(body.Traits))
	}
	for i, tr := range body.Traits {
		if tr.Key != ts[i].Key {
			t.Errorf("trait %d key %q, want %q", i, tr.Key, ts[i].Key)
		}
		// An integral float would be written without a fraction and become an
		// int for the engines; check every type survives encoding.
		raw := string(tr.Value)
		switch v := ts[i].Value.(type) {
		case int64:
			if strings.ContainsAny(raw, ".\"") {
				t.Errorf("%s: int encoded as %s", tr.Key, raw)
			}
		case float64:
			if !strings.Contains(raw, ".") {
				t.Errorf("%s: float %v encoded as %s", tr.Key, v, raw)
			}
		case string:
			if raw[0] != '"' || numericString(v) {
				t.Errorf("%s: string %q is numeric-looking or badly encoded", tr.Key, v)
			}
		case bool:
		default:
			t.Errorf("%s: unexpected type %T", tr.Key, v)
		}
	}
	if n := len(Traits(P1)); n == 0 || n > 3 {
		t.Errorf("P1 has %d traits, want a couple", n)
	}
}

// numericString matches the strings the Python engine turns into numbers.
func numericString(s string) bool {
	return regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`).MatchString(s)
}

// TestWorstCaseTraits evaluates every condition with a small independent
// checker: worst-case traits must fail exactly the last condition of every
// segment, and matching traits must pass them all.
func TestWorstCaseTraits(t *testing.T) {
	big := Profile{"big", 20, 40, 20, 22}
	for _, p := range []Profile{P2, big} {
		d := decode(t, Document(p, 0))
		worst, matching := traitMap(Traits(p)), traitMap(MatchingTraits(p))
		if len(worst) != max(p.Traits, p.ConditionsPerSegment) {
			t.Errorf("%s: %d traits", p.Name, len(worst))
		}
		evaluated := 0
		for s, seg := range d.Project.Segments {
			conds := seg.Rules[0].Conditions
			for c, cond := range conds {
				evaluated++
				got, err := check(cond, worst[cond.Property])
				if err != nil {
					t.Fatalf("%s segment %d condition %d: %v", p.Name, s, c, err)
				}
				if want := c < len(conds)-1; got != want {
					t.Errorf("%s segment %d condition %d %+v with %v: got %v, want %v",
						p.Name, s, c, cond, worst[cond.Property], got, want)
				}
				if ok, _ := check(cond, matching[cond.Property]); !ok {
					t.Errorf("%s segment %d condition %d %+v: matching trait %v fails",
						p.Name, s, c, cond, matching[cond.Property])
				}
			}
		}
		if want := p.Segments * p.ConditionsPerSegment; evaluated != want {
			t.Errorf("%s: %d conditions, want %d", p.Name, evaluated, want)
		}
	}
}

func TestOperatorMix(t *testing.T) {
	d := decode(t, Document(P2, 0))
	ops := map[string]int{}
	values := map[string]bool{}
	for _, seg := range d.Project.Segments {
		for _, c := range seg.Rules[0].Conditions {
			op := c.Operator
			if c.Value != nil && strings.HasSuffix(*c.Value, ":semver") {
				op += ":semver"
			}
			ops[op]++
			if c.Value != nil {
				values[c.Property+"="+*c.Value] = true
			}
		}
	}
	for _, op := range []string{"EQUAL", "NOT_EQUAL", "GREATER_THAN", "GREATER_THAN_INCLUSIVE", "LESS_THAN",
		"LESS_THAN_INCLUSIVE", "CONTAINS", "NOT_CONTAINS", "IN", "IS_SET", "MODULO", "REGEX"} {
		if ops[op] == 0 {
			t.Errorf("operator %s never used", op)
		}
	}
	semver := 0
	for op, n := range ops {
		if strings.HasSuffix(op, ":semver") {
			semver += n
		}
	}
	if semver == 0 || ops["REGEX"] != 1 {
		t.Errorf("semver conditions %d, REGEX %d; operators %v", semver, ops["REGEX"], ops)
	}
	// Most conditions must differ per segment, so no engine can reuse results.
	if len(values) < 10*P2.Segments {
		t.Errorf("only %d distinct condition values", len(values))
	}
	t.Logf("operators: %v", ops)
}

func traitMap(ts []Trait) map[string]any {
	m := make(map[string]any, len(ts))
	for _, t := range ts {
		m[t.Key] = t.Value
	}
	return m
}

// check is deliberately simpler than a real engine: it handles exactly the
// value types and operators this package generates and errors on anything
// else, so a generator change that leaves that subset is noticed.
func check(c tCondition, v any) (bool, error) {
	if c.Operator == "IS_SET" {
		return v != nil, nil
	}
	if v == nil {
		return false, fmt.Errorf("trait %s missing", c.Property)
	}
	if c.Value == nil {
		return false, fmt.Errorf("%s with a null value", c.Operator)
	}
	s := *c.Value
	switch c.Operator {
	case "IN":
		var text string
		switch v := v.(type) {
		case string:
			text = v
		case int64:
			text = strconv.FormatInt(v, 10)
		default:
			return false, fmt.Errorf("IN on %T", v)
		}
		for _, e := range strings.Split(s, ",") {
			if e == text {
				return true, nil
			}
		}
		return false, nil
	case "MODULO":
		var x float64
		switch v := v.(type) {
		case int64:
			x = float64(v)
		case float64:
			x = v
		default:
			return false, fmt.Errorf("MODULO on %T", v)
		}
		d, r, ok := strings.Cut(s, "|")
		dv, err1 := strconv.ParseFloat(d, 64)
		rv, err2 := strconv.ParseFloat(r, 64)
		if !ok || err1 != nil || err2 != nil || dv == 0 {
			return false, fmt.Errorf("bad MODULO value %q", s)
		}
		return math.Mod(x, dv) == rv, nil
	case "REGEX":
		sv, ok := v.(string)
		if !ok {
			return false, fmt.Errorf("REGEX on %T", v)
		}
		re, err := regexp.Compile(s)
		if err != nil {
			return false, err
		}
		return re.MatchString(sv), nil
	case "CONTAINS", "NOT_CONTAINS":
		sv, ok := v.(string)
		if !ok {
			return false, fmt.Errorf("%s on %T", c.Operator, v)
		}
		return strings.Contains(sv, s) == (c.Operator == "CONTAINS"), nil
	}

	// Ordered comparisons reduce to the sign of v compared with s.
	var cmp int
	switch v := v.(type) {
	case string:
		if ver, ok := strings.CutSuffix(s, ":semver"); ok {
			a, err1 := parseSemver(v)
			b, err2 := parseSemver(ver)
			if err1 != nil || err2 != nil {
				return false, fmt.Errorf("semver %q vs %q", v, ver)
			}
			cmp = compareInts(a[:], b[:])
		} else {
			cmp = strings.Compare(v, s)
		}
	case int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return false, fmt.Errorf("int trait vs %q", s)
		}
		cmp = compareInts([]int64{v}, []int64{n})
	case float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return false, fmt.Errorf("float trait vs %q", s)
		}
		switch {
		case v < f:
			cmp = -1
		case v > f:
			cmp = 1
		}
	case bool:
		if c.Operator != "EQUAL" && c.Operator != "NOT_EQUAL" {
			return false, fmt.Errorf("%s on bool", c.Operator)
		}
		b := s != "False" && s != "false"
		if v != b {
			cmp = 1
		}
	default:
		return false, fmt.Errorf("trait type %T", v)
	}
	switch c.Operator {
	case "EQUAL":
		return cmp == 0, nil
	case "NOT_EQUAL":
		return cmp != 0, nil
	case "GREATER_THAN":
		return cmp > 0, nil
	case "GREATER_THAN_INCLUSIVE":
		return cmp >= 0, nil
	case "LESS_THAN":
		return cmp < 0, nil
	case "LESS_THAN_INCLUSIVE":
		return cmp <= 0, nil
	}
	return false, fmt.Errorf("operator %s", c.Operator)
}

// parseSemver accepts only plain MAJOR.MINOR.PATCH, all this package emits.
func parseSemver(s string) ([3]int64, error) {
	var out [3]int64
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return out, fmt.Errorf("not semver: %q", s)
	}
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 {
			return out, fmt.Errorf("not semver: %q", s)
		}
		out[i] = n
	}
	return out, nil
}

func compareInts(a, b []int64) int {
	for i := range a {
		switch {
		case a[i] < b[i]:
			return -1
		case a[i] > b[i]:
			return 1
		}
	}
	return 0
}
