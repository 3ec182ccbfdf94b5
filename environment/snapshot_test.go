package environment_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
)

// ---- filtering (api.md §2.8) ----

// filterDoc has an enabled feature, a disabled one and a server-key-only one
// (id 3), plus a segment that disables "on" for identities with p=x.
func filterDoc(envHide, projectHide string) []byte {
	env := ""
	if envHide != "" {
		env = `"hide_disabled_flags":` + envHide + `,`
	}
	return []byte(`{"api_key":"k",` + env + `"project":{"hide_disabled_flags":` + projectHide + `,"server_key_only_feature_ids":[3],"segments":[` +
		seg(1, "s", "p", "x", fs(1, "on", false, `"seg-off"`, "")) + `]},"feature_states":[` +
		fs(1, "on", true, `"1"`, "") + "," + fs(2, "off", false, `"2"`, "") + "," + fs(3, "secret", true, `"3"`, "") + `]}`)
}

func flagNames(t *testing.T, body []byte) []string {
	t.Helper()
	names := []string{}
	for _, f := range decodeJSON(t, body).([]any) {
		names = append(names, f.(map[string]any)["feature"].(map[string]any)["name"].(string))
	}
	return names
}

func TestEffectiveHideDisabledFlags(t *testing.T) {
	tests := []struct {
		env, project string
		want         bool
	}{
		{"", "false", false},
		{"", "true", true},
		{"null", "false", false},
		{"null", "true", true},
		{"true", "false", true},
		{"false", "true", false},
		{"true", "true", true},
		{"false", "false", false},
	}
	for _, tc := range tests {
		t.Run("env="+tc.env+",project="+tc.project, func(t *testing.T) {
			raw := filterDoc(tc.env, tc.project)
			if got := mustParse(t, raw).EffectiveHideDisabledFlags(); got != tc.want {
				t.Errorf("EffectiveHideDisabledFlags = %v, want %v", got, tc.want)
			}
			snap := mustCompile(t, raw)

			wantClient := []string{"on", "off"}
			wantClientSeg := []string{"on", "off"} // identity p=x: "on" is disabled by the segment
			if tc.want {
				wantClient = []string{"on"}
				wantClientSeg = []string{}
			}
			all := []string{"on", "off", "secret"}
			px := identity("u", trait("p", engine.String("x")))
			for _, c := range []struct {
				what string
				body []byte
				want []string
			}{
				{"client /flags/", snap.FlagsJSON(environment.ClientKey), wantClient},
				{"server /flags/", snap.FlagsJSON(environment.ServerKey), all},
				{"client identity", snap.AppendIdentityFlags(nil, environment.ClientKey, identity("u")), wantClient},
				{"server identity", snap.AppendIdentityFlags(nil, environment.ServerKey, identity("u")), all},
				{"client identity disabled by segment", snap.AppendIdentityFlags(nil, environment.ClientKey, px), wantClientSeg},
				{"server identity disabled by segment", snap.AppendIdentityFlags(nil, environment.ServerKey, px), all},
			} {
				if got := flagNames(t, c.body); !reflect.DeepEqual(got, c.want) {
					t.Errorf("%s: %v, want %v", c.what, got, c.want)
				}
			}

			for _, name := range all {
				_, clientOK := snap.FlagJSON(environment.ClientKey, name)
				_, serverOK := snap.FlagJSON(environment.ServerKey, name)
				wantClientOK := name == "on" || (name == "off" && !tc.want)
				if clientOK != wantClientOK || !serverOK {
					t.Errorf("FlagJSON(%s): client %v (want %v), server %v (want true)", name, clientOK, wantClientOK, serverOK)
				}
			}
			if _, ok := snap.FlagJSON(environment.ServerKey, "missing"); ok {
				t.Error("FlagJSON found a feature that does not exist")
			}
		})
	}
}

