package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fledge-flags/fledge/internal/fakeapi"
)

// TestConfigsFlagsmithAccepts: configurations Flagsmith's proxies accept
// start, serve and become ready with Fledge too, with one warning each.
func TestConfigsFlagsmithAccepts(t *testing.T) {
	t.Parallel()
	e := exampleEnv(t)
	tests := []struct {
		name    string
		pair    keyPair // the configured pair; the API serves e's document for pair.Server
		warning string  // logged exactly once
	}{
		{"client key equals server key", keyPair{Server: e.keys.Server, Client: e.keys.Server}, "client_side_key is the server_side_key"},
		{"client key starts with ser.", keyPair{Server: e.keys.Server, Client: "ser.otherKeyGivenAsClient1"}, `client_side_key starts with \"ser.\"`},
		{"document api_key differs from client key", keyPair{Server: e.keys.Server, Client: "renamedClientKey000001"}, "api_key differs from the configured client_side_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := fakeapi.New()
			t.Cleanup(api.Close)
			api.SetDocument(tt.pair.Server, e.raw)
			cfg := baseConfig(api, tt.pair)
			cfg["api_poll_frequency_seconds"] = 30 // one poll is all the test needs
			px := startProxy(t, cfg)               // waits for readiness
			for _, key := range []string{tt.pair.Client, tt.pair.Server} {
				r := px.get(t, "/api/v1/flags/", key)
				assertOK(t, r, e)
			}
			if strings.HasPrefix(tt.pair.Client, "ser.") {
				// A "ser." key is a server-side key to the SDK using it.
				if r := px.get(t, "/api/v1/environment-document/", tt.pair.Client); r.status != http.StatusOK {
					t.Errorf("environment document with the ser. client key: %d %s", r.status, r.body)
				}
			}
			if n := strings.Count(px.stderr.String(), tt.warning); n != 1 {
				t.Errorf("warning %q logged %d times, want once:\n%s", tt.warning, n, px.stderr)
			}
		})
	}

	t.Run("no environments", func(t *testing.T) {
		t.Parallel()
		api := fakeapi.New()
		t.Cleanup(api.Close)
		cfg := baseConfig(api)
		cfg["environment_key_pairs"] = []keyPair{}
		px := startProxy(t, cfg) // waits for readiness
		assertError(t, px.get(t, "/api/v1/flags/", "anyKey"), http.StatusUnauthorized,
			`{"status":"unauthorized","message":"unknown key 'anyKey'"}`)
		if r := px.post(t, "/api/v1/identities/", "anyKey", []byte(`{"identifier":"a"}`)); r.status != http.StatusUnauthorized {
			t.Errorf("identities: %d %s, want 401", r.status, r.body)
		}
		if n := strings.Count(px.stderr.String(), "every SDK request will get 401"); n != 1 {
			t.Errorf("warning logged %d times, want once:\n%s", n, px.stderr)
		}
	})
}
