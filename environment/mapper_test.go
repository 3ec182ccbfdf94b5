package environment_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
)

// ---- helpers shared by mapper_test.go and snapshot_test.go ----

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t *testing.T, raw []byte) *environment.Document {
	t.Helper()
	d, err := environment.Parse(raw)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, raw)
	}
	return d
}

func mustContext(t *testing.T, raw []byte) *engine.Context {
	t.Helper()
	ctx, err := mustParse(t, raw).Context()
	if err != nil {
		t.Fatalf("Context: %v", err)
	}
	return ctx
}

func mustCompile(t *testing.T, raw []byte) *environment.Snapshot {
	t.Helper()
	s, err := environment.Compile(mustParse(t, raw), nil)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

// evalResult evaluates id (nil: no identity) and returns the result in the
// evaluation-result schema, decoded.
func evalResult(t *testing.T, s *environment.Snapshot, id *engine.Identity) map[string]any {
	t.Helper()
	var r engine.Result
	s.Program.Evaluate(id, &r)
	return decodeJSON(t, r.AppendJSON(nil)).(map[string]any)
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	return x
}

func assertJSONEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	if !reflect.DeepEqual(decodeJSON(t, got), decodeJSON(t, []byte(want))) {
		t.Errorf("JSON mismatch\n got: %s\nwant: %s", got, want)
	}
}

func flagOf(t *testing.T, res map[string]any, name string) map[string]any {
	t.Helper()
	f, ok := res["flags"].(map[string]any)[name].(map[string]any)
	if !ok {
		t.Fatalf("no flag %q in %v", name, res)
	}
	return f
}

func segmentNames(res map[string]any) []string {
	names := []string{}
	for _, s := range res["segments"].([]any) {
		names = append(names, s.(map[string]any)["name"].(string))
	}
	return names
}

func identity(identifier string, traits ...engine.Trait) *engine.Identity {
	return &engine.Identity{Identifier: identifier, Traits: traits}
}

func trait(name string, v engine.Value) engine.Trait { return engine.Trait{Name: name, Value: v} }

// doc builds a minimal environment document from JSON fragments.
func doc(featureStates, segments, identityOverrides string) []byte {
	return []byte(`{"api_key":"env_key","name":"Env","updated_at":"2025-01-01T00:00:00+00:00",` +
		`"project":{"id":1,"name":"P","hide_disabled_flags":false,"segments":[` + segments + `]},` +
		`"feature_states":[` + featureStates + `],"identity_overrides":[` + identityOverrides + `]}`)
}

// fs is a feature state; extra is appended to its members (start it with a comma).
func fs(id int, name string, enabled bool, value string, extra string) string {
	return fmt.Sprintf(`{"feature":{"id":%d,"name":%q,"type":"STANDARD"},"enabled":%t,"feature_state_value":%s,`+
		`"featurestate_uuid":"00000000-0000-4000-8000-%012d"%s}`, id, name, enabled, value, id, extra)
}

// seg is a project segment matching identities whose trait `prop` EQUALs `val`.
func seg(id int, name, prop, val, featureStates string) string {
	return fmt.Sprintf(`{"id":%d,"name":%q,"rules":[{"type":"ALL","conditions":[{"operator":"EQUAL","property_":%q,"value":%q}],"rules":[]}],"feature_states":[%s]}`,
		id, name, prop, val, featureStates)
}

func override(identifier string, features ...string) string {
	b, _ := json.Marshal(identifier)
	return `{"identifier":` + string(b) + `,"identity_features":[` + strings.Join(features, ",") + `]}`
}

func bigPriority(s string) *big.Float {
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return new(big.Float).SetInt(b)
}

func samePriority(a, b *big.Float) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Cmp(b) == 0
}

func strp(s string) *string { return &s }

// ---- §3.7 worked example ----