func TestServerKeyOnlyFeatureIDs(t *testing.T) {
	tests := []struct {
		name, ids  string
		wantClient []string
	}{
		{"absent", ``, []string{"a", "b", "c"}},
		{"null", `,"server_key_only_feature_ids":null`, []string{"a", "b", "c"}},
		{"empty", `,"server_key_only_feature_ids":[]`, []string{"a", "b", "c"}},
		{"one", `,"server_key_only_feature_ids":[2]`, []string{"a", "c"}},
		{"two and an unknown id", `,"server_key_only_feature_ids":[1,3,99]`, []string{"b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(`{"api_key":"k","project":{"segments":[]` + tc.ids + `},"feature_states":[` +
				fs(1, "a", true, "1", "") + "," + fs(2, "b", true, "2", "") + "," + fs(3, "c", true, "3", "") + `]}`)
			snap := mustCompile(t, raw)
			if got := flagNames(t, snap.FlagsJSON(environment.ClientKey)); !reflect.DeepEqual(got, tc.wantClient) {
				t.Errorf("client = %v, want %v", got, tc.wantClient)
			}
			if got := flagNames(t, snap.AppendIdentityFlags(nil, environment.ClientKey, identity("u"))); !reflect.DeepEqual(got, tc.wantClient) {
				t.Errorf("client identity = %v, want %v", got, tc.wantClient)
			}
			if got := flagNames(t, snap.FlagsJSON(environment.ServerKey)); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
				t.Errorf("server = %v", got)
			}
		})
	}
}

// ---- response shapes ----

