package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/identity/dynamo"
	"github.com/fledge-flags/fledge/internal/coreitems"
	"github.com/fledge-flags/fledge/internal/dynalite"
)

// environment_source "dynamodb": the binary serves the environments of
// Flagsmith's DynamoDB tables, written here as core writes them, picks up
// document and key changes on each refresh, and keeps serving through an
// outage of DynamoDB.

const (
	dynClient       = "dynEnvClientKey00000001"
	dynServerActive = "ser.dynActiveKey00000001"
	dynServerNew    = "ser.dynNewKey00000000001"
	dynServerOld    = "ser.dynExpiredKey0000001"
	dynServerOff    = "ser.dynInactiveKey000001"
)

func dynDoc(banner string) []byte {
	return []byte(fmt.Sprintf(`{
  "id": 42, "api_key": %q, "name": "Dyn", "updated_at": "2026-01-02T10:00:00.000000+00:00",
  "allow_client_traits": true, "hide_sensitive_data": false, "hide_disabled_flags": null,
  "use_identity_composite_key_for_hashing": true, "use_identity_overrides_in_local_eval": true,
  "segment_config": {"api_key": "SEGMENT-SECRET"}, "webhook_config": {"url": "https://hooks.example", "secret": "WEBHOOK-SECRET"},
  "onboarding_pending": false,
  "project": {"id": 7, "name": "P", "hide_disabled_flags": false, "server_key_only_feature_ids": [],
    "organisation": {"id": 1, "name": "O", "feature_analytics": false, "stop_serving_flags": false, "persist_trait_data": true},
    "segments": []},
  "feature_states": [
    {"feature": {"id": 1, "name": "banner", "type": "STANDARD"}, "enabled": true, "feature_state_value": %q,
     "django_id": 11, "featurestate_uuid": "00000000-0000-4000-8000-000000000001", "feature_segment": null,
     "multivariate_feature_state_values": []}
  ],
  "identity_overrides": []
}`, dynClient, banner))
}

const dynOverride = `{"feature": {"id": 1, "name": "banner", "type": "STANDARD"}, "enabled": true,
  "feature_state_value": "vip-banner", "django_id": null, "featurestate_uuid": "00000000-0000-4000-8000-0000000000aa",
  "feature_segment": null, "multivariate_feature_state_values": []}`

// flagOf is the value of the named flag in a flags or identities body.
func flagOf(body []byte, name string) any {
	var flags []struct {
		Feature struct{ Name string } `json:"feature"`
		Value   any                   `json:"feature_state_value"`
	}
	var ident struct {
		Flags json.RawMessage `json:"flags"`
	}
	if json.Unmarshal(body, &ident) == nil && ident.Flags != nil {
		body = ident.Flags
	}
	if json.Unmarshal(body, &flags) != nil {
		return nil
	}
	for _, f := range flags {
		if f.Feature.Name == name {
			return f.Value
		}
	}
	return nil
}

