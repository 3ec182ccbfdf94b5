package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/bench/workload"
	"github.com/fledge-flags/fledge/internal/fakeapi"
)

// env is one environment served by a test proxy: its keys, the bytes
// upstream serves, and the parsed document expectations are derived from.
type env struct {
	name   string
	keys   keyPair
	raw    []byte
	doc    *document
	secret []string // strings of fields that must never be served
}

// key is the environment's server-side key if server, else its client key.
func (e env) key(server bool) string {
	if server {
		return e.keys.Server
	}
	return e.keys.Client
}

// exampleEnv is examples/environment.json under its example keys.
func exampleEnv(t *testing.T) env {
	raw := readRepoFile(t, "examples/environment.json")
	return env{
		name: "example",
		keys: keyPair{"ser.exampleServerKey00001", "exampleClientKey0000001"},
		raw:  raw,
		doc:  parseDocument(t, raw),
	}
}

// workloadEnv is a benchmark workload document.
func workloadEnv(t *testing.T, p workload.Profile, version int) env {
	raw := workload.Document(p, version)
	return env{
		name: p.Name,
		keys: keyPair{workload.ServerKey(p), workload.ClientKey(p)},
		raw:  raw,
		doc:  parseDocument(t, raw),
	}
}

func boolPtr(b bool) *bool { return &b }

// filterCases are small documents for client-key filtering (api.md §2.8):
// two public and two server-key-only features, one enabled and one disabled
// each, under each combination of the hide-disabled settings. clientSees is
// worked out by hand from the rule "environment setting if set, else the
// project's". Names, ids and document order agree, so no ordering choice of
// Fledge's can matter.
var filterCases = []struct {
	name        string
	envHide     *bool
	projectHide bool
	clientSees  []string
}{
	{"env unset, project shows disabled", nil, false, []string{"a_public_on", "b_public_off"}},
	{"env unset, project hides disabled", nil, true, []string{"a_public_on"}},
	{"env shows disabled over project", boolPtr(false), true, []string{"a_public_on", "b_public_off"}},
	{"env hides disabled over project", boolPtr(true), false, []string{"a_public_on"}},
}

func filterEnv(t *testing.T, i int) env {
	fc := filterCases[i]
	keys := keyPair{fmt.Sprintf("ser.filterServerKey%04d", i), fmt.Sprintf("filterClientKey%04d", i)}
	d := newDocument(keys.Client,
		feature(1, "a_public_on", true, "a"),
		feature(2, "b_public_off", false, "b"),
		feature(3, "c_secret_on", true, 7),
		feature(4, "d_secret_off", false, nil),
	)
	d.HideDisabledFlags = fc.envHide
	d.Project.HideDisabledFlags = fc.projectHide
	d.Project.ServerKeyOnlyFeatureIDs = []int64{3, 4}
	raw := marshal(t, d)
	return env{name: fc.name, keys: keys, raw: raw, doc: parseDocument(t, raw)}
}

// secretsEnv is a document carrying fields that hold third-party keys and
// webhook secrets in Flagsmith's store (api.md §3): they must not be served.
func secretsEnv(t *testing.T) env {
	keys := keyPair{"ser.secretsServerKey0001", "secretsClientKey0000001"}
	d := newDocument(keys.Client, feature(1, "plain", true, "x"))
	d.IdentityOverrides = []identityOverride{{Identifier: "someone",
		IdentityFeatures: []featureState{override(d.FeatureStates[0], false, "y")}}}
	var top map[string]any
	if err := json.Unmarshal(marshal(t, d), &top); err != nil {
		t.Fatal(err)
	}
	top["webhook_config"] = map[string]any{"url": "https://hooks.example.com/e2e", "secret": "whsec-e2e-9f1c"}
	top["amplitude_config"] = map[string]any{"api_key": "amp-e2e-4b7d", "base_url": nil}
	top["segment_config"] = map[string]any{"api_key": "seg-e2e-2a9e", "base_url": nil}
	top["identity_overrides"].([]any)[0].(map[string]any)["system_traits"] = []any{"sys-e2e-5c3a"}
	raw := marshal(t, top)
	return env{name: "secrets", keys: keys, raw: raw, doc: parseDocument(t, raw),
		secret: []string{"whsec-e2e-9f1c", "amp-e2e-4b7d", "seg-e2e-2a9e", "sys-e2e-5c3a", "webhook_config", "system_traits"}}
}

