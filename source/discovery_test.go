package source

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/bench/workload"
	"github.com/fledge-flags/fledge/internal/fakeapi"
	"github.com/fledge-flags/fledge/registry"
)

const testProxyKey = "pk_poller_secret_0123456789"

// docFor is workload document version v served as clientKey's: its
// api_key is the client key, as Flagsmith's documents are.
func docFor(t *testing.T, clientKey string, v int) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(workload.Document(profile, v), &m); err != nil {
		t.Fatal(err)
	}
	m["api_key"], _ = json.Marshal(clientKey)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type discoveryFixture struct {
	*fixture
}

// newDiscoveryFixture: an upstream that knows the proxy key, one static
// pair (the workload's P1 keys) and the given discovered environments,
// each with a document under each of its server keys.
func newDiscoveryFixture(t *testing.T, envs ...fakeapi.ProxyEnvironment) *discoveryFixture {
	t.Helper()
	f := newFixture(t)
	f.poller.ProxyKey = testProxyKey
	f.fresh.EnableDiscovery()
	f.api.SetProxyKey(testProxyKey)
	d := &discoveryFixture{f}
	d.setEnvs(t, envs...)
	return d
}

func (d *discoveryFixture) setEnvs(t *testing.T, envs ...fakeapi.ProxyEnvironment) {
	t.Helper()
	for _, e := range envs {
		for _, k := range e.ServerSideKeys {
			d.api.SetDocument(k.Key, docFor(t, e.ClientSideKey, 1))
		}
	}
	d.api.SetProxyEnvironments(envs)
}

func env(client string, keys ...string) fakeapi.ProxyEnvironment {
	e := fakeapi.ProxyEnvironment{ClientSideKey: client, Name: client}
	for _, k := range keys {
		e.ServerSideKeys = append(e.ServerSideKeys, fakeapi.ProxyServerKey{Key: k, Active: true})
	}
	return e
}

// served lists, for each key, whether it resolves to an environment with a
// document.
func served(reg *registry.Registry, keys ...string) string {
	var out []string
	for _, k := range keys {
		e, _, ok := reg.Lookup(k)
		switch {
		case !ok:
			out = append(out, k+":401")
		case e.Snapshot() == nil:
			out = append(out, k+":503")
		default:
			out = append(out, k+":200")
		}
	}
	return strings.Join(out, " ")
}

var staticClient, staticServer = workload.ClientKey(profile), workload.ServerKey(profile)

// TestDiscoveryAddRemove: environments listed by the upstream are served
// after one pass, by either key; one no longer listed stops being served
// and polled; the static pair stays throughout.
func TestDiscoveryAddRemove(t *testing.T) {
	f := newDiscoveryFixture(t, env("envA", "ser.a"), env("envB", "ser.b"))
	f.poll(t)
	keys := []string{staticClient, staticServer, "envA", "ser.a", "envB", "ser.b", "envC", "ser.c"}
	if got, want := served(f.reg, keys...), staticClient+":200 "+staticServer+":200 envA:200 ser.a:200 envB:200 ser.b:200 envC:401 ser.c:401"; got != want {
		t.Fatalf("after the first pass:\n got %s\nwant %s\n%s", got, want, f.logs)
	}
	if h := f.fresh.Health(time.Now(), time.Second, time.Second, true); !h.Ready {
		t.Errorf("not ready after a complete pass: %+v", h)
	}

	f.setEnvs(t, env("envA", "ser.a"), env("envC", "ser.c"))
	n := f.api.RequestCount()
	f.poll(t)
	if got, want := served(f.reg, keys...), staticClient+":200 "+staticServer+":200 envA:200 ser.a:200 envB:401 ser.b:401 envC:200 ser.c:200"; got != want {
		t.Fatalf("after envB left and envC came:\n got %s\nwant %s\n%s", got, want, f.logs)
	}
	var fetched []string
	for _, r := range f.api.Requests()[n:] {
		fetched = append(fetched, r.Path+" "+r.EnvironmentKey)
	}
	want := []string{"/api/v1/proxy/config/ ", "/api/v1/environment-document/ " + staticServer,
		"/api/v1/environment-document/ ser.a", "/api/v1/environment-document/ ser.c"}
	if !slices.Equal(fetched, want) {
		t.Errorf("second pass requests:\n got %q\nwant %q", fetched, want)
	}
	for _, line := range []string{"environment added", "environment removed"} {
		if !strings.Contains(f.logs.String(), line) {
			t.Errorf("no %q log line:\n%s", line, f.logs)
		}
	}
}