func TestFlagResponseShape(t *testing.T) {
	tests := []struct {
		name, feature, rest, want string
	}{
		{"api.md example", `{"id":1,"name":"some_feature","type":"STANDARD"}`, `"enabled":true,"feature_state_value":"some-value"`,
			`{"feature":{"id":1,"name":"some_feature","type":"STANDARD"},"enabled":true,"feature_state_value":"some-value"}`},
		{"missing type", `{"id":42,"name":"show_banner"}`, `"enabled":true,"feature_state_value":"blue"`,
			`{"feature":{"id":42,"name":"show_banner","type":"STANDARD"},"enabled":true,"feature_state_value":"blue"}`},
		{"empty type", `{"id":42,"name":"show_banner","type":""}`, `"enabled":false,"feature_state_value":null`,
			`{"feature":{"id":42,"name":"show_banner","type":"STANDARD"},"enabled":false,"feature_state_value":null}`},
		{"multivariate, extra feature fields", `{"id":7,"name":"mv","type":"MULTIVARIATE","created_date":"x","project":1}`, `"enabled":true,"feature_state_value":12`,
			`{"feature":{"id":7,"name":"mv","type":"MULTIVARIATE"},"enabled":true,"feature_state_value":12}`},
		{"legacy type", `{"id":7,"name":"cfg","type":"CONFIG"}`, `"enabled":true,"feature_state_value":false`,
			`{"feature":{"id":7,"name":"cfg","type":"CONFIG"},"enabled":true,"feature_state_value":false}`},
		{"name escaped", `{"id":8,"name":"a\"<b>&"}`, `"enabled":true`,
			`{"feature":{"id":8,"name":"a\"\u003cb\u003e\u0026","type":"STANDARD"},"enabled":true,"feature_state_value":null}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(`{"api_key":"k","feature_states":[{"feature":` + tc.feature + `,"featurestate_uuid":"u",` + tc.rest + `}]}`)
			snap := mustCompile(t, raw)
			if got := string(snap.FlagsJSON(environment.ServerKey)); got != "["+tc.want+"]" {
				t.Errorf("FlagsJSON\n got: %s\nwant: [%s]", got, tc.want)
			}
			name := mustParse(t, raw).FeatureStates[0].Feature.Name
			if got, ok := snap.FlagJSON(environment.ClientKey, name); !ok || string(got) != tc.want {
				t.Errorf("FlagJSON = %s %v\nwant %s", got, ok, tc.want)
			}
			if got := string(snap.AppendIdentityFlags(nil, environment.ClientKey, identity("u"))); got != "["+tc.want+"]" {
				t.Errorf("AppendIdentityFlags\n got: %s\nwant: [%s]", got, tc.want)
			}
		})
	}
}

func TestFlagsJSONMatchesFixture(t *testing.T) {
	// testdata/fixtures/environment-documents/flags.json is core's /flags/
	// response for environment.json. The proxy shape is core's item reduced
	// to feature {id, name, type}, enabled and feature_state_value.
	snap := mustCompile(t, readFixture(t, "environment.json"))
	for _, item := range decodeJSON(t, readFixture(t, "flags.json")).([]any) {
		c := item.(map[string]any)
		f := c["feature"].(map[string]any)
		want, _ := json.Marshal(map[string]any{
			"feature":             map[string]any{"id": f["id"], "name": f["name"], "type": f["type"]},
			"enabled":             c["enabled"],
			"feature_state_value": c["feature_state_value"],
		})
		got, ok := snap.FlagJSON(environment.ClientKey, f["name"].(string))
		if !ok {
			t.Fatalf("FlagJSON(%v) not found", f["name"])
		}
		assertJSONEqual(t, got, string(want))
	}
}

// ---- updated_at ----

func TestUpdatedAt(t *testing.T) {
	tests := []struct {
		updatedAt, wantHeader, wantLastModified string
	}{
		{"2025-11-16T13:28:31.244331+00:00", "1763299711.244331", "Sun, 16 Nov 2025 13:28:31 GMT"},
		{"2025-11-16T13:28:31.244331+02:00", "1763292511.244331", "Sun, 16 Nov 2025 11:28:31 GMT"},
		{"2025-11-16T13:28:31.244331-05:30", "1763319511.244331", "Sun, 16 Nov 2025 18:58:31 GMT"},
		{"2025-11-16T13:28:31.244331Z", "1763299711.244331", "Sun, 16 Nov 2025 13:28:31 GMT"},
		{"2025-11-16T13:28:31.244331", "1763299711.244331", "Sun, 16 Nov 2025 13:28:31 GMT"},
		{"2025-11-16T13:28:31Z", "1763299711.000000", "Sun, 16 Nov 2025 13:28:31 GMT"},
		{"2023-07-14 16:12:00.000000", "1689351120.000000", "Fri, 14 Jul 2023 16:12:00 GMT"},
		{"not a date", "", ""},
		{"2025-13-45T00:00:00Z", "", ""},
		{"", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.updatedAt, func(t *testing.T) {
			b, _ := json.Marshal(tc.updatedAt)
			snap := mustCompile(t, []byte(`{"api_key":"k","updated_at":`+string(b)+`}`))
			if headerValue(t, snap.UpdatedAtHeader) != tc.wantHeader || headerValue(t, snap.LastModified) != tc.wantLastModified {
				t.Errorf("header %q, Last-Modified %q; want %q, %q", snap.UpdatedAtHeader, snap.LastModified, tc.wantHeader, tc.wantLastModified)
			}
			if got := environment.UpdatedAtHeader(snap.UpdatedAt); got != tc.wantHeader {
				t.Errorf("UpdatedAtHeader = %q", got)
			}
			if tc.wantHeader != "" && snap.UpdatedAt.Location().String() != "UTC" {
				t.Errorf("UpdatedAt not in UTC: %v", snap.UpdatedAt)
			}
		})
	}
	t.Run("null", func(t *testing.T) {
		snap := mustCompile(t, []byte(`{"api_key":"k","updated_at":null}`))
		if headerValue(t, snap.UpdatedAtHeader) != "" || headerValue(t, snap.LastModified) != "" || !snap.UpdatedAt.IsZero() {
			t.Errorf("got %q %q %v", snap.UpdatedAtHeader, snap.LastModified, snap.UpdatedAt)
		}
	})
}

// ---- the served document ----

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSetDocumentJSON(t *testing.T) {
	secrets := []string{"amplitude_config", "heap_config", "mixpanel_config", "rudderstack_config", "segment_config",
		"webhook_config", "dynatrace_config", "onboarding_pending", "compressed", "environment_id", "document_key", "environment_api_key"}

	t.Run("fixtures are served unchanged", func(t *testing.T) {
		for _, name := range []string{"environment.json", "offline-environment.json"} {
			raw := readFixture(t, name)
			snap := mustCompile(t, raw)
			if err := snap.SetDocumentJSON(raw); err != nil {
				t.Fatal(err)
			}
			// environment.json's identity override carries an
			// "environment_api_key" member (part of the SDK document, not a
			// secret), so it may be re-encoded; its content must not change.
			assertJSONEqual(t, snap.Document.JSON, string(raw))
			if name == "offline-environment.json" && !bytes.Equal(snap.Document.JSON, raw) {
				t.Errorf("%s: a document without secret fields must be served byte for byte", name)
			}
			assertPreparedBody(t, name+" document", &snap.Document)
			for kind := environment.ClientKey; kind <= environment.ServerKey; kind++ {
				assertPreparedBody(t, name+" flags", snap.Flags(kind))
				if !bytes.Equal(snap.Flags(kind).JSON, snap.FlagsJSON(kind)) {
					t.Errorf("%s: Flags and FlagsJSON differ", name)
				}
			}
			if snap.SourceSum != sha256.Sum256(raw) {
				t.Errorf("%s: SourceSum", name)
			}
		}
	})

	tests := []struct {
		name, raw, want string
	}{
		{
			name: "every secret field",
			raw: `{"api_key":"k","name":"n",` + func() string {
				var b strings.Builder
				for _, s := range secrets {
					b.WriteString(`"` + s + `":{"secret":"s3cr3t"},`)
				}
				return b.String()
			}() + `"feature_states":[]}`,
			want: `{"api_key":"k","name":"n","feature_states":[]}`,
		},
		{
			name: "webhook secret among real fields",
			raw: `{"api_key":"k","webhook_config":{"url":"https://h","secret":"s3cr3t"},"project":{"id":1,"segments":[]},` +
				`"feature_states":[{"feature":{"id":1,"name":"f"},"enabled":true,"feature_state_value":"<b>&"}]}`,
			want: `{"api_key":"k","project":{"id":1,"segments":[]},` +
				`"feature_states":[{"feature":{"id":1,"name":"f"},"enabled":true,"feature_state_value":"<b>&"}]}`,
		},
		{
			name: "null secret",
			raw:  `{"api_key":"k","segment_config":null,"amplitude_config":{"api_key":"a"}}`,
			want: `{"api_key":"k"}`,
		},
		{
			name: "system_traits inside identity_overrides",
			raw: `{"api_key":"k","identity_overrides":[{"identifier":"a","system_traits":[{"k":"secret"}],"identity_features":[]},` +
				`{"identifier":"b","identity_features":[]}]}`,
			want: `{"api_key":"k","identity_overrides":[{"identifier":"a","identity_features":[]},{"identifier":"b","identity_features":[]}]}`,
		},
		{
			name: "secret names as values are kept",
			raw:  `{"api_key":"k","name":"webhook_config","project":{"name":"system_traits"}}`,
			want: `{"api_key":"k","name":"webhook_config","project":{"name":"system_traits"}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := mustCompile(t, []byte(tc.raw))
			if err := snap.SetDocumentJSON([]byte(tc.raw)); err != nil {
				t.Fatal(err)
			}
			assertJSONEqual(t, snap.Document.JSON, tc.want)
			for _, s := range append(secrets, "system_traits", "s3cr3t") {
				if bytes.Contains(snap.Document.JSON, []byte(`"`+s+`":`)) || bytes.Contains(snap.Document.JSON, []byte("s3cr3t")) {
					t.Errorf("%s served: %s", s, snap.Document.JSON)
				}
			}
			assertPreparedBody(t, "document", &snap.Document)
			if snap.SourceSum != sha256.Sum256([]byte(tc.raw)) {
				t.Error("SourceSum is not the hash of the received bytes")
			}
		})
	}

	t.Run("fixture with secrets added keeps everything else", func(t *testing.T) {
		raw := readFixture(t, "environment.json")
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		withSecrets := map[string]any{}
		for k, v := range m {
			withSecrets[k] = v
		}
		withSecrets["webhook_config"] = map[string]any{"url": "https://example.com", "secret": "s3cr3t"}
		withSecrets["mixpanel_config"] = map[string]any{"api_key": "s3cr3t"}
		dirty, _ := json.Marshal(withSecrets)
		snap := mustCompile(t, dirty)
		if err := snap.SetDocumentJSON(dirty); err != nil {
			t.Fatal(err)
		}
		assertJSONEqual(t, snap.Document.JSON, string(raw))
	})
}