// serve registers every environment with api and returns their key pairs.
func serve(api *fakeapi.Server, envs ...env) []keyPair {
	var pairs []keyPair
	for _, e := range envs {
		api.SetDocument(e.keys.Server, e.raw)
		pairs = append(pairs, e.keys)
	}
	return pairs
}

// maxBodyBytes is server.max_body_bytes of the endpoint tests' proxy.
const maxBodyBytes = 8192

// TestEndpoints checks every SDK endpoint and error of api.md §1.5 and §2 as
// Fledge implements them (README "Endpoints"), against one proxy serving
// several environments. Expected bodies are derived from the documents and
// compared byte for byte.
func TestEndpoints(t *testing.T) {
	t.Parallel()
	example := exampleEnv(t)
	p1 := workloadEnv(t, workload.P1, 1)
	secrets := secretsEnv(t)
	envs := []env{example, p1, secrets}
	var filters []env
	for i := range filterCases {
		filters = append(filters, filterEnv(t, i))
	}
	envs = append(envs, filters...)

	api := fakeapi.New()
	t.Cleanup(api.Close)
	cfg := baseConfig(api, serve(api, envs...)...)
	cfg["api_poll_frequency_seconds"] = 1
	cfg.section("server")["max_body_bytes"] = maxBodyBytes
	cfg.section("logging")["enable_access_log"] = false // hundreds of requests
	px := startProxy(t, cfg)

	t.Run("flags list", func(t *testing.T) {
		t.Parallel()
		for _, e := range []env{example, p1} {
			for _, server := range []bool{false, true} {
				r := px.get(t, "/api/v1/flags/", e.key(server))
				assertOK(t, r, e)
				assertFlagsBody(t, r.body, e.doc.envFlags(t, server))
			}
		}
		// The workload hides two features from client keys.
		if got, all := len(p1.doc.envFlags(t, false)), len(p1.doc.FeatureStates); got != all-2 {
			t.Fatalf("P1 should have 2 server-key-only features; client sees %d of %d", got, all)
		}
	})

	t.Run("client and server key filtering", func(t *testing.T) {
		t.Parallel()
		for i, e := range filters {
			fc := filterCases[i]
			var clientWant, serverWant [][]byte
			for _, fs := range e.doc.FeatureStates {
				item := flagItem(t, fs.Feature, fs.Enabled, fs.Value)
				serverWant = append(serverWant, item)
				if slices.Contains(fc.clientSees, fs.Feature.Name) {
					clientWant = append(clientWant, item)
				}
			}
			t.Run(fc.name, func(t *testing.T) {
				r := px.get(t, "/api/v1/flags/", e.keys.Client)
				assertOK(t, r, e)
				assertFlagsBody(t, r.body, clientWant)
				// Server keys see every flag, as with Flagsmith's edge proxy.
				r = px.get(t, "/api/v1/flags/", e.keys.Server)
				assertOK(t, r, e)
				assertFlagsBody(t, r.body, serverWant)
				// Identities are filtered the same way (no overrides here).
				body := []byte(`{"identifier":"filter-user","traits":[]}`)
				r = px.post(t, "/api/v1/identities/", e.keys.Client, body)
				assertOK(t, r, e)
				assertIdentityBody(t, r.body, "filter-user", clientWant, "[]")
				r = px.post(t, "/api/v1/identities/", e.keys.Server, body)
				assertOK(t, r, e)
				assertIdentityBody(t, r.body, "filter-user", serverWant, "[]")
			})
		}
	})

	t.Run("feature query", func(t *testing.T) {
		t.Parallel()
		for i, e := range filters {
			for _, fs := range e.doc.FeatureStates {
				for _, server := range []bool{false, true} {
					r := px.get(t, "/api/v1/flags/?feature="+url.QueryEscape(fs.Feature.Name), e.key(server))
					if server || slices.Contains(filterCases[i].clientSees, fs.Feature.Name) {
						assertOK(t, r, e)
						assertBody(t, r, string(flagItem(t, fs.Feature, fs.Enabled, fs.Value)))
					} else {
						// A feature the key may not see does not exist for it.
						assertError(t, r, http.StatusNotFound,
							`{"status":"not_found","message":"feature '`+fs.Feature.Name+`' not found"}`)
					}
				}
			}
		}
		r := px.get(t, "/api/v1/flags/?feature=no_such_feature", example.keys.Client)
		assertError(t, r, http.StatusNotFound, `{"status":"not_found","message":"feature 'no_such_feature' not found"}`)
		r = px.get(t, "/api/v1/flags?feature=max_upload_mb", example.keys.Client)
		assertOK(t, r, example)
		assertBody(t, r, `{"feature":{"id":3,"name":"max_upload_mb","type":"STANDARD"},"enabled":true,"feature_state_value":50}`)
	})

	t.Run("paths without trailing slash", func(t *testing.T) {
		t.Parallel()
		key, ser := example.keys.Client, example.keys.Server
		identify := []byte(`{"identifier":"user-plain","traits":[{"trait_key":"plan","trait_value":"beta"}]}`)
		for _, tc := range []struct {
			method, path, key string
			body              []byte
		}{
			{http.MethodGet, "/api/v1/flags", key, nil},
			{http.MethodGet, "/api/v1/identities?identifier=qa-alice", key, nil},
			{http.MethodPost, "/api/v1/identities", key, identify},
			{http.MethodGet, "/api/v1/environment-document", ser, nil},
			{http.MethodPost, "/api/v1/analytics/flags", key, []byte(`{"new_checkout":2}`)},
			{http.MethodGet, "/proxy/health/readiness", "", nil},
			{http.MethodGet, "/proxy/health/liveness", "", nil},
		} {
			slashed, _, _ := strings.Cut(tc.path, "?")
			slashed += "/" + strings.TrimPrefix(tc.path, slashed)
			without := px.do(t, px.request(t, tc.method, tc.path, tc.key, tc.body))
			with := px.do(t, px.request(t, tc.method, slashed, tc.key, tc.body))
			if without.status != http.StatusOK || with.status != http.StatusOK {
				t.Errorf("%s %s: status %d, with slash %d; want 200 for both, never a redirect (Location %q)",
					tc.method, tc.path, without.status, with.status, without.header.Get("Location"))
				continue
			}
			if tc.path == "/proxy/health/readiness" {
				continue // carries a timestamp
			}
			if !bytes.Equal(without.body, with.body) {
				t.Errorf("%s %s: body differs from %s:\n%s\n%s", tc.method, tc.path, slashed, without.body, with.body)
			}
		}
	})

	t.Run("identities", func(t *testing.T) {
		t.Parallel()
		testExampleIdentities(t, px, example)
	})

	t.Run("identities with workload document", func(t *testing.T) {
		t.Parallel()
		// P1 has no segments: identity flags are the defaults, except the
		// identity overrides and the multivariate splits.
		for _, id := range []string{"qa-override-user-2", "user-workload-1"} {
			body := workload.IdentityBody(workload.P1, id)
			var req struct {
				Traits json.RawMessage `json:"traits"`
			}
			if err := json.Unmarshal(body, &req); err != nil {
				t.Fatal(err)
			}
			r := px.post(t, "/api/v1/identities/", p1.keys.Client, body)
			assertOK(t, r, p1)
			assertIdentityBody(t, r.body, id, expectedIdentityFlags(t, p1.doc, id, false), string(req.Traits))
		}
	})

	t.Run("validation errors", func(t *testing.T) {
		t.Parallel()
		testValidation(t, px, example)
	})

	t.Run("unknown and missing keys", func(t *testing.T) {
		t.Parallel()
		for _, key := range []string{"", "no-such-key", "ser.no-such-server-key"} {
			want := `{"status":"unauthorized","message":"unknown key '` + key + `'"}`
			for _, req := range []*http.Request{
				px.request(t, http.MethodGet, "/api/v1/flags/", key, nil),
				px.request(t, http.MethodGet, "/api/v1/flags/?feature=new_checkout", key, nil),
				px.request(t, http.MethodGet, "/api/v1/identities/?identifier=qa-alice", key, nil),
				px.request(t, http.MethodPost, "/api/v1/identities/", key, []byte(`{"identifier":"qa-alice"}`)),
				px.request(t, http.MethodGet, "/api/v1/environment-document/", key, nil),
			} {
				assertError(t, px.do(t, req), http.StatusUnauthorized, want)
			}
		}
	})

	t.Run("environment document", func(t *testing.T) {
		t.Parallel()
		testEnvironmentDocument(t, px, example, p1, secrets)
	})

	t.Run("gzip", func(t *testing.T) {
		t.Parallel()
		plain := px.get(t, "/api/v1/flags/", p1.keys.Client)
		req := px.request(t, http.MethodGet, "/api/v1/flags/", p1.keys.Client, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		zipped := px.do(t, req)
		assertOK(t, zipped, p1)
		if ce := zipped.header.Get("Content-Encoding"); ce != "gzip" {
			t.Fatalf("Content-Encoding %q for a %d-byte flags list with Accept-Encoding: gzip", ce, len(plain.body))
		}
		if got := gunzip(t, zipped.body); !bytes.Equal(got, plain.body) {
			t.Errorf("gzip body decompresses to\n%s\nwant\n%s", got, plain.body)
		}
		// A refusal (qvalue 0, which RFC 9110 §12.4.2 lets a client write
		// with up to three decimals) gets the plain body.
		for _, path := range []string{"/api/v1/flags/", "/api/v1/environment-document/"} {
			for _, ae := range []string{"gzip;q=0", "gzip; q=0.0", "gzip;q=0.000", "identity"} {
				req := px.request(t, http.MethodGet, path, p1.keys.Server, nil)
				req.Header.Set("Accept-Encoding", ae)
				r := px.do(t, req)
				if ce := r.header.Get("Content-Encoding"); r.status != http.StatusOK || ce != "" {
					t.Errorf("GET %s with Accept-Encoding: %s: status %d, Content-Encoding %q; want 200 uncompressed",
						path, ae, r.status, ce)
				}
			}
		}
	})

	t.Run("CORS", func(t *testing.T) {
		t.Parallel()
		const origin = "https://app.example.com"
		requested := []string{"X-Environment-Key", "Content-Type", "Flagsmith-SDK-User-Agent"}
		for _, path := range []string{"/api/v1/flags/", "/api/v1/identities/"} {
			req := px.request(t, http.MethodOptions, path, "", nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", http.MethodPost)
			req.Header.Set("Access-Control-Request-Headers", strings.ToLower(strings.Join(requested, ",")))
			r := px.do(t, req)
			if r.status != http.StatusOK {
				t.Fatalf("preflight %s: status %d, want 200", path, r.status)
			}
			if got := r.header.Get("Access-Control-Allow-Origin"); got != origin && got != "*" {
				t.Errorf("preflight %s: Access-Control-Allow-Origin %q", path, got)
			}
			if got := r.header.Get("Access-Control-Allow-Methods"); !listHas(got, http.MethodPost) {
				t.Errorf("preflight %s: Access-Control-Allow-Methods %q lacks POST", path, got)
			}
			allowed := r.header.Get("Access-Control-Allow-Headers")
			for _, h := range requested {
				if !listHas(allowed, h) && allowed != "*" {
					t.Errorf("preflight %s: Access-Control-Allow-Headers %q lacks %s", path, allowed, h)
				}
			}
		}
		req := px.request(t, http.MethodGet, "/api/v1/flags/", example.keys.Client, nil)
		req.Header.Set("Origin", origin)
		r := px.do(t, req)
		assertOK(t, r, example)
		if got := r.header.Get("Access-Control-Allow-Origin"); got != origin && got != "*" {
			t.Errorf("GET with Origin: Access-Control-Allow-Origin %q", got)
		}
		if got := r.header.Get("Access-Control-Expose-Headers"); !listHas(got, "X-Flagsmith-Document-Updated-At") {
			t.Errorf("GET with Origin: Access-Control-Expose-Headers %q lacks X-Flagsmith-Document-Updated-At", got)
		}
	})

	t.Run("analytics accepted", func(t *testing.T) {
		t.Parallel()
		r := px.post(t, "/api/v1/analytics/flags/", example.keys.Server, []byte(`{"new_checkout":3,"banner_colour":1}`))
		if r.status != http.StatusOK {
			t.Errorf("POST analytics: status %d, want 200", r.status)
		}
	})

	t.Run("unknown path", func(t *testing.T) {
		t.Parallel()
		r := px.get(t, "/api/v1/no-such-endpoint/", example.keys.Client)
		if r.status != http.StatusNotFound || !json.Valid(r.body) {
			t.Errorf("unknown path: status %d body %s; want a JSON 404", r.status, r.body)
		}
	})
}

// testExampleIdentities checks GET and POST /identities/ on
// examples/environment.json. The expected flags are worked out by reading
// its rules:
//   - new_checkout defaults to disabled "v1"; segment beta_users (plan EQUAL
//     beta, or country IN NZ,SE) gives enabled "v2"; the identity override
//     of qa-alice gives enabled "v3-preview" and beats the segment;
//   - max_upload_mb defaults to 50; power_users (logins ≥ 100 and
//     app_version > 2.3.0 as semver) gives 500;
//   - banner_colour splits 30% green / 30% orange / 40% control "blue" on
//     the identity's hash (computed here from the spec);
//   - internal_debug_panel is server-key-only.
func testExampleIdentities(t *testing.T, px *proxy, e env) {
	type change struct {
		enabled bool
		value   any
	}
	// A case lists the flags that differ from the defaults (splits aside).
	type identityGolden struct {
		name, identifier, traits string
		changes                  map[string]change
	}
	v2 := map[string]change{"new_checkout": {true, "v2"}}
	cases := []identityGolden{
		{"no traits", "user-plain", `[]`, nil},
		{"identity override", "qa-alice", `[]`, map[string]change{"new_checkout": {true, "v3-preview"}}},
		{"identity override beats segment", "qa-alice", `[{"trait_key":"plan","trait_value":"beta"}]`,
			map[string]change{"new_checkout": {true, "v3-preview"}}},
		{"segment EQUAL", "user-beta", `[{"trait_key":"plan","trait_value":"beta"}]`, v2},
		{"segment EQUAL, other value", "user-free", `[{"trait_key":"plan","trait_value":"free"}]`, nil},
		{"segment IN", "user-se", `[{"trait_key":"country","trait_value":"SE"}]`, v2},
		{"segment IN, not listed", "user-us", `[{"trait_key":"country","trait_value":"US"}]`, nil},
		{"segment ALL with semver", "user-power",
			`[{"trait_key":"logins","trait_value":150},{"trait_key":"app_version","trait_value":"2.10.0"}]`,
			map[string]change{"max_upload_mb": {true, 500}}},
		{"semver not greater", "user-power-old",
			`[{"trait_key":"logins","trait_value":150},{"trait_key":"app_version","trait_value":"2.3.0"}]`, nil},
		{"too few logins", "user-new",
			`[{"trait_key":"logins","trait_value":99},{"trait_key":"app_version","trait_value":"3.0.0"}]`, nil},
		{"both segments", "user-both",
			`[{"trait_key":"country","trait_value":"NZ"},{"trait_key":"logins","trait_value":100},{"trait_key":"app_version","trait_value":"2.3.1"}]`,
			map[string]change{"new_checkout": {true, "v2"}, "max_upload_mb": {true, 500}}},
		{"traits echoed verbatim", "user-echo",
			`[{"trait_key":"beta","trait_value":true},{"trait_key":"score","trait_value":4.5},{"trait_key":"gone","trait_value":null},{"trait_key":"tenant","trait_value":"acme","transient":true}]`, nil},
	}
	// Identities that land in each multivariate bucket, found with the
	// spec's hash so that every branch of the split is exercised.
	banner := e.doc.defaultState(t, "banner_colour")
	buckets := map[string]string{}
	for i := 0; len(buckets) < 3 && i < 1000; i++ {
		id := fmt.Sprintf("user-%d", i)
		v := splitValue(t, banner, e.doc.APIKey+"_"+id).(string)
		if _, seen := buckets[v]; !seen {
			buckets[v] = id
			cases = append(cases, identityGolden{"split " + v, id, `[]`, nil})
		}
	}
	if len(buckets) != 3 {
		t.Fatalf("test setup: identities found for buckets %v, want green, orange and blue", buckets)
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, server := range []bool{false, true} {
				key := e.key(server)
				var want [][]byte
				for _, fs := range e.doc.FeatureStates {
					enabled, value := fs.Enabled, fs.Value
					if len(fs.Multivariate) > 0 {
						value = splitValue(t, fs, e.doc.APIKey+"_"+tc.identifier)
					}
					if c, ok := tc.changes[fs.Feature.Name]; ok {
						enabled, value = c.enabled, c.value
					}
					if e.doc.visible(server, fs.Feature.ID, enabled) {
						want = append(want, flagItem(t, fs.Feature, enabled, value))
					}
				}
				body := `{"identifier":` + string(marshal(t, tc.identifier)) + `,"traits":` + tc.traits + `}`
				r := px.post(t, "/api/v1/identities/", key, []byte(body))
				assertOK(t, r, e)
				assertIdentityBody(t, r.body, tc.identifier, want, tc.traits)
				if tc.traits == `[]` {
					r = px.get(t, "/api/v1/identities/?identifier="+url.QueryEscape(tc.identifier), key)
					assertOK(t, r, e)
					assertIdentityBody(t, r.body, tc.identifier, want, `[]`)
				}
			}
		})
	}
}

