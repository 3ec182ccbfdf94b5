package e2e

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/bench/workload"
	"github.com/fledge-flags/fledge/internal/fakeapi"
)

const e2eProxyKey = "pk_e2e_secret_0123456789abcdef"

func proxyEnv(client string, keys ...fakeapi.ProxyServerKey) fakeapi.ProxyEnvironment {
	return fakeapi.ProxyEnvironment{ClientSideKey: client, Name: client, ServerSideKeys: keys}
}

func liveKey(k string) fakeapi.ProxyServerKey { return fakeapi.ProxyServerKey{Key: k, Active: true} }

// statusesOf answers GET path with each key in turn: "key:status …".
func statusesOf(t *testing.T, px *proxy, path string, keys ...string) string {
	t.Helper()
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s:%d", k, px.get(t, path, k).status))
	}
	return strings.Join(out, " ")
}

// TestProxyKeyMode runs the binary in proxy-key mode: environments are
// discovered, added, rotated and removed without a restart beside a static
// pair; upstream failures and a refused proxy key change nothing; document
// fetches carry X-Proxy-Key; usage reaches /proxy/usage/.
func TestProxyKeyMode(t *testing.T) {
	t.Parallel()
	static := exampleEnv(t)
	p1, p2 := workloadEnv(t, workload.P1, 1), workloadEnv(t, workload.P2, 1)
	api := fakeapi.New()
	t.Cleanup(api.Close)
	api.SetProxyKey(e2eProxyKey)
	api.SetDocument("ser.p1one", p1.raw)
	api.SetProxyEnvironments([]fakeapi.ProxyEnvironment{proxyEnv(p1.keys.Client, liveKey("ser.p1one"))})
	cfg := baseConfig(api, serve(api, static)...)
	cfg["proxy_key"] = e2eProxyKey
	cfg["usage_flush_interval_seconds"] = 1
	px := startProxy(t, cfg) // ready: discovery and every document done

	const flags = "/api/v1/flags/"
	if got, want := statusesOf(t, px, flags, static.keys.Client, static.keys.Server, p1.keys.Client, "ser.p1one", p2.keys.Client),
		fmt.Sprintf("%s:200 %s:200 %s:200 ser.p1one:200 %s:401", static.keys.Client, static.keys.Server, p1.keys.Client, p2.keys.Client); got != want {
		t.Fatalf("at start:\n got %s\nwant %s", got, want)
	}
	assertFlagsBody(t, px.get(t, flags, p1.keys.Client).body, p1.doc.envFlags(t, false))

	// Added without a restart.
	api.SetDocument("ser.p2one", p2.raw)
	api.SetProxyEnvironments([]fakeapi.ProxyEnvironment{
		proxyEnv(p1.keys.Client, liveKey("ser.p1one")), proxyEnv(p2.keys.Client, liveKey("ser.p2one")),
	})
	eventually(t, pollDeadline, func() string {
		if got := statusesOf(t, px, flags, p2.keys.Client, "ser.p2one"); got != p2.keys.Client+":200 ser.p2one:200" {
			return "the added environment: " + got
		}
		return ""
	})

	// Rotated: a new key added and the old one deactivated in one change;
	// then p1 removed.
	api.SetDocument("ser.p2two", p2.raw)
	api.SetProxyEnvironments([]fakeapi.ProxyEnvironment{
		proxyEnv(p2.keys.Client, fakeapi.ProxyServerKey{Key: "ser.p2one"}, liveKey("ser.p2two")),
	})
	eventually(t, pollDeadline, func() string {
		got := statusesOf(t, px, flags, "ser.p2one", "ser.p2two", p2.keys.Client, p1.keys.Client, "ser.p1one")
		if want := fmt.Sprintf("ser.p2one:401 ser.p2two:200 %s:200 %s:401 ser.p1one:401", p2.keys.Client, p1.keys.Client); got != want {
			return "after rotation and removal: " + got
		}
		return ""
	})
	if r := px.get(t, "/api/v1/environment-document/", "ser.p2two"); r.status != 200 {
		t.Errorf("environment document with the new key: %d", r.status)
	}

	// Failures: the upstream errs, then refuses the proxy key. Were either
	// taken for an answer, p2 would go (the list is empty).
	api.SetProxyEnvironments(nil)
	api.Fail(fakeapi.Fault500, -1)
	time.Sleep(pollDeadline)
	api.Fail(fakeapi.FaultNone, 0)
	api.SetProxyKey("pk_someone_else")
	time.Sleep(pollDeadline)
	if got, want := statusesOf(t, px, flags, static.keys.Client, p2.keys.Client, "ser.p2two"),
		fmt.Sprintf("%s:200 %s:200 ser.p2two:200", static.keys.Client, p2.keys.Client); got != want {
		t.Fatalf("after failed discoveries:\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(px.stderr.String(), "proxy configuration fetch failed") {
		t.Error("failed discoveries were not logged")
	}

	// Usage: what was served so far reaches the upstream under client keys.
	api.SetProxyKey(e2eProxyKey)
	eventually(t, 5*time.Second, func() string {
		totals := api.UsageTotals()
		if totals[p2.keys.Client]["flags"] < 1 || totals[static.keys.Client]["flags"] < 1 || totals[p1.keys.Client]["flags"] < 1 {
			return fmt.Sprintf("usage totals %v", totals)
		}
		return ""
	})
	for _, u := range api.UsageReports() {
		if u.Status == http.StatusNoContent && (u.ProxyKey != e2eProxyKey || u.IdempotencyKey == "") {
			t.Errorf("usage report %+v", u)
		}
	}
	// An accepted, empty configuration removes every discovered one.
	eventually(t, pollDeadline, func() string {
		if got := statusesOf(t, px, flags, p2.keys.Client, static.keys.Client); got != p2.keys.Client+":401 "+static.keys.Client+":200" {
			return "after an empty configuration: " + got
		}
		return ""
	})

	for _, r := range api.Requests() {
		if r.Path == "/api/v1/environment-document/" && r.ProxyKey != e2eProxyKey {
			t.Errorf("document fetch for %s without X-Proxy-Key", r.EnvironmentKey)
		}
	}
	if strings.Contains(px.stderr.String(), e2eProxyKey) {
		t.Error("the proxy key appears in the logs")
	}
	if r := px.get(t, readinessPath, ""); r.status != 200 {
		t.Errorf("readiness %d: %s", r.status, r.body)
	}
}

// TestProxyKeyUsageExactCounts: per client key and resource, exactly what
// was answered with a 2xx; nothing without a proxy key.
func TestProxyKeyUsageExactCounts(t *testing.T) {
	t.Parallel()
	e := exampleEnv(t)
	for _, on := range []bool{true, false} {
		t.Run(map[bool]string{true: "proxy key", false: "no proxy key"}[on], func(t *testing.T) {
			t.Parallel()
			api := fakeapi.New()
			t.Cleanup(api.Close)
			api.SetProxyKey(e2eProxyKey)
			cfg := baseConfig(api, serve(api, e)...)
			if on {
				cfg["proxy_key"] = e2eProxyKey
			}
			cfg["usage_flush_interval_seconds"] = 1
			px := startProxy(t, cfg)
			px.get(t, "/api/v1/flags/", e.keys.Client)
			px.get(t, "/api/v1/flags/", e.keys.Server)
			px.get(t, "/api/v1/identities/?identifier=u1", e.keys.Client)
			px.post(t, "/api/v1/identities/", e.keys.Server, []byte(`{"identifier":"u2"}`))
			px.get(t, "/api/v1/environment-document/", e.keys.Server)
			px.get(t, "/api/v1/flags/", "unknown")
			px.get(t, "/api/v1/flags/?feature=nope", e.keys.Client)
			if !on {
				time.Sleep(2500 * time.Millisecond)
				if n := len(api.UsageReports()); n != 0 {
					t.Fatalf("%d usage reports without a proxy key", n)
				}
				for _, r := range api.Requests() {
					if r.ProxyKey != "" || strings.HasPrefix(r.Path, "/api/v1/proxy/") {
						t.Errorf("request %s with X-Proxy-Key %q without a proxy key", r.Path, r.ProxyKey)
					}
				}
				return
			}
			want := map[string]map[string]int64{e.keys.Client: {"flags": 2, "identities": 2, "environment-document": 1}}
			eventually(t, 5*time.Second, func() string {
				if got := api.UsageTotals(); !reflect.DeepEqual(got, want) {
					return fmt.Sprintf("usage %v, want %v", got, want)
				}
				return ""
			})
		})
	}
}