// ---- Parse ----

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name           string
		raw            string
		wantNotDoc     bool
		wantErrContain string
	}{
		{"invalid JSON", `{"api_key":`, false, "invalid JSON"},
		{"empty input", ``, false, "invalid JSON"},
		{"trailing data", `{"api_key":"k"} {}`, false, "invalid JSON"},
		{"missing api_key", `{"name":"n","feature_states":[]}`, true, "api_key"},
		{"empty api_key", `{"api_key":""}`, true, "api_key"},
		{"null document", `null`, true, "api_key"},
		{"a list", `[{"api_key":"k"}]`, true, ""},
		{"a string", `"k"`, true, ""},
		{"api_key is a number", `{"api_key":5}`, true, "api_key"},
		{"feature_states is an object", `{"api_key":"k","feature_states":{"a":1}}`, true, "feature_states"},
		{"project is a list", `{"api_key":"k","project":[]}`, true, "project"},
		{"segments is an object", `{"api_key":"k","project":{"segments":{}}}`, true, "segments"},
		{"enabled is a string", `{"api_key":"k","feature_states":[{"feature":{"id":1,"name":"f"},"enabled":"yes"}]}`, true, "enabled"},
		{"feature name missing", `{"api_key":"k","feature_states":[{"feature":{"id":1},"enabled":true}]}`, true, "feature.name"},
		{"segment override name missing", `{"api_key":"k","project":{"segments":[{"id":1,"name":"s","rules":[],"feature_states":[{"feature":{"id":1}}]}]}}`, true, "feature.name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := environment.Parse([]byte(tc.raw))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", d)
			}
			if got := errors.Is(err, environment.ErrNotDocument); got != tc.wantNotDoc {
				t.Errorf("errors.Is(ErrNotDocument) = %v, want %v (%v)", got, tc.wantNotDoc, err)
			}
			if !strings.Contains(err.Error(), tc.wantErrContain) {
				t.Errorf("error %q does not mention %q", err, tc.wantErrContain)
			}
		})
	}
}