// expectedIdentityFlags derives identity flags for a document without
// segments: defaults, multivariate splits, then the identity's overrides.
func expectedIdentityFlags(t *testing.T, d *document, identifier string, server bool) [][]byte {
	t.Helper()
	if len(d.Project.Segments) > 0 {
		t.Fatal("expectedIdentityFlags does not evaluate segments")
	}
	overrides := map[string]featureState{}
	for _, o := range d.IdentityOverrides {
		if o.Identifier == identifier {
			for _, fs := range o.IdentityFeatures {
				overrides[fs.Feature.Name] = fs
			}
		}
	}
	var want [][]byte
	for _, fs := range d.FeatureStates {
		if o, ok := overrides[fs.Feature.Name]; ok {
			fs.Enabled, fs.Value, fs.Multivariate = o.Enabled, o.Value, o.Multivariate
			fs.DjangoID, fs.FeaturestateUUID = o.DjangoID, o.FeaturestateUUID
		}
		value := fs.Value
		if len(fs.Multivariate) > 0 {
			value = splitValue(t, fs, d.APIKey+"_"+identifier)
		}
		if d.visible(server, fs.Feature.ID, fs.Enabled) {
			want = append(want, flagItem(t, fs.Feature, fs.Enabled, value))
		}
	}
	return want
}