func TestWorkedExampleContext(t *testing.T) {
	ctx := mustContext(t, readFixture(t, "environment.json"))
	if ctx.Environment.Key != "B62qaMZNwfiqT76p38ggrQ" || ctx.Environment.Name == nil || *ctx.Environment.Name != "Test environment" {
		t.Errorf("environment = %+v", ctx.Environment)
	}
	if len(ctx.Features) != 2 {
		t.Fatalf("features = %d, want 2", len(ctx.Features))
	}
	sf, mv := ctx.Features[0], ctx.Features[1]
	if sf.Name != "some_feature" || sf.Key != "40eb539d-3713-4720-bbd4-829dbef10d51" || !sf.Enabled ||
		string(sf.Value) != `"some-value"` || string(sf.Metadata) != `{"id":1}` || sf.Priority != nil || len(sf.Variants) != 0 {
		t.Errorf("some_feature = %+v", sf)
	}
	if mv.Name != "mv_feature" || mv.Key != "96fc3503-09d7-48f1-a83b-2dc903d5c08a" || mv.Enabled ||
		string(mv.Value) != `"foo"` || string(mv.Metadata) != `{"id":2}` || len(mv.Variants) != 1 {
		t.Fatalf("mv_feature = %+v", mv)
	}
	v := mv.Variants[0]
	if string(v.Value) != `"bar"` || v.Weight != 100 || v.WeightText != "100" || !samePriority(v.Priority, bigPriority("1")) || v.Key != nil {
		t.Errorf("mv_feature variant = %+v", v)
	}

	if len(ctx.Segments) != 2 {
		t.Fatalf("segments = %d, want regular_segment + one identity-override segment", len(ctx.Segments))
	}
	rs := ctx.Segments[0]
	if rs.MapKey != "1" || rs.Key != "1" || rs.Name != "regular_segment" || string(rs.Metadata) != `{"id":1,"source":"api"}` {
		t.Errorf("regular_segment = %+v", rs)
	}
	wantRules := []engine.Rule{{Type: "ALL", Rules: []engine.Rule{{Type: "ANY", Conditions: []engine.Condition{
		{Property: "age", Operator: "LESS_THAN", Value: engine.ConditionValue{Str: "40"}}}}}}}
	if !reflect.DeepEqual(rs.Rules, wantRules) {
		t.Errorf("regular_segment rules = %+v", rs.Rules)
	}
	if len(rs.Overrides) != 1 {
		t.Fatalf("regular_segment overrides = %+v", rs.Overrides)
	}
	o := rs.Overrides[0]
	if o.Key != "81027" || o.Name != "some_feature" || o.Enabled || string(o.Value) != `"segment_override"` || o.Priority != nil {
		t.Errorf("regular_segment override = %+v", o)
	}

	io := ctx.Segments[1]
	if io.Key != "" || io.Name != environment.IdentityOverridesSegmentName || io.MapKey == "" || io.MapKey == "1" ||
		string(io.Metadata) != `{"source":"identity_overrides"}` {
		t.Errorf("identity override segment = %+v", io)
	}
	wantIO := []engine.Rule{{Type: "ALL", Conditions: []engine.Condition{{Property: "$.identity.identifier", Operator: "IN",
		Value: engine.ConditionValue{IsList: true, List: []string{"overridden-id"}}}}}}
	if !reflect.DeepEqual(io.Rules, wantIO) {
		t.Errorf("identity override rules = %+v", io.Rules)
	}
	if len(io.Overrides) != 1 {
		t.Fatalf("identity overrides = %+v", io.Overrides)
	}
	ov := io.Overrides[0]
	if ov.Key != "" || ov.Name != "some_feature" || ov.Enabled || string(ov.Value) != `"some-overridden-value"` ||
		string(ov.Metadata) != `{"id":1}` || ov.Priority == nil || !ov.Priority.IsInf() || ov.Priority.Sign() >= 0 || len(ov.Variants) != 0 {
		t.Errorf("identity override feature = %+v", ov)
	}
}