func TestParseIgnoresUnknownAndLegacyFields(t *testing.T) {
	// environment.json carries segment_overrides, a top-level feature state
	// "id", and an override updated_at in "2023-07-14 16:12:00.000000" form.
	raw := readFixture(t, "environment.json")
	if !bytes.Contains(raw, []byte(`"segment_overrides"`)) || !bytes.Contains(raw, []byte(`"2023-07-14 16:12:00.000000"`)) {
		t.Fatal("fixture changed")
	}
	mustParse(t, raw)
	tests := []string{
		`{"api_key":"k","$schema":"x","future_field":{"a":[1,2]},"segment_overrides":[{"x":1}]}`,
		`{"api_key":"k","feature_states":[{"feature":{"id":1,"name":"f","description":null},"enabled":true,` +
			`"feature_state_value":1,"segment_id":null,"environment":1,"identity":null,"feature_segment":null,"unknown":[]}]}`,
		`{"api_key":"k","identity_overrides":[{"identifier":"a","updated_at":"2023-07-14 16:12:00.000000","identity_uuid":"x",` +
			`"composite_key":"k_a","identity_traits":[],"django_id":null,"identity_features":[]}]}`,
		`{"api_key":"k","project":{"organisation":{"id":1,"name":"o"},"enable_realtime_updates":true,"segments":[` +
			`{"id":1,"name":"s","rules":[],"feature_states":[],"extra":1}]}}`,
	}
	for _, raw := range tests {
		d := mustParse(t, []byte(raw))
		if _, err := environment.Compile(d, nil); err != nil {
			t.Errorf("Compile(%s): %v", raw, err)
		}
	}
}