func testValidation(t *testing.T, px *proxy, e env) {
	key := e.keys.Client
	identify := func(traits string) []byte {
		return []byte(`{"identifier":"user-v","traits":` + traits + `}`)
	}
	longValue := func(n int) string {
		return `[{"trait_key":"bio","trait_value":"` + strings.Repeat("x", n) + `"}]`
	}
	// At the limit: accepted.
	r := px.post(t, "/api/v1/identities/", key, identify(longValue(2000)))
	assertOK(t, r, e)

	for _, tc := range []struct {
		name string
		body []byte
		loc  []any // expected detail[0].loc; nil: only a 422 with a detail list
	}{
		{"trait value of 2001 characters", identify(longValue(2001)), []any{"body", "traits", 0.0, "trait_value"}},
		{"second trait's value too long", identify(`[{"trait_key":"a","trait_value":1},` + longValue(2001)[1:]),
			[]any{"body", "traits", 1.0, "trait_value"}},
		{"trait key of 201 characters", identify(`[{"trait_key":"` + strings.Repeat("k", 201) + `","trait_value":1}]`),
			[]any{"body", "traits", 0.0, "trait_key"}},
		{"identifier missing", []byte(`{"traits":[]}`), []any{"body", "identifier"}},
		{"malformed JSON", []byte(`{"identifier":"user-v","traits":[`), nil},
		{"not an object", []byte(`["user-v"]`), nil},
	} {
		r := px.post(t, "/api/v1/identities/", key, tc.body)
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d, want 422; body %s", tc.name, r.status, r.body)
			continue
		}
		var got struct {
			Detail []struct {
				Loc  []any  `json:"loc"`
				Type string `json:"type"`
				Msg  string `json:"msg"`
			} `json:"detail"`
		}
		if err := json.Unmarshal(r.body, &got); err != nil || len(got.Detail) == 0 {
			t.Errorf("%s: body %s, want {\"detail\":[{\"loc\",\"type\",\"msg\"}]}", tc.name, r.body)
			continue
		}
		if tc.loc != nil && !reflect.DeepEqual(got.Detail[0].Loc, tc.loc) {
			t.Errorf("%s: detail[0].loc = %v, want %v", tc.name, got.Detail[0].Loc, tc.loc)
		}
		if got.Detail[0].Msg == "" || got.Detail[0].Type == "" {
			t.Errorf("%s: detail[0] lacks type or msg: %s", tc.name, r.body)
		}
	}

	// Larger than server.max_body_bytes, though otherwise valid: 413, with
	// and without a Content-Length.
	var traits []string
	for i := 0; len(strings.Join(traits, ",")) <= maxBodyBytes; i++ {
		traits = append(traits, fmt.Sprintf(`{"trait_key":"t%d","trait_value":"%s"}`, i, strings.Repeat("v", 500)))
	}
	big := identify("[" + strings.Join(traits, ",") + "]")
	r = px.post(t, "/api/v1/identities/", key, big)
	assertStatusJSON(t, "body over max_body_bytes", r, http.StatusRequestEntityTooLarge)
	req := px.request(t, http.MethodPost, "/api/v1/identities/", key, nil)
	req.Body = io.NopCloser(bytes.NewReader(big)) // unknown length: sent chunked
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	r = px.do(t, req)
	assertStatusJSON(t, "chunked body over max_body_bytes", r, http.StatusRequestEntityTooLarge)

	// GET without an identifier is a client error, not a crash.
	r = px.get(t, "/api/v1/identities/", key)
	if r.status != http.StatusBadRequest && r.status != http.StatusUnprocessableEntity {
		t.Errorf("GET /identities/ without identifier: status %d, want 400 or 422", r.status)
	}
}