// TestDiscoveryFailuresKeepSet: whatever goes wrong with the configuration
// call (network, status, body, a rejected proxy key), the environments
// known stay, keep their documents, and still have them refreshed in the
// same pass; the failure is logged with the proxy key redacted.
func TestDiscoveryFailuresKeepSet(t *testing.T) {
	tests := []struct {
		name  string
		fail  func(api *fakeapi.Server)
		want  string // in the logged error
		fresh bool   // documents are still refreshed in the failing pass
	}{
		{"down", func(a *fakeapi.Server) { a.Fail(fakeapi.FaultDown, -1) }, "connection refused", false},
		{"hang", func(a *fakeapi.Server) { a.Fail(fakeapi.FaultHang, 1) }, "no complete answer within", true},
		{"500", func(a *fakeapi.Server) { a.Fail(fakeapi.Fault500, 1) }, "500", true},
		{"403", func(a *fakeapi.Server) { a.Fail(fakeapi.Fault403, 1) }, "403", true},
		{"401 proxy key rejected", func(a *fakeapi.Server) { a.SetProxyKey("pk_rotated_upstream") }, "401", true},
		{"invalid JSON", func(a *fakeapi.Server) { a.Fail(fakeapi.FaultInvalidJSON, 1) }, "invalid proxy configuration", true},
		{"object", func(a *fakeapi.Server) { a.Fail(fakeapi.FaultWrongShape, 1) }, "not a JSON array", true},
		{"entries of the wrong shape", func(a *fakeapi.Server) {
			a.Fail(fakeapi.FaultWrongShape, 2)
			// The first shape goes to a throwaway request, so the poll
			// gets the second: an array of objects without keys.
			_, _ = http.Get(a.URL() + "/proxy/config/")
		}, "client_side_key must be a string", true},
		{"redirect not followed", func(a *fakeapi.Server) { a.Fail(fakeapi.FaultRedirectLoop, 1) }, "302", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newDiscoveryFixture(t, env("envA", "ser.a"))
			f.poller.Timeout = 300 * time.Millisecond
			f.poll(t)
			envA := f.reg.Env("envA")
			if envA == nil || envA.Snapshot() == nil {
				t.Fatalf("envA not served after the first pass:\n%s", f.logs)
			}
			first := envA.Snapshot()
			f.api.SetDocument("ser.a", docFor(t, "envA", 2))
			f.api.SetProxyEnvironments(nil) // were the call to succeed, envA would go
			tt.fail(f.api)
			f.poll(t)
			if f.reg.Env("envA") != envA || f.reg.Env(staticClient) == nil {
				t.Fatal("a failed configuration call changed the set")
			}
			if got := served(f.reg, "envA", "ser.a", staticServer); got != "envA:200 ser.a:200 "+staticServer+":200" {
				t.Fatalf("after the failure: %s", got)
			}
			if refreshed := envA.Snapshot() != first; refreshed != tt.fresh {
				t.Errorf("envA's document refreshed in the failing pass: %v, want %v\n%s", refreshed, tt.fresh, f.logs)
			}
			logs := f.logs.String()
			if !strings.Contains(logs, "proxy configuration fetch failed") || !strings.Contains(logs, tt.want) {
				t.Errorf("log does not explain the failure (%q):\n%s", tt.want, logs)
			}
			if strings.Contains(logs, testProxyKey) || !strings.Contains(logs, "proxy_key=pk_p…") {
				t.Errorf("the proxy key is not redacted in the logs:\n%s", logs)
			}
			if strings.HasPrefix(tt.name, "401") && !strings.Contains(logs, "hint=") {
				t.Errorf("a rejected proxy key without a hint:\n%s", logs)
			}
			// Recovery: the next good answer is applied (envA is gone).
			f.api.Fail(fakeapi.FaultNone, 0)
			f.api.SetProxyKey(testProxyKey)
			f.poll(t)
			if got := served(f.reg, "envA", "ser.a", staticServer); got != "envA:401 ser.a:401 "+staticServer+":200" {
				t.Fatalf("after recovery: %s\n%s", got, f.logs)
			}
		})
	}
}