func TestParseWorkedExampleFields(t *testing.T) {
	d := mustParse(t, readFixture(t, "environment.json"))
	if d.APIKey != "B62qaMZNwfiqT76p38ggrQ" || d.Name == nil || *d.Name != "Test environment" || d.ID.String() != "1" ||
		len(d.FeatureStates) != 2 || len(d.Project.Segments) != 1 || len(d.IdentityOverrides) != 1 ||
		d.IdentityOverrides[0].Identifier != "overridden-id" || d.EffectiveHideDisabledFlags() {
		t.Errorf("document = %+v", d)
	}
	// offline-environment.json has no name, no updated_at and no identity_overrides.
	off := mustParse(t, readFixture(t, "offline-environment.json"))
	if off.Name != nil || off.UpdatedAt != "" || off.IdentityOverrides != nil {
		t.Errorf("offline document = %+v", off)
	}
	snap := mustCompile(t, readFixture(t, "offline-environment.json"))
	if headerValue(t, snap.UpdatedAtHeader) != "" || headerValue(t, snap.LastModified) != "" {
		t.Errorf("offline updated_at = %q %q", snap.UpdatedAtHeader, snap.LastModified)
	}
	res := evalResult(t, snap, identity("u1", trait("age", engine.Int(30))))
	if f := flagOf(t, res, "some_feature"); f["value"] != "segment_override" {
		t.Errorf("offline u1 = %v", f)
	}
}

func TestSnapshotSettings(t *testing.T) {
	tests := []struct {
		members                 string
		wantHide, wantAllowCTra bool
	}{
		{``, false, true},
		{`,"hide_sensitive_data":true`, true, true},
		{`,"allow_client_traits":false`, false, false},
		{`,"allow_client_traits":null,"hide_sensitive_data":null`, false, true},
	}
	for _, tc := range tests {
		snap := mustCompile(t, []byte(`{"api_key":"k"`+tc.members+`}`))
		if snap.HideSensitiveData() != tc.wantHide || snap.AllowClientTraits() != tc.wantAllowCTra {
			t.Errorf("%s: hide %v allow %v", tc.members, snap.HideSensitiveData(), snap.AllowClientTraits())
		}
	}
}

func TestSanitizeEscapedSecretKeys(t *testing.T) {
	raw := []byte(`{"api_key":"k","webhook\u005fconfig":{"secret":"s3cr3t"},"identity_overrides":[{"identifier":"a","system\u005ftraits":{"x":1},"identity_features":[]}]}`)
	doc, err := environment.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := environment.Compile(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.SetDocumentJSON(raw); err != nil {
		t.Fatal(err)
	}
	for _, leaked := range []string{"s3cr3t", "system_traits", `system\u005ftraits`} {
		if strings.Contains(string(snap.Document.JSON), leaked) {
			t.Errorf("served document still holds %q: %s", leaked, snap.Document.JSON)
		}
	}
}

// assertPreparedBody checks a Body's invariants: gzip form present exactly
// from GzipMinBytes on and decompressing to the JSON, lengths matching.
func assertPreparedBody(t *testing.T, what string, b *environment.Body) {
	t.Helper()
	if want := strconv.Itoa(len(b.JSON)); len(b.JSONLength) != 1 || b.JSONLength[0] != want {
		t.Errorf("%s: JSONLength %q, want [%s]", what, b.JSONLength, want)
	}
	if len(b.JSON) < environment.GzipMinBytes {
		if b.Gzip != nil || b.GzipLength != nil {
			t.Errorf("%s: %d bytes compressed, below GzipMinBytes", what, len(b.JSON))
		}
		return
	}
	if !bytes.Equal(gunzip(t, b.Gzip), b.JSON) {
		t.Errorf("%s: gzip form does not decompress to the JSON", what)
	}
	if want := strconv.Itoa(len(b.Gzip)); len(b.GzipLength) != 1 || b.GzipLength[0] != want {
		t.Errorf("%s: GzipLength %q, want [%s]", what, b.GzipLength, want)
	}
}

// headerValue is the single value of a prepared header, "" when it is
// absent (nil).
func headerValue(t *testing.T, v []string) string {
	t.Helper()
	switch {
	case v == nil:
		return ""
	case len(v) != 1 || v[0] == "":
		t.Fatalf("header values %q: want nil or one non-empty value", v)
	}
	return v[0]
}