func testEnvironmentDocument(t *testing.T, px *proxy, example, p1, secrets env) {
	const path = "/api/v1/environment-document/"
	for _, e := range []env{example, p1} {
		// What upstream served: neither document has secret fields.
		r := px.get(t, path, e.keys.Server)
		assertOK(t, r, e)
		assertServedDocument(t, e.name, r.body, e)
		lastModified := r.header.Get("Last-Modified")
		if want := e.doc.updatedAt(t).UTC().Format(http.TimeFormat); lastModified != want {
			t.Errorf("%s: Last-Modified %q, want %q", e.name, lastModified, want)
		}

		req := px.request(t, http.MethodGet, path, e.keys.Server, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		z := px.do(t, req)
		assertOK(t, z, e)
		if ce := z.header.Get("Content-Encoding"); ce != "gzip" {
			t.Errorf("%s: Content-Encoding %q with Accept-Encoding: gzip", e.name, ce)
		} else {
			assertServedDocument(t, e.name+" (gzip)", gunzip(t, z.body), e)
		}

		// If-Modified-Since at or after updated_at (whole seconds): 304.
		for _, ims := range []string{lastModified, e.doc.updatedAt(t).Add(time.Hour).UTC().Format(http.TimeFormat)} {
			req = px.request(t, http.MethodGet, path, e.keys.Server, nil)
			req.Header.Set("If-Modified-Since", ims)
			r = px.do(t, req)
			if r.status != http.StatusNotModified || len(r.body) != 0 {
				t.Errorf("%s: If-Modified-Since %s: status %d with %d bytes, want 304 and no body", e.name, ims, r.status, len(r.body))
			}
		}
		// Before it: the document.
		req = px.request(t, http.MethodGet, path, e.keys.Server, nil)
		req.Header.Set("If-Modified-Since", e.doc.updatedAt(t).Add(-time.Second).UTC().Format(http.TimeFormat))
		r = px.do(t, req)
		if r.status != http.StatusOK {
			t.Errorf("%s: older If-Modified-Since: status %d, want 200 with the document", e.name, r.status)
		} else {
			assertServedDocument(t, e.name+" (older If-Modified-Since)", r.body, e)
		}

		// Client keys cannot read the document.
		r = px.get(t, path, e.keys.Client)
		assertStatusJSON(t, e.name+": document with a client key", r, http.StatusUnauthorized)
	}

	// Secret fields are removed; everything else is served unchanged.
	r := px.get(t, path, secrets.keys.Server)
	assertOK(t, r, secrets)
	for _, s := range secrets.secret {
		if bytes.Contains(r.body, []byte(s)) {
			t.Errorf("secrets: served document contains %q", s)
		}
	}
	var want map[string]any
	if err := json.Unmarshal(secrets.raw, &want); err != nil {
		t.Fatal(err)
	}
	delete(want, "webhook_config")
	delete(want, "amplitude_config")
	delete(want, "segment_config")
	delete(want["identity_overrides"].([]any)[0].(map[string]any), "system_traits")
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("secrets: served document is not JSON: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("secrets: served document\n%s\nwant (upstream's without secret fields)\n%s", r.body, marshal(t, want))
	}
}

// assertServedDocument checks that a served environment document is the
// JSON upstream served. The example document must come back byte for byte:
// it has no field to strip, so there is nothing to re-encode. Core-built
// documents such as the workload's carry environment_api_key inside each
// identity override, which Fledge's secret scrubbing re-encodes (keys
// sorted); for those only JSON equality is required.
func assertServedDocument(t *testing.T, what string, got []byte, e env) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("%s: served document is not JSON: %v", what, err)
		return
	}
	if err := json.Unmarshal(e.raw, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s: served document differs from upstream's:\n%s", what, got)
		return
	}
	if e.name == "example" && !bytes.Equal(got, e.raw) {
		t.Errorf("%s: served document is upstream's JSON but not its bytes:\n%s", what, got)
	}
}