// TestProxyKeyOnDocumentFetches: in proxy-key mode every document request,
// every page, static and discovered, carries X-Proxy-Key beside the server
// key; without a proxy key none does and the configuration is never asked.
func TestProxyKeyOnDocumentFetches(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(map[bool]string{true: "proxy key", false: "no proxy key"}[on], func(t *testing.T) {
			f := newDiscoveryFixture(t, env("envA", "ser.a"))
			if !on {
				f.poller.ProxyKey = ""
			}
			f.api.SetPageSize(1)
			f.poll(t)
			docs, configs := 0, 0
			for _, r := range f.api.Requests() {
				switch r.Path {
				case "/api/v1/proxy/config/":
					configs++
					if r.ProxyKey != testProxyKey || r.EnvironmentKey != "" {
						t.Errorf("configuration asked with X-Proxy-Key %q, X-Environment-Key %q", r.ProxyKey, r.EnvironmentKey)
					}
				case "/api/v1/environment-document/":
					docs++
					if want := map[bool]string{true: testProxyKey}[on]; r.ProxyKey != want {
						t.Errorf("document page %v for %s: X-Proxy-Key %q, want %q", r.Query, r.EnvironmentKey, r.ProxyKey, want)
					}
					if !strings.HasPrefix(r.EnvironmentKey, "ser.") {
						t.Errorf("document fetched with %q", r.EnvironmentKey)
					}
				}
			}
			wantConfigs := map[bool]int{true: 1, false: 0}[on]
			if configs != wantConfigs || docs < 3 {
				t.Errorf("%d configuration and %d document requests, want %d and several pages", configs, docs, wantConfigs)
			}
		})
	}
}

// TestRotationThroughPoller: a new server key is used as soon as it is
// listed; the old one, deactivated, is refused at once, and the document
// is kept under the client key throughout.
func TestRotationThroughPoller(t *testing.T) {
	f := newDiscoveryFixture(t, env("envA", "ser.a1"))
	f.poll(t)
	envA := f.reg.Env("envA")
	snap := envA.Snapshot()
	if snap == nil {
		t.Fatal(f.logs)
	}
	later := time.Now().Add(time.Hour)
	rotated := fakeapi.ProxyEnvironment{ClientSideKey: "envA", ServerSideKeys: []fakeapi.ProxyServerKey{
		{Key: "ser.a1", Active: false},
		{Key: "ser.a2", Active: true, ExpiresAt: &later},
	}}
	f.api.SetDocument("ser.a2", docFor(t, "envA", 1))
	f.api.SetProxyEnvironments([]fakeapi.ProxyEnvironment{rotated})
	n := f.api.RequestCount()
	f.poll(t)
	if got := served(f.reg, "envA", "ser.a1", "ser.a2"); got != "envA:200 ser.a1:401 ser.a2:200" {
		t.Fatalf("after rotation: %s\n%s", got, f.logs)
	}
	if f.reg.Env("envA") != envA || envA.Snapshot() != snap {
		t.Error("rotation replaced the environment or its document")
	}
	for _, r := range f.api.Requests()[n:] {
		if r.Path == "/api/v1/environment-document/" && r.EnvironmentKey == "ser."+"a1" {
			t.Error("the deactivated key was still used to fetch the document")
		}
	}
	if h := f.fresh.Health(time.Now(), time.Second, time.Second, true); !h.Ready {
		t.Errorf("not ready after rotation: %+v\n%s", h, f.logs)
	}
}

