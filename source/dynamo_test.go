package source_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/identity/dynamo"
	"github.com/fledge-flags/fledge/internal/coreitems"
	"github.com/fledge-flags/fledge/internal/dynalite"
	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/server"
	"github.com/fledge-flags/fledge/source"
)

// The dynamodb environment source against dynalite: items written as
// Flagsmith's core writes them (internal/coreitems), served through the
// real handler.

var tablePrefix atomic.Int64

// dynEnv is one test's tables in a dynalite.
type dynEnv struct {
	store *dynamo.Store
	w     *coreitems.Writer
}

func newDynEnv(t *testing.T, endpoint string) *dynEnv {
	t.Helper()
	tables := dynamo.DefaultTables().WithPrefix(fmt.Sprintf("s%d_", tablePrefix.Add(1)))
	st := dynamo.New(dynalite.Client(endpoint), dynamo.Options{Tables: tables, Logger: discard})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.CreateTables(ctx); err != nil {
		t.Fatalf("CreateTables: %v", err)
	}
	return &dynEnv{store: st, w: &coreitems.Writer{DB: st.Client(), Tables: coreitems.Tables{
		Environments: tables.Environments, EnvironmentsV2: tables.EnvironmentsV2, APIKeys: tables.APIKeys,
	}}}
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// coreDoc is an environment document as core stores it: integration and
// webhook secrets included, no identity overrides (they are v2 items).
func coreDoc(id int64, apiKey, banner string, overridesInDoc bool) []byte {
	return []byte(fmt.Sprintf(`{
  "id": %d, "api_key": %q, "name": "Env %d", "updated_at": "2026-01-02T10:00:00.000000+00:00",
  "allow_client_traits": true, "hide_sensitive_data": false, "hide_disabled_flags": null,
  "use_identity_composite_key_for_hashing": true, "use_identity_overrides_in_local_eval": %t,
  "segment_config": {"api_key": "SEGMENT-SECRET"}, "webhook_config": {"url": "https://hooks.example", "secret": "WEBHOOK-SECRET"},
  "amplitude_config": null, "onboarding_pending": false,
  "project": {"id": 7, "name": "P", "hide_disabled_flags": false, "server_key_only_feature_ids": [],
    "organisation": {"id": 1, "name": "O", "feature_analytics": false, "stop_serving_flags": false, "persist_trait_data": true},
    "segments": []},
  "feature_states": [
    {"feature": {"id": 1, "name": "banner", "type": "STANDARD"}, "enabled": true, "feature_state_value": %q,
     "django_id": 11, "featurestate_uuid": "00000000-0000-4000-8000-000000000001", "feature_segment": null,
     "multivariate_feature_state_values": []},
    {"feature": {"id": 2, "name": "ratio", "type": "STANDARD"}, "enabled": false, "feature_state_value": 0.25,
     "django_id": 12, "featurestate_uuid": "00000000-0000-4000-8000-000000000002", "feature_segment": null,
     "multivariate_feature_state_values": []}
  ],
  "identity_overrides": []
}`, id, apiKey, id, overridesInDoc, banner))
}

const overrideFS = `{"feature": {"id": 1, "name": "banner", "type": "STANDARD"}, "enabled": true,
  "feature_state_value": "vip-banner", "django_id": null, "featurestate_uuid": "00000000-0000-4000-8000-0000000000aa",
  "feature_segment": null, "multivariate_feature_state_values": []}`

// get sends one SDK request and returns the status and the body.
func get(t *testing.T, h http.Handler, path, key string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("X-Environment-Key", key)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body := rec.Body.Bytes()
	if rec.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return rec.Code, string(body)
}

// flagValue is the value of the named flag in a flags or identities answer.
func flagValue(t *testing.T, body, name string) any {
	t.Helper()
	var flags []struct {
		Feature struct{ Name string } `json:"feature"`
		Value   any                   `json:"feature_state_value"`
	}
	var ident struct {
		Flags *json.RawMessage `json:"flags"`
	}
	raw := []byte(body)
	if json.Unmarshal(raw, &ident) == nil && ident.Flags != nil {
		raw = *ident.Flags
	}
	if err := json.Unmarshal(raw, &flags); err != nil {
		t.Fatalf("flags %s: %v", body, err)
	}
	for _, f := range flags {
		if f.Feature.Name == name {
			return f.Value
		}
	}
	return nil
}

func newHandler(reg *registry.Registry, fresh *source.Freshness) http.Handler {
	return server.New(server.Options{Registry: reg, Readiness: fresh, Logger: discard, AllowOrigins: []string{"*"},
		PollInterval: time.Second, Grace: time.Second, GraceEnabled: true})
}

func TestDynamoSourceServesCoreItems(t *testing.T) {
	endpoint := dynalite.Start(t)
	const client, serverKey = "envClientKey0001", "ser.envServerKey0001"
	tests := []struct {
		name string
		// write puts the environment's document items.
		write func(ctx context.Context, w *coreitems.Writer, doc []byte) error
		// keys: serve store.dynamodb.environment_keys rather than a scan.
		keys  bool
		merge bool
	}{
		{"v1 item, scanned", func(ctx context.Context, w *coreitems.Writer, doc []byte) error {
			return w.PutEnvironment(ctx, doc, false)
		}, false, true},
		{"v1 item compressed, scanned", func(ctx context.Context, w *coreitems.Writer, doc []byte) error {
			return w.PutEnvironment(ctx, doc, true)
		}, false, true},
		{"v1 item compressed, by key", func(ctx context.Context, w *coreitems.Writer, doc []byte) error {
			return w.PutEnvironment(ctx, doc, true)
		}, true, true},
		{"v2 _META only, by key", func(ctx context.Context, w *coreitems.Writer, doc []byte) error {
			return w.PutMeta(ctx, doc, false)
		}, true, true},
		{"v2 _META compressed, by key", func(ctx context.Context, w *coreitems.Writer, doc []byte) error {
			return w.PutMeta(ctx, doc, true)
		}, true, true},
		{"v1 item, overrides left to the server", func(ctx context.Context, w *coreitems.Writer, doc []byte) error {
			return w.PutEnvironment(ctx, doc, false)
		}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			de := newDynEnv(t, endpoint)
			if err := tt.write(ctx, de.w, coreDoc(42, client, "v1", true)); err != nil {
				t.Fatal(err)
			}
			if err := de.w.PutOverride(ctx, coreitems.Override{EnvironmentID: 42, ClientKey: client, Identifier: "vip",
				IdentityUUID: "3018f59c-77a1-43df-a9a8-38723e99e441", FeatureState: []byte(overrideFS)}); err != nil {
				t.Fatal(err)
			}
			if err := de.w.PutAPIKey(ctx, coreitems.APIKey{Key: serverKey, ClientKey: client, ID: 1, Active: true}); err != nil {
				t.Fatal(err)
			}
			reg := registry.New(nil)
			fresh := source.NewFreshness(reg)
			fresh.EnableDiscovery()
			src := &source.Dynamo{Reader: de.store, Registry: reg, Freshness: fresh, MergeOverrides: tt.merge,
				Interval: time.Second, Timeout: 10 * time.Second, Logger: discard}
			if tt.keys {
				src.Keys = []string{client}
			}
			h := newHandler(reg, fresh)
			if code, _ := get(t, h, "/api/v1/flags/", client); code != http.StatusUnauthorized {
				t.Fatalf("before the first refresh: %d, want 401", code)
			}
			src.Refresh(ctx)

			code, body := get(t, h, "/api/v1/flags/", client)
			if code != 200 || flagValue(t, body, "banner") != "v1" {
				t.Errorf("flags with the client key: %d %s", code, body)
			}
			code, body = get(t, h, "/api/v1/flags/", serverKey)
			if code != 200 || flagValue(t, body, "ratio") != 0.25 {
				t.Errorf("flags with the server key: %d %s", code, body)
			}
			code, body = get(t, h, "/api/v1/identities/?identifier=vip", client)
			want := "vip-banner"
			if !tt.merge {
				want = "v1" // the api role evaluates overrides from its store
			}
			if code != 200 || flagValue(t, body, "banner") != want {
				t.Errorf("identity with an override: %d %s, want banner %q", code, body, want)
			}
			code, body = get(t, h, "/api/v1/identities/?identifier=someone", client)
			if code != 200 || flagValue(t, body, "banner") != "v1" {
				t.Errorf("identity without an override: %d %s", code, body)
			}
			if code, _ := get(t, h, "/api/v1/environment-document/", client); code != http.StatusUnauthorized {
				t.Errorf("document with the client key: %d, want 401", code)
			}
			code, body = get(t, h, "/api/v1/environment-document/", serverKey)
			if code != 200 {
				t.Fatalf("document: %d %s", code, body)
			}
			for _, secret := range []string{"SEGMENT-SECRET", "WEBHOOK-SECRET", "segment_config", "webhook_config", "amplitude_config", "onboarding_pending", "compressed", "document_key", `"environment_id"`} {
				if strings.Contains(body, secret) {
					t.Errorf("served document contains %s: %s", secret, body)
				}
			}
			var doc struct {
				APIKey        string `json:"api_key"`
				ID            int64  `json:"id"`
				FeatureStates []any  `json:"feature_states"`
				Project       struct {
					Name string `json:"name"`
				} `json:"project"`
				IdentityOverrides []struct {
					Identifier        string `json:"identifier"`
					IdentityUUID      string `json:"identity_uuid"`
					EnvironmentAPIKey string `json:"environment_api_key"`
					IdentityFeatures  []struct {
						Value any `json:"feature_state_value"`
					} `json:"identity_features"`
				} `json:"identity_overrides"`
			}
			if err := json.Unmarshal([]byte(body), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.APIKey != client || doc.ID != 42 || len(doc.FeatureStates) != 2 || doc.Project.Name != "P" {
				t.Errorf("document %s", body)
			}
			wantOverrides := 1
			if !tt.merge {
				wantOverrides = 0
			}
			if len(doc.IdentityOverrides) != wantOverrides {
				t.Fatalf("identity_overrides %+v, want %d", doc.IdentityOverrides, wantOverrides)
			}
			if wantOverrides == 1 {
				o := doc.IdentityOverrides[0]
				if o.Identifier != "vip" || o.IdentityUUID != "3018f59c-77a1-43df-a9a8-38723e99e441" || o.EnvironmentAPIKey != client ||
					len(o.IdentityFeatures) != 1 || o.IdentityFeatures[0].Value != "vip-banner" {
					t.Errorf("identity override %+v", o)
				}
			}
			if h := fresh.Health(time.Now(), time.Second, time.Second, true); !h.Ready {
				t.Errorf("not ready after a refresh: %+v", h)
			}
		})
	}
}

// TestDynamoSourceRefresh: changes in the tables are served after the
// next refresh, and an unchanged document is not compiled again.
func TestDynamoSourceRefresh(t *testing.T) {
	endpoint := dynalite.Start(t)
	ctx := ctxT(t)
	de := newDynEnv(t, endpoint)
	const a, b = "envA000000000001", "envB000000000001"
	past := time.Now().Add(-time.Hour)
	soon := time.Now().Add(1500 * time.Millisecond)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(de.w.PutEnvironment(ctx, coreDoc(1, a, "a1", false), true))
	must(de.w.PutAPIKey(ctx, coreitems.APIKey{Key: "ser.a-active", ClientKey: a, ID: 1, Active: true}))
	must(de.w.PutAPIKey(ctx, coreitems.APIKey{Key: "ser.a-inactive", ClientKey: a, ID: 2, Active: false}))
	must(de.w.PutAPIKey(ctx, coreitems.APIKey{Key: "ser.a-expired", ClientKey: a, ID: 3, Active: true, ExpiresAt: &past}))
	must(de.w.PutAPIKey(ctx, coreitems.APIKey{Key: "ser.a-expiring", ClientKey: a, ID: 4, Active: true, ExpiresAt: &soon}))

	reg := registry.New(nil)
	fresh := source.NewFreshness(reg)
	fresh.EnableDiscovery()
	src := &source.Dynamo{Reader: de.store, Registry: reg, Freshness: fresh, MergeOverrides: true, Interval: time.Second, Timeout: 10 * time.Second, Logger: discard}
	h := newHandler(reg, fresh)
	src.Refresh(ctx)

	status := func(key string) int { code, _ := get(t, h, "/api/v1/flags/", key); return code }
	for key, want := range map[string]int{a: 200, "ser.a-active": 200, "ser.a-inactive": 401, "ser.a-expired": 401, "ser.a-expiring": 200, b: 401, "ser.b": 401} {
		if got := status(key); got != want {
			t.Errorf("first refresh: %s → %d, want %d", key, got, want)
		}
	}
	first := reg.Env(a).Snapshot()

	t.Run("unchanged document is not compiled again", func(t *testing.T) {
		before := fresh.LastSuccess(reg.Env(a))
		time.Sleep(5 * time.Millisecond)
		src.Refresh(ctx)
		if reg.Env(a).Snapshot() != first {
			t.Error("snapshot replaced though the item did not change")
		}
		if !fresh.LastSuccess(reg.Env(a)).After(before) {
			t.Error("an unchanged read was not marked as fetched")
		}
	})

	t.Run("key expires between refreshes", func(t *testing.T) {
		time.Sleep(time.Until(soon) + 10*time.Millisecond)
		if got := status("ser.a-expiring"); got != 401 {
			t.Errorf("expired key: %d, want 401", got)
		}
	})

	t.Run("document change, new key, deactivated key, new environment", func(t *testing.T) {
		must(de.w.PutEnvironment(ctx, coreDoc(1, a, "a2", false), false))
		must(de.w.PutAPIKey(ctx, coreitems.APIKey{Key: "ser.a-new", ClientKey: a, ID: 5, Active: true}))
		must(de.w.PutAPIKey(ctx, coreitems.APIKey{Key: "ser.a-active", ClientKey: a, ID: 1, Active: false}))
		must(de.w.PutEnvironment(ctx, coreDoc(2, b, "b1", false), false))
		must(de.w.PutAPIKey(ctx, coreitems.APIKey{Key: "ser.b", ClientKey: b, ID: 6, Active: true}))
		if got := status("ser.a-new"); got != 401 {
			t.Errorf("new key before the refresh: %d, want 401", got)
		}
		src.Refresh(ctx)
		if _, body := get(t, h, "/api/v1/flags/", a); flagValue(t, body, "banner") != "a2" {
			t.Errorf("changed document not served: %s", body)
		}
		if reg.Env(a).Snapshot() == first {
			t.Error("snapshot not replaced")
		}
		for key, want := range map[string]int{"ser.a-new": 200, "ser.a-active": 401, b: 200, "ser.b": 200} {
			if got := status(key); got != want {
				t.Errorf("%s → %d, want %d", key, got, want)
			}
		}
		if _, body := get(t, h, "/api/v1/flags/", b); flagValue(t, body, "banner") != "b1" {
			t.Errorf("new environment: %s", body)
		}
	})

	t.Run("deleted key and environment", func(t *testing.T) {
		must(de.w.DeleteAPIKey(ctx, "ser.a-new"))
		must(de.w.DeleteEnvironment(ctx, b))
		src.Refresh(ctx)
		for key, want := range map[string]int{"ser.a-new": 401, a: 200, b: 401, "ser.b": 401} {
			if got := status(key); got != want {
				t.Errorf("%s → %d, want %d", key, got, want)
			}
		}
	})
}

// TestDynamoSourceKeepsServingOnFailure: with DynamoDB gone, the last
// good documents and keys are served and readiness goes stale as the
// poller's does; once it is back, refreshes resume.
func TestDynamoSourceKeepsServingOnFailure(t *testing.T) {
	srv := dynalite.StartServer(t, dynalite.Options{Persist: true})
	ctx := ctxT(t)
	de := newDynEnv(t, srv.Endpoint)
	const a = "envA000000000001"
	if err := de.w.PutEnvironment(ctx, coreDoc(1, a, "a1", false), false); err != nil {
		t.Fatal(err)
	}
	if err := de.w.PutAPIKey(ctx, coreitems.APIKey{Key: "ser.a", ClientKey: a, ID: 1, Active: true}); err != nil {
		t.Fatal(err)
	}
	for _, keys := range [][]string{nil, {a}} {
		t.Run(fmt.Sprintf("keys %v", keys), func(t *testing.T) {
			reg := registry.New(nil)
			fresh := source.NewFreshness(reg)
			fresh.EnableDiscovery()
			src := &source.Dynamo{Reader: de.store, Registry: reg, Freshness: fresh, Keys: keys, MergeOverrides: true, Interval: time.Second, Timeout: 2 * time.Second, Logger: discard}
			h := newHandler(reg, fresh)
			src.Refresh(ctx)
			lastRead, lastSet := fresh.LastSuccess(reg.Env(a)), fresh.LastDiscovery()

			srv.Stop()
			src.Refresh(ctx)
			for _, key := range []string{a, "ser.a"} {
				if code, body := get(t, h, "/api/v1/flags/", key); code != 200 || flagValue(t, body, "banner") != "a1" {
					t.Errorf("%s during the outage: %d %s", key, code, body)
				}
			}
			if !fresh.LastSuccess(reg.Env(a)).Equal(lastRead) || !fresh.LastDiscovery().Equal(lastSet) {
				t.Error("a failed refresh counted as a read")
			}
			if h := fresh.Health(time.Now().Add(time.Minute), time.Second, time.Second, true); h.Ready {
				t.Error("ready long after the last read")
			}

			srv.Restart()
			src.Refresh(ctx)
			if !fresh.LastSuccess(reg.Env(a)).After(lastRead) {
				t.Error("refresh after the outage not marked")
			}
		})
	}
}

// TestDynamoSourceWake: a queue-change (Wake) makes Run refresh at once,
// not at the next interval; an unknown key is refused.
func TestDynamoSourceWake(t *testing.T) {
	endpoint := dynalite.Start(t)
	ctx := ctxT(t)
	de := newDynEnv(t, endpoint)
	const a = "envA000000000001"
	if err := de.w.PutEnvironment(ctx, coreDoc(1, a, "a1", false), true); err != nil {
		t.Fatal(err)
	}
	reg := registry.New(nil)
	fresh := source.NewFreshness(reg)
	fresh.EnableDiscovery()
	src := &source.Dynamo{Reader: de.store, Registry: reg, Freshness: fresh, MergeOverrides: true,
		Interval: time.Hour, Timeout: 10 * time.Second, Logger: discard}
	run, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); src.Run(run) }()
	defer func() { stop(); <-done }()
	h := newHandler(reg, fresh)
	banner := func() string {
		code, body := get(t, h, "/api/v1/flags/", a)
		if code != 200 {
			return fmt.Sprint(code)
		}
		return fmt.Sprint(flagValue(t, body, "banner"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for banner() != "a1" {
		if time.Now().After(deadline) {
			t.Fatal("the first refresh did not happen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if src.Wake("unknownKey000000") {
		t.Error("Wake accepted an unknown key")
	}
	if err := de.w.PutEnvironment(ctx, coreDoc(1, a, "a2", false), false); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !src.Wake(a) {
		t.Fatal("Wake refused a known key")
	}
	for banner() != "a2" {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the change was not served within 5 s of Wake (the interval is an hour)")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("served %v after Wake", time.Since(start).Round(time.Millisecond))
}