func TestWorkedExampleResults(t *testing.T) {
	snap := mustCompile(t, readFixture(t, "environment.json"))
	const (
		sfDefault  = `"some_feature":{"name":"some_feature","enabled":true,"value":"some-value","reason":"DEFAULT","variant":null,"metadata":{"id":1}}`
		mvSplit    = `"mv_feature":{"name":"mv_feature","enabled":false,"value":"bar","reason":"SPLIT; weight=100","variant":null,"metadata":{"id":2}}`
		headSF     = `{"feature":{"id":1,"name":"some_feature","type":"STANDARD"},`
		headMV     = `{"feature":{"id":2,"name":"mv_feature","type":"MULTIVARIATE"},`
		mvFlagJSON = headMV + `"enabled":false,"feature_state_value":"bar"}`
	)
	tests := []struct {
		name       string
		id         *engine.Identity
		wantResult string
		wantFlags  string // AppendIdentityFlags, server key
	}{
		{
			name: "overridden-id",
			id:   identity("overridden-id"),
			wantResult: `{"flags":{"some_feature":{"name":"some_feature","enabled":false,"value":"some-overridden-value",` +
				`"reason":"TARGETING_MATCH; segment=identity_overrides","variant":null,"metadata":{"id":1}},` + mvSplit + `},` +
				`"segments":[{"name":"identity_overrides","metadata":{"source":"identity_overrides"}}]}`,
			wantFlags: `[` + headSF + `"enabled":false,"feature_state_value":"some-overridden-value"},` + mvFlagJSON + `]`,
		},
		{
			name: "u1 age 30",
			id:   identity("u1", trait("age", engine.Int(30))),
			wantResult: `{"flags":{"some_feature":{"name":"some_feature","enabled":false,"value":"segment_override",` +
				`"reason":"TARGETING_MATCH; segment=regular_segment","variant":null,"metadata":{"id":1}},` + mvSplit + `},` +
				`"segments":[{"name":"regular_segment","metadata":{"id":1,"source":"api"}}]}`,
			wantFlags: `[` + headSF + `"enabled":false,"feature_state_value":"segment_override"},` + mvFlagJSON + `]`,
		},
		{
			name:       `u2 age "50"`,
			id:         identity("u2", trait("age", engine.String("50"))),
			wantResult: `{"flags":{` + sfDefault + `,` + mvSplit + `},"segments":[]}`,
			wantFlags:  `[` + headSF + `"enabled":true,"feature_state_value":"some-value"},` + mvFlagJSON + `]`,
		},
		{
			name: "overridden-id age 30: identity override beats the segment",
			id:   identity("overridden-id", trait("age", engine.Int(30))),
			wantResult: `{"flags":{"some_feature":{"name":"some_feature","enabled":false,"value":"some-overridden-value",` +
				`"reason":"TARGETING_MATCH; segment=identity_overrides","variant":null,"metadata":{"id":1}},` + mvSplit + `},` +
				`"segments":[{"name":"regular_segment","metadata":{"id":1,"source":"api"}},{"name":"identity_overrides","metadata":{"source":"identity_overrides"}}]}`,
			wantFlags: `[` + headSF + `"enabled":false,"feature_state_value":"some-overridden-value"},` + mvFlagJSON + `]`,
		},
		{
			name: "no identity",
			id:   nil,
			wantResult: `{"flags":{` + sfDefault + `,"mv_feature":{"name":"mv_feature","enabled":false,"value":"foo","reason":"DEFAULT","variant":null,"metadata":{"id":2}}},` +
				`"segments":[]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r engine.Result
			snap.Program.Evaluate(tc.id, &r)
			assertJSONEqual(t, r.AppendJSON(nil), tc.wantResult)
			if tc.id != nil {
				if got := snap.AppendIdentityFlags(nil, environment.ServerKey, tc.id); string(got) != tc.wantFlags {
					t.Errorf("AppendIdentityFlags\n got: %s\nwant: %s", got, tc.wantFlags)
				}
			}
		})
	}
	// Environment flags (/flags/): defaults only, mv_feature keeps its control value.
	want := `[` + headSF + `"enabled":true,"feature_state_value":"some-value"},` + headMV + `"enabled":false,"feature_state_value":"foo"}]`
	if got := snap.FlagsJSON(environment.ServerKey); string(got) != want {
		t.Errorf("FlagsJSON\n got: %s\nwant: %s", got, want)
	}
}

// ---- §3.1 environment ----

func TestEnvironmentKeyAndName(t *testing.T) {
	// A segment that matches exactly when $.environment.name is not set.
	segment := `{"id":9,"name":"nameless","rules":[{"type":"ALL","conditions":[{"operator":"IS_NOT_SET","property_":"$.environment.name","value":null}]}],` +
		`"feature_states":[` + fs(1, "f", false, `"seg"`, "") + `]}`
	body := func(name string) []byte {
		return []byte(`{"api_key":"k1"` + name + `,"project":{"segments":[` + segment + `]},"feature_states":[` + fs(1, "f", true, `"def"`, "") + `]}`)
	}
	tests := []struct {
		name      string
		member    string
		wantName  *string
		wantMatch bool
	}{
		{"string name", `,"name":"Production"`, strp("Production"), false},
		{"empty name", `,"name":""`, strp(""), false},
		{"null name", `,"name":null`, nil, true},
		{"absent name", ``, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := body(tc.member)
			ctx := mustContext(t, raw)
			if ctx.Environment.Key != "k1" {
				t.Errorf("key = %q", ctx.Environment.Key)
			}
			if !reflect.DeepEqual(ctx.Environment.Name, tc.wantName) {
				t.Errorf("name = %v, want %v", ctx.Environment.Name, tc.wantName)
			}
			res := evalResult(t, mustCompile(t, raw), identity("u"))
			if got := len(res["segments"].([]any)) == 1; got != tc.wantMatch {
				t.Errorf("$.environment.name IS_NOT_SET matched = %v, want %v", got, tc.wantMatch)
			}
		})
	}
}

// ---- §3.2 feature states ----

func TestFeatureKey(t *testing.T) {
	const uuid = "00000000-0000-4000-8000-000000000001"
	tests := []struct {
		name  string
		extra string
		want  string
	}{
		{"django_id absent", ``, uuid},
		{"django_id null", `,"django_id":null`, uuid},
		{"django_id zero", `,"django_id":0`, uuid},
		{"django_id set", `,"django_id":577621`, "577621"},
		{"top-level id is not used", `,"id":42`, uuid},
		{"top-level id is not used, django_id is", `,"id":42,"django_id":7`, "7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := mustContext(t, doc(fs(1, "f", true, `"v"`, tc.extra), "", ""))
			if got := ctx.Features[0].Key; got != tc.want {
				t.Errorf("key = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("segment override", func(t *testing.T) {
		ctx := mustContext(t, doc(fs(1, "f", true, `"v"`, ""), seg(5, "s", "p", "x", fs(1, "f", false, `"o"`, `,"django_id":81027`)), ""))
		if got := ctx.Segments[0].Overrides[0].Key; got != "81027" {
			t.Errorf("override key = %q", got)
		}
	})
}

func TestFeatureValuePassThrough(t *testing.T) {
	tests := []struct {
		name, literal string
		wantCtx       string // "" for nil (null)
	}{
		{"string", `"blue"`, `"blue"`},
		{"empty string", `""`, `""`},
		{"integer", `42`, `42`},
		{"negative integer", `-7`, `-7`},
		{"big integer", `123456789012345678901234567890`, `123456789012345678901234567890`},
		{"true", `true`, `true`},
		{"false", `false`, `false`},
		{"null", `null`, ``},
		{"escaped string", `"a\"b<c>\u00e9"`, `"a\"b<c>\u00e9"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := doc(fs(3, "f", true, tc.literal, ""), "", "")
			ctx := mustContext(t, raw)
			if got := string(ctx.Features[0].Value); got != tc.wantCtx {
				t.Errorf("context value = %s, want %s", got, tc.wantCtx)
			}
			if got := string(ctx.Features[0].Metadata); got != `{"id":3}` {
				t.Errorf("metadata = %s", got)
			}
			want := `[{"feature":{"id":3,"name":"f","type":"STANDARD"},"enabled":true,"feature_state_value":` + tc.literal + `}]`
			if got := string(mustCompile(t, raw).FlagsJSON(environment.ServerKey)); got != want {
				t.Errorf("FlagsJSON\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

func TestFeatureMetadata(t *testing.T) {
	for _, id := range []int{1, 15062, 2147483648} {
		ctx := mustContext(t, doc(fs(id, "f", true, `1`, ""), "", ""))
		if got, want := string(ctx.Features[0].Metadata), fmt.Sprintf(`{"id":%d}`, id); got != want {
			t.Errorf("metadata = %s, want %s", got, want)
		}
	}
}

func mvFS(name string, variants ...string) string {
	return fs(1, name, true, `"control"`, `,"multivariate_feature_state_values":[`+strings.Join(variants, ",")+`]`)
}

func mvValue(id, uuid, weight, value, key string) string {
	s := `{"mv_fs_value_uuid":"` + uuid + `","percentage_allocation":` + weight + `,"multivariate_feature_option":{"value":` + value
	if key != "" {
		s += `,"key":` + key
	}
	s += `}`
	if id != "" {
		s += `,"id":` + id
	}
	return s + `}`
}

func TestVariantWeightLiteral(t *testing.T) {
	tests := []struct {
		weight     string
		wantText   string
		wantWeight float64
		wantReason string
	}{
		{"30", "30", 30, ""},
		{"30.0", "30.0", 30, ""},
		{"54.54", "54.54", 54.54, ""},
		{"100", "100", 100, "SPLIT; weight=100"},
		{"100.0", "100.0", 100, "SPLIT; weight=100.0"},
		{"0", "0", 0, "DEFAULT"},
	}
	for _, tc := range tests {
		t.Run(tc.weight, func(t *testing.T) {
			raw := doc(mvFS("mv", mvValue("1", "42d5cdf9-8ec9-4b8d-a3ca-fd43c64d5f05", tc.weight, `"v1"`, `"k1"`)), "", "")
			v := mustContext(t, raw).Features[0].Variants[0]
			if v.WeightText != tc.wantText || v.Weight != tc.wantWeight {
				t.Errorf("weight = %v (%q), want %v (%q)", v.Weight, v.WeightText, tc.wantWeight, tc.wantText)
			}
			if tc.wantReason == "" {
				return
			}
			f := flagOf(t, evalResult(t, mustCompile(t, raw), identity("someone")), "mv")
			if f["reason"] != tc.wantReason {
				t.Errorf("reason = %v, want %s", f["reason"], tc.wantReason)
			}
		})
	}
}

func TestVariantValue(t *testing.T) {
	for _, lit := range []string{`"bar"`, `7`, `true`, `""`} {
		raw := doc(mvFS("mv", mvValue("1", "42d5cdf9-8ec9-4b8d-a3ca-fd43c64d5f05", "100", lit, "")), "", "")
		if got := string(mustContext(t, raw).Features[0].Variants[0].Value); got != lit {
			t.Errorf("variant value = %s, want %s", got, lit)
		}
		flags := mustCompile(t, raw).AppendIdentityFlags(nil, environment.ServerKey, identity("u"))
		if !bytes.HasSuffix(flags, []byte(`"feature_state_value":`+lit+`}]`)) {
			t.Errorf("identity flags = %s, want value %s", flags, lit)
		}
	}
}

func TestVariantPriority(t *testing.T) {
	const uuid = "42d5cdf9-8ec9-4b8d-a3ca-fd43c64d5f05"
	uuidInt := func(u string) string {
		b, _ := new(big.Int).SetString(strings.ReplaceAll(u, "-", ""), 16)
		return b.String()
	}
	tests := []struct {
		name, id, uuid, want string
	}{
		{"id set", "7", uuid, "7"},
		{"id absent: uuid as 128-bit integer", "", uuid, uuidInt(uuid)},
		{"id null", "null", uuid, uuidInt(uuid)},
		{"id zero", "0", uuid, uuidInt(uuid)},
		{"max uuid", "", "ffffffff-ffff-ffff-ffff-ffffffffffff", "340282366920938463463374607431768211455"},
		{"small uuid", "", "00000000-0000-0000-0000-000000000002", "2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := mustContext(t, doc(mvFS("mv", mvValue(tc.id, tc.uuid, "50", `"a"`, "")), "", ""))
			if got := ctx.Features[0].Variants[0].Priority; !samePriority(got, bigPriority(tc.want)) {
				t.Errorf("priority = %v, want %s", got.Text('f', 0), tc.want)
			}
		})
	}
}

func TestVariantOrdering(t *testing.T) {
	// Both variants take 100%, so whichever sorts first is always chosen.
	const (
		uuidLow  = "00000000-0000-0000-0000-000000000001"
		uuidHigh = "ff000000-0000-0000-0000-000000000000"
	)
	tests := []struct {
		name     string
		variants []string
		want     string
	}{
		{"uuid order differs from array order", []string{
			mvValue("", uuidHigh, "100", `"high"`, `"high"`), mvValue("", uuidLow, "100", `"low"`, `"low"`)}, "low"},
		{"uuid order equals array order", []string{
			mvValue("", uuidLow, "100", `"low"`, `"low"`), mvValue("", uuidHigh, "100", `"high"`, `"high"`)}, "low"},
		{"ids beat array order", []string{
			mvValue("20", uuidLow, "100", `"second"`, `"second"`), mvValue("10", uuidHigh, "100", `"first"`, `"first"`)}, "first"},
		{"id vs uuid integer", []string{
			mvValue("", uuidLow, "100", `"uuid"`, `"uuid"`), mvValue("5", uuidHigh, "100", `"id5"`, `"id5"`)}, "uuid"},
		{"zero id falls back to a huge uuid", []string{
			mvValue("0", uuidHigh, "100", `"uuid"`, `"uuid"`), mvValue("3", uuidLow, "100", `"id3"`, `"id3"`)}, "id3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := mustCompile(t, doc(mvFS("mv", tc.variants...), "", ""))
			for _, who := range []string{"a", "b", "c", "d"} {
				f := flagOf(t, evalResult(t, snap, identity(who)), "mv")
				if f["variant"] != tc.want || f["value"] != tc.want {
					t.Errorf("%s: variant %v value %v, want %s", who, f["variant"], f["value"], tc.want)
				}
			}
		})
	}
}

func TestVariantKey(t *testing.T) {
	tests := []struct {
		name, key   string // key: JSON literal, "" = absent
		wantCtx     *string
		wantVariant any
	}{
		{"absent", "", nil, nil},
		{"null", "null", nil, nil},
		{"empty string kept", `""`, strp(""), ""},
		{"named", `"variant_baz"`, strp("variant_baz"), "variant_baz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := doc(mvFS("mv", mvValue("1", "42d5cdf9-8ec9-4b8d-a3ca-fd43c64d5f05", "100", `"baz"`, tc.key)), "", "")
			if got := mustContext(t, raw).Features[0].Variants[0].Key; !reflect.DeepEqual(got, tc.wantCtx) {
				t.Errorf("context key = %v, want %v", got, tc.wantCtx)
			}
			f := flagOf(t, evalResult(t, mustCompile(t, raw), identity("u")), "mv")
			if f["variant"] != tc.wantVariant || f["value"] != "baz" {
				t.Errorf("variant = %#v value %v, want %#v", f["variant"], f["value"], tc.wantVariant)
			}
		})
	}
	t.Run("no variants", func(t *testing.T) {
		raw := doc(fs(1, "plain", true, `"x"`, `,"multivariate_feature_state_values":[]`), "", "")
		if v := mustContext(t, raw).Features[0].Variants; v != nil {
			t.Errorf("variants = %+v, want none", v)
		}
		if f := flagOf(t, evalResult(t, mustCompile(t, raw), identity("u")), "plain"); f["variant"] != nil || f["reason"] != "DEFAULT" {
			t.Errorf("flag = %v", f)
		}
	})
}