// TestDiscoveryColdStart: with the upstream down at start-up, discovery is
// retried after 1 s, 2 s, … like a document, not after a whole interval.
func TestDiscoveryColdStart(t *testing.T) {
	f := newDiscoveryFixture(t, env("envA", "ser.a"))
	f.poller.Interval = 30 * time.Second
	f.api.Fail(fakeapi.FaultDown, -1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.poller.Run(ctx)
	time.Sleep(1500 * time.Millisecond)
	f.api.Fail(fakeapi.FaultNone, 0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if e := f.reg.Env("envA"); e != nil && e.Snapshot() != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("envA not served 5 s after the upstream came up, with a 30 s interval:\n%s", f.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestParseProxyConfig(t *testing.T) {
	tests := []struct {
		name, body string
		want       []registry.Discovered // nil with err
		err        string
	}{
		{"contract shape", `[{"id":30,"name":"Test Environment","client_side_key":"abc123",
			"server_side_keys":[{"key":"ser.abc","active":true,"expires_at":null},{"key":"ser.new","active":false,"expires_at":"2026-09-01T00:00:00Z"}],
			"updated_at":"2026-08-15T08:57:43.311081Z","project_id":35,"organisation_id":82}]`,
			[]registry.Discovered{{ClientKey: "abc123", ServerKeys: []registry.ServerKey{
				{Key: "ser.abc", Active: true}, {Key: "ser.new", ExpiresAt: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)}}}}, ""},
		{"empty", `[]`, []registry.Discovered{}, ""},
		{"keys missing: none", `[{"client_side_key":"a"}]`, []registry.Discovered{{ClientKey: "a"}}, ""},
		{"expires_at missing: never", `[{"client_side_key":"a","server_side_keys":[{"key":"ser.a","active":true}]}]`,
			[]registry.Discovered{{ClientKey: "a", ServerKeys: []registry.ServerKey{{Key: "ser.a", Active: true}}}}, ""},
		{"offset timestamp", `[{"client_side_key":"a","server_side_keys":[{"key":"ser.a","active":true,"expires_at":"2026-09-01T02:00:00.5+02:00"}]}]`,
			[]registry.Discovered{{ClientKey: "a", ServerKeys: []registry.ServerKey{{Key: "ser.a", Active: true, ExpiresAt: time.Date(2026, 9, 1, 0, 0, 0, 5e8, time.UTC)}}}}, ""},
		{"null", `null`, nil, "not a JSON array"},
		{"object", `{"client_side_key":"a"}`, nil, "not a JSON array"},
		{"truncated", `[{"client_side_key":"a"`, nil, "invalid proxy configuration"},
		{"entry not an object", `["a"]`, nil, "entry 0 is not an object"},
		{"no client key", `[{"server_side_keys":[]}]`, nil, "client_side_key must be a string"},
		{"client key null", `[{"client_side_key":null}]`, nil, "client_side_key must be a string"},
		{"client key number", `[{"client_side_key":1}]`, nil, "client_side_key must be a string"},
		{"client key wrong case", `[{"Client_Side_Key":"a"}]`, nil, "client_side_key must be a string"},
		{"keys null", `[{"client_side_key":"a","server_side_keys":null}]`, nil, "server_side_keys is not an array"},
		{"key without active", `[{"client_side_key":"a","server_side_keys":[{"key":"ser.a"}]}]`, nil, "active must be a boolean"},
		{"active a string", `[{"client_side_key":"a","server_side_keys":[{"key":"ser.a","active":"true"}]}]`, nil, "active must be a boolean"},
		{"key a number", `[{"client_side_key":"a","server_side_keys":[{"key":5,"active":true}]}]`, nil, "key must be a string"},
		{"bad timestamp", `[{"client_side_key":"a","server_side_keys":[{"key":"ser.a","active":true,"expires_at":"tomorrow"}]}]`, nil, "not an RFC 3339 timestamp"},
		{"timestamp a number", `[{"client_side_key":"a","server_side_keys":[{"key":"ser.a","active":true,"expires_at":1}]}]`, nil, "expires_at must be a timestamp or null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProxyConfig([]byte(tt.body))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.ClientKey != w.ClientKey || !slices.EqualFunc(g.ServerKeys, w.ServerKeys, func(a, b registry.ServerKey) bool {
					return a.Key == b.Key && a.Active == b.Active && a.ExpiresAt.Equal(b.ExpiresAt)
				}) {
					t.Errorf("entry %d: got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

// TestDiscoveredWarmStart: with snapshot_dir set, a discovered environment
// gets its saved document when discovery adds it, so a restart whose
// document fetch fails still serves it (readiness stays honest).
func TestDiscoveredWarmStart(t *testing.T) {
	dir := t.TempDir()
	f := newDiscoveryFixture(t, env("envA", "ser.a"))
	f.poller.Snapshots = &SnapshotDir{Dir: dir}
	f.poll(t)
	if f.reg.Env("envA").Snapshot() == nil {
		t.Fatal(f.logs)
	}
	g := newDiscoveryFixture(t, env("envA", "ser.a"))
	g.poller.Snapshots = &SnapshotDir{Dir: dir}
	g.api.SetDocument("ser.a", nil) // the document fetch now gets 403
	g.poll(t)
	e := g.reg.Env("envA")
	if e == nil || e.Snapshot() == nil || !g.fresh.Warm(e) {
		t.Fatalf("the added environment did not get its saved document:\n%s", g.logs)
	}
	if h := g.fresh.Health(time.Now(), time.Second, time.Second, true); h.Ready {
		t.Error("ready on a warm-start document the upstream never confirmed")
	}
}