func TestDynamoDBEnvironmentSource(t *testing.T) {
	srv := dynalite.StartServer(t, dynalite.Options{Persist: true})
	for i, role := range []string{"proxy", "api"} {
		t.Run(role, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			tables := dynamo.DefaultTables().WithPrefix(fmt.Sprintf("r%d_", i))
			if err := dynamo.New(srv.Client(), dynamo.Options{Tables: tables}).CreateTables(ctx); err != nil {
				t.Fatal(err)
			}
			w := &coreitems.Writer{DB: srv.Client(), Tables: coreitems.Tables{
				Environments: tables.Environments, EnvironmentsV2: tables.EnvironmentsV2, APIKeys: tables.APIKeys}}
			past := time.Now().Add(-time.Hour)
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(w.PutEnvironment(ctx, dynDoc("v1"), true))
			must(w.PutOverride(ctx, coreitems.Override{EnvironmentID: 42, ClientKey: dynClient, Identifier: "vip",
				IdentityUUID: "3018f59c-77a1-43df-a9a8-38723e99e441", FeatureState: []byte(dynOverride)}))
			must(w.PutAPIKey(ctx, coreitems.APIKey{Key: dynServerActive, ClientKey: dynClient, ID: 1, Active: true}))
			must(w.PutAPIKey(ctx, coreitems.APIKey{Key: dynServerOld, ClientKey: dynClient, ID: 2, Active: true, ExpiresAt: &past}))
			must(w.PutAPIKey(ctx, coreitems.APIKey{Key: dynServerOff, ClientKey: dynClient, ID: 3, Active: false}))

			cfg := config{
				"environment_source":         "dynamodb",
				"api_poll_frequency_seconds": 1,
				"server":                     map[string]any{"host": "127.0.0.1"},
				"store": map[string]any{
					"type": "dynamodb",
					"dynamodb": map[string]any{
						"regions": []map[string]any{{"region": firstRegion, "endpoint": srv.Endpoint}},
						"tables": map[string]any{
							"identities": tables.Identities, "environments": tables.Environments,
							"environments_v2": tables.EnvironmentsV2, "api_keys": tables.APIKeys,
						},
						"request_timeout_seconds": 2, "failover_budget_seconds": 0.5, "health_check_interval_seconds": 0.5,
					},
				},
				"analytics": map[string]any{"forward": false},
			}
			p := startRoleEnv(t, role, cfg, readinessPath, awsEnv...)

			status := func(key string) int { return p.get(t, "/api/v1/flags/", key).status }
			for key, want := range map[string]int{dynClient: 200, dynServerActive: 200, dynServerOld: 401, dynServerOff: 401, dynServerNew: 401} {
				if got := status(key); got != want {
					t.Errorf("%s: %d, want %d", key, got, want)
				}
			}
			if r := p.get(t, "/api/v1/flags/", dynClient); flagOf(r.body, "banner") != "v1" {
				t.Errorf("flags: %s", r.body)
			}
			if role == "proxy" {
				// The proxy evaluates the v2 override items merged into the
				// document; the api role evaluates identities from its store.
				if r := p.get(t, "/api/v1/identities/?identifier=vip", dynClient); r.status != 200 || flagOf(r.body, "banner") != "vip-banner" {
					t.Errorf("identity with an override: %d %s", r.status, r.body)
				}
			}
			r := p.get(t, "/api/v1/environment-document/", dynServerActive)
			if r.status != 200 {
				t.Fatalf("document: %d %s", r.status, r.body)
			}
			for _, secret := range []string{"SEGMENT-SECRET", "WEBHOOK-SECRET", "segment_config", "onboarding_pending", "compressed"} {
				if strings.Contains(string(r.body), secret) {
					t.Errorf("served document contains %s", secret)
				}
			}
			var doc struct {
				IdentityOverrides []struct {
					Identifier string `json:"identifier"`
				} `json:"identity_overrides"`
			}
			if err := json.Unmarshal(r.body, &doc); err != nil {
				t.Fatal(err)
			}
			// Once: merged by the source (proxy), or left to the api
			// role's document renderer, which reads the same items.
			if len(doc.IdentityOverrides) != 1 || doc.IdentityOverrides[0].Identifier != "vip" {
				t.Errorf("identity_overrides %+v, want one entry for vip", doc.IdentityOverrides)
			}

			// Changes in the tables are served after a refresh.
			must(w.PutEnvironment(ctx, dynDoc("v2"), false))
			must(w.PutAPIKey(ctx, coreitems.APIKey{Key: dynServerNew, ClientKey: dynClient, ID: 4, Active: true}))
			must(w.PutAPIKey(ctx, coreitems.APIKey{Key: dynServerActive, ClientKey: dynClient, ID: 1, Active: true, ExpiresAt: &past}))
			eventually(t, 10*time.Second, func() string {
				r := p.get(t, "/api/v1/flags/", dynServerNew)
				if r.status != 200 || flagOf(r.body, "banner") != "v2" || status(dynServerActive) != 401 {
					return fmt.Sprintf("new key %d %s; expired key %d", r.status, r.body, status(dynServerActive))
				}
				return ""
			})

			// An outage keeps the last good documents and keys.
			srv.Stop()
			time.Sleep(2500 * time.Millisecond) // two refreshes fail
			for key, want := range map[string]int{dynClient: 200, dynServerNew: 200, dynServerActive: 401} {
				if got := status(key); got != want {
					t.Errorf("during the outage %s: %d, want %d", key, got, want)
				}
			}
			if r := p.get(t, "/api/v1/flags/", dynClient); flagOf(r.body, "banner") != "v2" {
				t.Errorf("during the outage: %s", r.body)
			}
			srv.Restart()
			must(w.PutEnvironment(ctx, dynDoc("v3"), true))
			eventually(t, 15*time.Second, func() string {
				if r := p.get(t, "/api/v1/flags/", dynClient); flagOf(r.body, "banner") != "v3" {
					return "after the outage: " + string(r.body)
				}
				return ""
			})
			if r := p.get(t, readinessPath, ""); r.status != http.StatusOK {
				t.Errorf("readiness after the outage: %d %s", r.status, r.body)
			}
			logs := p.stderr.String()
			if !strings.Contains(logs, "dynamodb") || !strings.Contains(logs, "failed") {
				t.Errorf("the outage was not logged:\n%s", logs)
			}
			for _, key := range []string{dynClient, dynServerActive, dynServerNew, dynServerOld, dynServerOff} {
				if strings.Contains(logs, key) {
					t.Errorf("logs contain the whole key %s", key)
				}
			}
		})
	}
}