func TestFeatureSegmentPriority(t *testing.T) {
	tests := []struct {
		name, extra string
		want        *big.Float
	}{
		{"absent", ``, nil},
		{"null feature_segment", `,"feature_segment":null`, nil},
		{"empty feature_segment", `,"feature_segment":{}`, nil},
		{"null priority", `,"feature_segment":{"priority":null}`, nil},
		{"zero", `,"feature_segment":{"priority":0}`, bigPriority("0")},
		{"positive", `,"feature_segment":{"priority":5}`, bigPriority("5")},
		{"negative", `,"feature_segment":{"priority":-3}`, bigPriority("-3")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := mustContext(t, doc(fs(1, "f", true, `"v"`, ""), seg(1, "s", "p", "x", fs(1, "f", false, `"o"`, tc.extra)), ""))
			if got := ctx.Segments[0].Overrides[0].Priority; !samePriority(got, tc.want) {
				t.Errorf("priority = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSegmentOverridePriorityEvaluation(t *testing.T) {
	prio := func(p string) string { return `,"feature_segment":{"priority":` + p + `}` }
	tests := []struct {
		name       string
		pA, pB     string // priorities of the overrides in segments A and B (document order)
		wantWinner string
	}{
		{"lower priority wins", prio("1"), prio("0"), "B"},
		{"earlier wins ties", prio("2"), prio("2"), "A"},
		{"null priority is weakest", prio("null"), prio("100"), "B"},
		{"absent priority is weakest", "", prio("100"), "B"},
		{"both absent: earliest", "", "", "A"},
		{"negative", prio("-5"), prio("0"), "A"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			segs := seg(10, "A", "p", "x", fs(1, "f", true, `"A"`, tc.pA)) + "," + seg(20, "B", "p", "x", fs(1, "f", true, `"B"`, tc.pB))
			snap := mustCompile(t, doc(fs(1, "f", false, `"default"`, ""), segs, ""))
			res := evalResult(t, snap, identity("u", trait("p", engine.String("x"))))
			f := flagOf(t, res, "f")
			if f["value"] != tc.wantWinner || f["reason"] != "TARGETING_MATCH; segment="+tc.wantWinner {
				t.Errorf("flag = %v, want winner %s", f, tc.wantWinner)
			}
			if got := segmentNames(res); !reflect.DeepEqual(got, []string{"A", "B"}) {
				t.Errorf("segments = %v", got)
			}
		})
	}
}

// ---- §3.3 segments ----

func TestSegmentMapping(t *testing.T) {
	raw := doc(fs(1, "f", true, `"v"`, ""),
		`{"id":4267,"name":"regular_segment","rules":[{"type":"ALL","conditions":[],"rules":[`+
			`{"type":"ANY","conditions":[{"operator":"EQUAL","property_":"plan","value":"premium"},{"operator":"IS_SET","property_":"email","value":null}],"rules":[`+
			`{"type":"NONE","conditions":[{"operator":"PERCENTAGE_SPLIT","property_":null,"value":"50"},{"operator":"IN","value":"a,b"}],"rules":[]}]}]}],`+
			`"feature_states":[`+fs(1, "f", false, `"seg"`, `,"django_id":12,"feature_segment":{"priority":1}`)+`]},`+
			`{"id":4268,"name":"no_overrides","rules":[]},`+
			`{"id":4269,"name":"null_overrides","rules":[],"feature_states":null}`, "")
	ctx := mustContext(t, raw)
	if len(ctx.Segments) != 3 {
		t.Fatalf("segments = %d", len(ctx.Segments))
	}
	s := ctx.Segments[0]
	if s.MapKey != "4267" || s.Key != "4267" || s.Name != "regular_segment" {
		t.Errorf("segment = %q/%q/%q", s.MapKey, s.Key, s.Name)
	}
	if !reflect.DeepEqual(decodeJSON(t, s.Metadata), decodeJSON(t, []byte(`{"id":4267,"source":"api"}`))) {
		t.Errorf("metadata = %s", s.Metadata)
	}
	want := []engine.Rule{{Type: "ALL", Rules: []engine.Rule{{
		Type: "ANY",
		Conditions: []engine.Condition{
			{Property: "plan", Operator: "EQUAL", Value: engine.ConditionValue{Str: "premium"}},
			{Property: "email", Operator: "IS_SET", Value: engine.ConditionValue{}},
		},
		Rules: []engine.Rule{{Type: "NONE", Conditions: []engine.Condition{
			{Property: "", Operator: "PERCENTAGE_SPLIT", Value: engine.ConditionValue{Str: "50"}},
			{Property: "", Operator: "IN", Value: engine.ConditionValue{Str: "a,b"}},
		}}},
	}}}}
	if !reflect.DeepEqual(s.Rules, want) {
		t.Errorf("rules\n got: %+v\nwant: %+v", s.Rules, want)
	}
	if len(s.Overrides) != 1 || s.Overrides[0].Key != "12" || string(s.Overrides[0].Value) != `"seg"` ||
		!samePriority(s.Overrides[0].Priority, bigPriority("1")) || string(s.Overrides[0].Metadata) != `{"id":1}` {
		t.Errorf("overrides = %+v", s.Overrides)
	}
	for _, s := range ctx.Segments[1:] {
		if len(s.Overrides) != 0 || len(s.Rules) != 0 {
			t.Errorf("segment %s: overrides %+v rules %+v", s.Name, s.Overrides, s.Rules)
		}
		if !strings.Contains(string(s.Metadata), `"source":"api"`) {
			t.Errorf("segment %s metadata = %s", s.Name, s.Metadata)
		}
	}
}

func TestConditionNullValueIsEmptyString(t *testing.T) {
	// Old documents have "value": null for IS_SET / IS_NOT_SET.
	segs := `{"id":1,"name":"has_email","rules":[{"type":"ALL","conditions":[{"operator":"IS_SET","property_":"email","value":null}]}],"feature_states":[` +
		fs(1, "f", true, `"set"`, "") + `]},` +
		`{"id":2,"name":"no_email","rules":[{"type":"ALL","conditions":[{"operator":"IS_NOT_SET","property_":"email","value":null}]}]}`
	snap := mustCompile(t, doc(fs(1, "f", true, `"default"`, ""), segs, ""))
	tests := []struct {
		name      string
		id        *engine.Identity
		wantSegs  []string
		wantValue string
	}{
		{"with email", identity("u", trait("email", engine.String("a@b"))), []string{"has_email"}, "set"},
		{"without email", identity("u"), []string{"no_email"}, "default"},
		{"null email", identity("u", trait("email", engine.None())), []string{"no_email"}, "default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := evalResult(t, snap, tc.id)
			if got := segmentNames(res); !reflect.DeepEqual(got, tc.wantSegs) {
				t.Errorf("segments = %v, want %v", got, tc.wantSegs)
			}
			if v := flagOf(t, res, "f")["value"]; v != tc.wantValue {
				t.Errorf("value = %v, want %s", v, tc.wantValue)
			}
		})
	}
}

// ---- §3.3 identity overrides ----

func TestIdentityOverrideGrouping(t *testing.T) {
	fA := fs(1, "alpha", false, `"A"`, "")
	fB := fs(2, "beta", true, `"B"`, "")
	fB2 := fs(2, "beta", true, `"B2"`, "")
	features := fs(1, "alpha", true, `"a-default"`, "") + "," + fs(2, "beta", false, `"b-default"`, "")
	tests := []struct {
		name       string
		overrides  []string
		wantGroups [][]string // identifiers of each virtual segment, in order
	}{
		{"empty identity_features skipped", []string{override("nobody"), override("somebody", fA)}, [][]string{{"somebody"}}},
		{"all empty: no virtual segment", []string{override("x"), override("y")}, nil},
		{"identical sets grouped, whatever their order", []string{override("a", fA, fB), override("b", fB, fA)}, [][]string{{"a", "b"}}},
		{"different sets: first-appearance order", []string{
			override("a", fA, fB), override("b", fB2), override("c", fB, fA), override("d", fA)},
			[][]string{{"a", "c"}, {"b"}, {"d"}}},
		{"differing enabled is a different set", []string{
			override("a", fs(1, "alpha", true, `"A"`, "")), override("b", fs(1, "alpha", false, `"A"`, ""))},
			[][]string{{"a"}, {"b"}}},
		{"django_id and uuid do not split a group", []string{
			override("a", fs(1, "alpha", false, `"A"`, `,"django_id":5`)), override("b", fA)},
			[][]string{{"a", "b"}}},
		{"identifier with commas", []string{override("x,y", fA), override("z", fA)}, [][]string{{"x,y", "z"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := mustContext(t, doc(features, seg(4, "project_seg", "p", "x", ""), strings.Join(tc.overrides, ",")))
			virtual := ctx.Segments[1:]
			if ctx.Segments[0].Name != "project_seg" {
				t.Fatalf("project segments must come first: %+v", ctx.Segments[0])
			}
			var got [][]string
			keys := map[string]bool{ctx.Segments[0].MapKey: true}
			for _, s := range virtual {
				if s.Name != "identity_overrides" || s.Key != "" || string(s.Metadata) != `{"source":"identity_overrides"}` {
					t.Errorf("virtual segment = %+v", s)
				}
				if keys[s.MapKey] {
					t.Errorf("map key %q is not unique", s.MapKey)
				}
				keys[s.MapKey] = true
				c := s.Rules[0].Conditions[0]
				if !c.Value.IsList || c.Operator != "IN" || c.Property != "$.identity.identifier" {
					t.Errorf("condition = %+v", c)
				}
				got = append(got, c.Value.List)
			}
			if !reflect.DeepEqual(got, tc.wantGroups) {
				t.Errorf("groups = %q, want %q", got, tc.wantGroups)
			}
		})
	}
}

func TestIdentityOverrideEvaluation(t *testing.T) {
	features := fs(1, "alpha", true, `"a-default"`, "") + "," +
		fs(2, "mv", true, `"control"`, `,"multivariate_feature_state_values":[`+
			mvValue("1", "42d5cdf9-8ec9-4b8d-a3ca-fd43c64d5f05", "100", `"variant"`, `"k"`)+`]`)
	// A segment every identity with p=x matches, overriding both features as strongly as a segment can.
	segment := seg(4, "strong", "p", "x",
		fs(1, "alpha", true, `"segment"`, `,"feature_segment":{"priority":-1000000}`)+","+
			fs(2, "mv", true, `"segment-mv"`, `,"feature_segment":{"priority":-1000000}`))
	overrides := strings.Join([]string{
		override("grp1-a", fs(1, "alpha", false, `"ov1"`, "")),
		override("x,y", fs(1, "alpha", false, `"ov1"`, "")),
		override("grp2", fs(1, "alpha", true, `"ov2"`, ""),
			// Multivariate values of identity features are ignored: no split.
			fs(2, "mv", true, `"ov-mv"`, `,"django_id":99,"multivariate_feature_state_values":[`+
				mvValue("1", "42d5cdf9-8ec9-4b8d-a3ca-fd43c64d5f05", "100", `"ov-variant"`, `"ovk"`)+`]`)),
		override("grp1-b", fs(1, "alpha", false, `"ov1"`, "")),
	}, ",")
	snap := mustCompile(t, doc(features, segment, overrides))
	px := trait("p", engine.String("x"))
	const (
		io     = "TARGETING_MATCH; segment=identity_overrides"
		strong = "TARGETING_MATCH; segment=strong"
	)
	tests := []struct {
		name                 string
		id                   *engine.Identity
		alpha, alphaReason   string
		mv, mvReason         string
		mvVariant            any
		wantSegs             []string
		wantIdentityGroupIdx int // which virtual segment matched (0 or 1), -1 none
	}{
		{"group 1 member", identity("grp1-a"), "ov1", io, "variant", "SPLIT; weight=100", "k", []string{"identity_overrides"}, 0},
		{"group 1 last member", identity("grp1-b"), "ov1", io, "variant", "SPLIT; weight=100", "k", []string{"identity_overrides"}, 0},
		{"identifier with a comma", identity("x,y"), "ov1", io, "variant", "SPLIT; weight=100", "k", []string{"identity_overrides"}, 0},
		{"part of a comma identifier", identity("x"), "a-default", "DEFAULT", "variant", "SPLIT; weight=100", "k", []string{}, -1},
		{"group 2: identity mv override never splits", identity("grp2"), "ov2", io, "ov-mv", io, nil, []string{"identity_overrides"}, 1},
		{"identity override beats segment priority -1000000", identity("grp1-a", px), "ov1", io, "segment-mv", strong, nil,
			[]string{"strong", "identity_overrides"}, 0},
		{"segment only", identity("other", px), "segment", strong, "segment-mv", strong, nil, []string{"strong"}, -1},
		{"group 2 with segment", identity("grp2", px), "ov2", io, "ov-mv", io, nil, []string{"strong", "identity_overrides"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := evalResult(t, snap, tc.id)
			a, m := flagOf(t, res, "alpha"), flagOf(t, res, "mv")
			if a["value"] != tc.alpha || a["reason"] != tc.alphaReason {
				t.Errorf("alpha = %v, want %s / %s", a, tc.alpha, tc.alphaReason)
			}
			if m["value"] != tc.mv || m["reason"] != tc.mvReason || m["variant"] != tc.mvVariant {
				t.Errorf("mv = %v, want %s / %s / %v", m, tc.mv, tc.mvReason, tc.mvVariant)
			}
			if got := segmentNames(res); !reflect.DeepEqual(got, tc.wantSegs) {
				t.Errorf("segments = %v, want %v", got, tc.wantSegs)
			}
			var r engine.Result
			snap.Program.Evaluate(tc.id, &r)
			got := -1
			for _, si := range r.Segments {
				if snap.Program.Segment(si).Name == "identity_overrides" {
					got = si - 1 // one project segment precedes the virtual ones
				}
			}
			if got != tc.wantIdentityGroupIdx {
				t.Errorf("matched identity group %d, want %d", got, tc.wantIdentityGroupIdx)
			}
		})
	}
}

func TestIdentityOverrideNumericIdentifiers(t *testing.T) {
	// engine.md §2.4: $.identity.identifier is normalised like a trait, so
	// "007" compares as "7" and "1.5" as a float, which IN never matches.
	// That is reference behaviour: such identities get no identity override.
	raw := doc(fs(1, "f", true, `"default"`, ""), "", override("007", fs(1, "f", false, `"ov"`, ""))+","+
		override("1.5", fs(1, "f", false, `"ov"`, ""))+","+override("42", fs(1, "f", false, `"ov"`, "")))
	snap := mustCompile(t, raw)
	for identifier, want := range map[string]string{"007": "default", "1.5": "default", "42": "ov", "7": "default"} {
		if got := flagOf(t, evalResult(t, snap, identity(identifier)), "f")["value"]; got != want {
			t.Errorf("%s: value %v, want %s", identifier, got, want)
		}
	}
}
