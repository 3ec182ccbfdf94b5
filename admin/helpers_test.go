package admin_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fledge-flags/fledge/admin"
	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/bolt"
	"github.com/fledge-flags/fledge/identity/memstore"
	"github.com/fledge-flags/fledge/registry"
)

const (
	token    = "admin-token-0123456789"
	token2   = "second-token-abcdefghij"
	envA     = "envAkey"
	envB     = "envBkey"
	envNoDoc = "envNoDoc"
)

// stores are the identity stores every handler test runs against.
var stores = []struct {
	name string
	open func(t *testing.T) identity.Store
}{
	{"memstore", func(t *testing.T) identity.Store {
		s := memstore.New()
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
	{"bolt", func(t *testing.T) identity.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "identities.db"), bolt.Options{})
		if err != nil {
			t.Fatalf("opening the bolt store: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
}

// forEachStore runs fn as a subtest per store.
func forEachStore(t *testing.T, fn func(t *testing.T, s identity.Store)) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) { fn(t, st.open(t)) })
	}
}

// docJSON is an environment document: banner (1, standard), colour (2,
// multivariate with options 101 "red" and 102 "blue"), beta (3, off by
// default, on for the "premium" segment: plan = premium).
func docJSON(apiKey string, id int, persist, overridesInDoc bool) []byte {
	return fmt.Appendf(nil, `{
  "id": %d, "api_key": %q, "name": "Test", "updated_at": "2025-01-02T03:04:05.000000+00:00",
  "use_identity_overrides_in_local_eval": %t, "use_identity_composite_key_for_hashing": true,
  "project": {"id": 9, "name": "P", "hide_disabled_flags": false,
    "organisation": {"id": 1, "name": "O", "persist_trait_data": %t, "stop_serving_flags": false},
    "segments": [{"id": 10, "name": "premium",
      "rules": [{"type": "ALL", "rules": [], "conditions": [{"operator": "EQUAL", "property_": "plan", "value": "premium"}]}],
      "feature_states": [{"feature": {"id": 3, "name": "beta", "type": "STANDARD"}, "enabled": true,
        "feature_state_value": "seg", "django_id": 900, "featurestate_uuid": "5d6c3b6e-0000-4000-8000-000000000900",
        "feature_segment": {"priority": 0}, "multivariate_feature_state_values": []}]}]},
  "feature_states": [
    {"feature": {"id": 1, "name": "banner", "type": "STANDARD"}, "enabled": false, "feature_state_value": "default",
     "django_id": 11, "featurestate_uuid": "5d6c3b6e-0000-4000-8000-000000000011", "feature_segment": null, "multivariate_feature_state_values": []},
    {"feature": {"id": 2, "name": "colour", "type": "MULTIVARIATE"}, "enabled": true, "feature_state_value": "control",
     "django_id": 12, "featurestate_uuid": "5d6c3b6e-0000-4000-8000-000000000012", "feature_segment": null,
     "multivariate_feature_state_values": [
       {"id": 201, "mv_fs_value_uuid": "5d6c3b6e-0000-4000-8000-000000000201", "percentage_allocation": 50.0,
        "multivariate_feature_option": {"id": 101, "value": "red"}},
       {"id": 202, "mv_fs_value_uuid": "5d6c3b6e-0000-4000-8000-000000000202", "percentage_allocation": 50.0,
        "multivariate_feature_option": {"id": 102, "value": "blue"}}]},
    {"feature": {"id": 3, "name": "beta", "type": "STANDARD"}, "enabled": false, "feature_state_value": null,
     "django_id": 13, "featurestate_uuid": "5d6c3b6e-0000-4000-8000-000000000013", "feature_segment": null, "multivariate_feature_state_values": []}
  ],
  "identity_overrides": []
}`, id, apiKey, overridesInDoc, persist)
}

