package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/internal/fakeapi"
)

// postAnalytics sends a flag analytics report as an SDK does and expects 200.
func postAnalytics(t *testing.T, px *proxy, path, key, body string) {
	t.Helper()
	if r := px.post(t, path, key, []byte(body)); r.status != http.StatusOK {
		t.Fatalf("POST %s: %d %s, want 200", path, r.status, r.body)
	}
}

// TestAnalyticsForwardedToUpstream: the proxy sums SDK reports (v1 with
// either key, v2) and posts them to the upstream's /analytics/flags/ with
// the client-side key on the flush interval.
func TestAnalyticsForwardedToUpstream(t *testing.T) {
	t.Parallel()
	e := exampleEnv(t)
	api := fakeapi.New()
	t.Cleanup(api.Close)
	cfg := baseConfig(api, serve(api, e)...)
	cfg["analytics"] = map[string]any{"flush_interval_seconds": 1}
	px := startProxy(t, cfg)

	postAnalytics(t, px, "/api/v1/analytics/flags/", e.keys.Server, `{"new_checkout":3,"banner_colour":1}`)
	postAnalytics(t, px, "/api/v1/analytics/flags/", e.keys.Client, `{"new_checkout":2,"no_such_feature":9}`)
	postAnalytics(t, px, "/api/v2/analytics/flags/", e.keys.Client,
		`{"evaluations":[{"feature_name":"max_upload_mb","identity_identifier":"u1","enabled_when_evaluated":true,"count":4}]}`)
	want := map[string]int64{"new_checkout": 5, "banner_colour": 1, "max_upload_mb": 4}
	eventually(t, 5*time.Second, func() string {
		if got := api.AnalyticsTotals(e.keys.Server); !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("upstream totals %v, want %v", got, want)
		}
		return ""
	})
	for _, r := range api.AnalyticsReports() {
		if r.EnvironmentKey != e.keys.Client {
			t.Errorf("report sent with key %q, want the client-side key", r.EnvironmentKey)
		}
		if len(r.Skipped) > 0 {
			t.Errorf("upstream skipped %v", r.Skipped)
		}
	}
}

// TestAnalyticsFlushedOnShutdown: counts not yet forwarded when the proxy
// is stopped are sent before it exits.
func TestAnalyticsFlushedOnShutdown(t *testing.T) {
	t.Parallel()
	e := exampleEnv(t)
	api := fakeapi.New()
	t.Cleanup(api.Close)
	cfg := baseConfig(api, serve(api, e)...)
	cfg["analytics"] = map[string]any{"flush_interval_seconds": 3600}
	px := startProxy(t, cfg)
	postAnalytics(t, px, "/api/v1/analytics/flags/", e.keys.Client, `{"new_checkout":7}`)
	if got := api.AnalyticsTotals(e.keys.Server); len(got) != 0 {
		t.Fatalf("forwarded %v before the interval", got)
	}
	px.signal(t, syscall.SIGTERM)
	if code := px.waitExit(t, 10*time.Second); code != 0 {
		t.Errorf("exit status %d", code)
	}
	if got := api.AnalyticsTotals(e.keys.Server); !reflect.DeepEqual(got, map[string]int64{"new_checkout": 7}) {
		t.Errorf("upstream totals %v after shutdown, want new_checkout:7", got)
	}
}

// TestAnalyticsOffline: with no upstream (offline mode) reports are
// accepted and nothing is sent anywhere, at the interval or at shutdown,
// even with an api_url set.
func TestAnalyticsOffline(t *testing.T) {
	t.Parallel()
	api := fakeapi.New()
	t.Cleanup(api.Close)
	cfg := config{
		"environments":          []string{filepath.Join(repoRoot, "examples", "environment.json")},
		"environment_key_pairs": []keyPair{{Server: exampleServerKey, Client: exampleClientKey}},
		"api_url":               api.URL(),
		"server":                map[string]any{"host": "127.0.0.1"},
		"analytics":             map[string]any{"flush_interval_seconds": 1},
	}
	px := startProxy(t, cfg)
	postAnalytics(t, px, "/api/v1/analytics/flags/", exampleClientKey, `{"new_checkout":1}`)
	postAnalytics(t, px, "/api/v2/analytics/flags/", exampleServerKey, `{"evaluations":[{"feature_name":"new_checkout","count":1}]}`)
	time.Sleep(1500 * time.Millisecond) // past one flush interval
	px.signal(t, syscall.SIGTERM)
	if code := px.waitExit(t, 10*time.Second); code != 0 {
		t.Errorf("exit status %d", code)
	}
	if n := api.RequestCount(); n != 0 {
		t.Errorf("the upstream got %d requests in offline mode: %+v", n, api.Requests())
	}
}