// assertOK checks a successful read: exactly 200 (api.md §1.5), JSON, and
// X-Flagsmith-Document-Updated-At giving the document's updated_at as epoch
// seconds (api.md §1.3).
func assertOK(t *testing.T, r response, e env) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	h := r.header.Get("X-Flagsmith-Document-Updated-At")
	got, err := strconv.ParseFloat(h, 64)
	want := float64(e.doc.updatedAt(t).UnixMicro()) / 1e6
	if err != nil || math.Abs(got-want) > 1e-6 {
		t.Errorf("X-Flagsmith-Document-Updated-At %q, want %.6f (updated_at %s)", h, want, e.doc.UpdatedAt)
	}
}

// assertBody compares a body byte for byte.
func assertBody(t *testing.T, r response, want string) {
	t.Helper()
	if string(r.body) != want {
		t.Errorf("body:\ngot  %s\nwant %s", r.body, want)
	}
}

// assertError checks an error response's status and exact JSON body.
func assertError(t *testing.T, r response, status int, body string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d; body %s", r.status, status, r.body)
		return
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
	assertBody(t, r, body)
}

// assertStatusJSON checks a status and that the body is a JSON object.
func assertStatusJSON(t *testing.T, what string, r response, status int) {
	t.Helper()
	var obj map[string]any
	if r.status != status || json.Unmarshal(r.body, &obj) != nil {
		t.Errorf("%s: status %d body %s; want %d with a JSON object", what, r.status, r.body, status)
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("bad gzip stream: %v", err)
	}
	return out
}

// listHas reports whether a comma-separated header value names item
// (case-insensitively).
func listHas(list, item string) bool {
	for part := range strings.SplitSeq(list, ",") {
		if strings.EqualFold(strings.TrimSpace(part), item) {
			return true
		}
	}
	return false
}