func compile(t *testing.T, raw []byte) *environment.Snapshot {
	t.Helper()
	doc, err := environment.Parse(raw)
	if err != nil {
		t.Fatalf("parsing test document: %v", err)
	}
	snap, err := environment.Compile(doc, nil)
	if err != nil {
		t.Fatalf("compiling test document: %v", err)
	}
	if err := snap.SetDocumentJSON(raw); err != nil {
		t.Fatalf("SetDocumentJSON: %v", err)
	}
	return snap
}

// fixture is a registry with envA (persisting traits, overrides in the
// document), envB (persist_trait_data off) and envNoDoc (no snapshot yet),
// and the admin handler on a store.
type fixture struct {
	reg   *registry.Registry
	store identity.Store
	docs  *admin.DocumentOverrides
	h     http.Handler
	snapA *environment.Snapshot
}

func newFixture(t *testing.T, store identity.Store) *fixture {
	t.Helper()
	reg := registry.New([]registry.Pair{
		{ClientKey: envA, ServerKey: "ser.A"}, {ClientKey: envB, ServerKey: "ser.B"}, {ClientKey: envNoDoc},
	})
	f := &fixture{reg: reg, store: store, snapA: compile(t, docJSON(envA, 1, true, true))}
	reg.Env(envA).Store(f.snapA)
	reg.Env(envB).Store(compile(t, docJSON(envB, 2, false, false)))
	f.docs = admin.NewDocumentOverrides(store, admin.DocumentOptions{})
	f.h = admin.New(admin.Options{Registry: reg, Store: store, Tokens: []string{token, token2}, Documents: f.docs,
		Logger: slog.New(slog.DiscardHandler)})
	return f
}

// resp is an answer with its decoded JSON.
type resp struct {
	code int
	raw  string
	hdr  http.Header
}

func (r resp) json(t *testing.T) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(r.raw), &v); err != nil {
		t.Fatalf("response %d is not JSON: %q", r.code, r.raw)
	}
	return v
}

func (r resp) object(t *testing.T) map[string]any {
	t.Helper()
	m, ok := r.json(t).(map[string]any)
	if !ok {
		t.Fatalf("response %d is not an object: %s", r.code, r.raw)
	}
	return m
}

func (r resp) list(t *testing.T) []any {
	t.Helper()
	l, ok := r.json(t).([]any)
	if !ok {
		t.Fatalf("response %d is not a list: %s", r.code, r.raw)
	}
	return l
}

// call sends a request with "Token token" unless auth says otherwise
// ("-" for no Authorization header).
func call(t *testing.T, h http.Handler, method, path, body string, auth ...string) resp {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, path, strings.NewReader(body))
	switch {
	case len(auth) == 0:
		req.Header.Set("Authorization", "Token "+token)
	case auth[0] != "-":
		req.Header.Set("Authorization", auth[0])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return resp{code: rec.Code, raw: rec.Body.String(), hdr: rec.Header()}
}

// want checks the status and, when body is not empty, that the JSON body
// equals body's JSON.
func want(t *testing.T, r resp, code int, body string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d; body %s", r.code, code, r.raw)
	}
	if ct := r.hdr.Get("Content-Type"); r.code != http.StatusNoContent && ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if body == "" {
		return
	}
	var got, exp any
	if err := json.Unmarshal([]byte(r.raw), &got); err != nil {
		t.Fatalf("body is not JSON: %q", r.raw)
	}
	if err := json.Unmarshal([]byte(body), &exp); err != nil {
		t.Fatalf("test's expected body is not JSON: %q", body)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("body %s\nwant %s", r.raw, body)
	}
}

func path(env string, parts ...string) string {
	return "/api/v1/environments/" + env + "/" + strings.Join(parts, "/")
}

// create makes an identity through the API and returns its UUID.
func create(t *testing.T, h http.Handler, env, identifier, alias string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"identifier": identifier, "dashboard_alias": alias})
	r := call(t, h, "POST", path(env, "edge-identities/"), string(body))
	want(t, r, http.StatusCreated, "")
	return r.object(t)["identity_uuid"].(string)
}

func mustJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSpace(b.String())
}
