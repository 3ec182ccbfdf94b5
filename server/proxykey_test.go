package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/internal/fakeapi"
	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/source"
	"github.com/fledge-flags/fledge/usage"
)

// TestUsageCounting: with usage counting on, each 2xx answer of the three
// resources adds one to its environment's counter, whichever key was
// presented; errors, 304s and other endpoints add nothing. Off, nothing
// is counted.
func TestUsageCounting(t *testing.T) {
	tests := []struct {
		name, method, path, key, body string
		extra                         []string
		want                          [registry.NumResources]int64
	}{
		{"flags, client key", "GET", "/api/v1/flags/", clientKey, "", nil, [3]int64{1, 0, 0}},
		{"flags, server key", "GET", "/api/v1/flags", serverKey, "", nil, [3]int64{1, 0, 0}},
		{"one flag", "GET", "/api/v1/flags/?feature=new_checkout", clientKey, "", nil, [3]int64{1, 0, 0}},
		{"flags HEAD", "HEAD", "/api/v1/flags/", clientKey, "", nil, [3]int64{1, 0, 0}},
		{"identity GET", "GET", "/api/v1/identities/?identifier=u1", clientKey, "", nil, [3]int64{0, 1, 0}},
		{"identity POST", "POST", "/api/v1/identities/", serverKey, `{"identifier":"u1","traits":[]}`, nil, [3]int64{0, 1, 0}},
		{"document", "GET", "/api/v1/environment-document/", serverKey, "", nil, [3]int64{0, 0, 1}},
		{"unknown feature: 404", "GET", "/api/v1/flags/?feature=nope", clientKey, "", nil, [3]int64{}},
		{"unknown key: 401", "GET", "/api/v1/flags/", "nope", "", nil, [3]int64{}},
		{"no key: 401", "GET", "/api/v1/flags/", "", "", nil, [3]int64{}},
		{"document, client key: 401", "GET", "/api/v1/environment-document/", clientKey, "", nil, [3]int64{}},
		{"document not modified: 304", "GET", "/api/v1/environment-document/", serverKey, "", []string{"If-Modified-Since", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}, [3]int64{}},
		{"identity without identifier: 422", "GET", "/api/v1/identities/", clientKey, "", nil, [3]int64{}},
		{"identity bad body: 422", "POST", "/api/v1/identities/", clientKey, `{"traits":1}`, nil, [3]int64{}},
		{"analytics: not a resource", "POST", "/api/v1/analytics/flags/", clientKey, `{"new_checkout":1}`, nil, [3]int64{}},
		{"wrong method: 405", "POST", "/api/v1/flags/", clientKey, "", nil, [3]int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, on := range []bool{true, false} {
				h, env := newTestHandler(t, func(o *Options) { o.CountUsage = on })
				headers := append([]string{"X-Environment-Key", tt.key}, tt.extra...)
				rec := do(h, tt.method, tt.path, tt.body, headers...)
				want := tt.want
				if !on {
					want = [3]int64{}
				}
				if got := env.TakeUses(); got != want {
					t.Errorf("counting %v: status %d, counted %v, want %v", on, rec.Code, got, want)
				}
			}
		})
	}
}

// TestCountingDoesNotAllocate: counting adds nothing to a request's
// allocations.
func TestCountingDoesNotAllocate(t *testing.T) {
	allocs := func(on bool) float64 {
		h, _ := newTestHandler(t, func(o *Options) { o.CountUsage = on })
		req := httptest.NewRequest("GET", "/api/v1/flags/", nil)
		req.Header.Set("X-Environment-Key", clientKey)
		w := &discardWriter{h: http.Header{}}
		return testing.AllocsPerRun(200, func() {
			clear(w.h)
			h.ServeHTTP(w, req)
		})
	}
	if off, on := allocs(false), allocs(true); on > off {
		t.Errorf("counting on: %v allocations per request, off: %v", on, off)
	}
}

// proxyKeyRig is the real handler over HTTP, fed by the real poller in
// proxy-key mode from a stand-in Flagsmith API, with usage reporting: the
// whole proxy-key path but the binary.
type proxyKeyRig struct {
	api    *fakeapi.Server
	reg    *registry.Registry
	poller *source.Poller
	rep    *usage.Reporter
	url    string
	doc    []byte // the example environment's document
}

const rigProxyKey = "pk_rig_secret_0123456789"

func newProxyKeyRig(t *testing.T) *proxyKeyRig {
	t.Helper()
	_, env := newTestHandler(t, nil) // only for the example document
	doc := env.Snapshot().Document.JSON
	api := fakeapi.New()
	t.Cleanup(api.Close)
	api.SetProxyKey(rigProxyKey)
	api.SetDocument(serverKey, doc) // the static pair's
	reg := registry.New([]registry.Pair{{ClientKey: clientKey, ServerKey: serverKey}})
	fresh := source.NewFreshness(reg)
	fresh.EnableDiscovery()
	logger := slog.New(slog.DiscardHandler)
	p := &source.Poller{APIURL: api.URL(), Interval: time.Hour, Timeout: 2 * time.Second, Client: source.NewHTTPClient(),
		Registry: reg, Freshness: fresh, Logger: logger, ProxyKey: rigProxyKey}
	rep := usage.New(usage.Options{APIURL: api.URL(), ProxyKey: rigProxyKey, Registry: reg, Logger: logger})
	t.Cleanup(rep.Close)
	h := New(Options{Registry: reg, Readiness: fresh, Logger: logger, CountUsage: true, PollInterval: time.Hour, Grace: time.Hour, GraceEnabled: true})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &proxyKeyRig{api: api, reg: reg, poller: p, rep: rep, url: srv.URL, doc: doc}
}

// docAs is the example document under another client key.
func (r *proxyKeyRig) docAs(t *testing.T, client string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.doc, &m); err != nil {
		t.Fatal(err)
	}
	m["api_key"], _ = json.Marshal(client)
	b, _ := json.Marshal(m)
	return b
}

func (r *proxyKeyRig) list(t *testing.T, envs ...fakeapi.ProxyEnvironment) {
	t.Helper()
	for _, e := range envs {
		for _, k := range e.ServerSideKeys {
			r.api.SetDocument(k.Key, r.docAs(t, e.ClientSideKey))
		}
	}
	r.api.SetProxyEnvironments(envs)
}

func (r *proxyKeyRig) pass(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.poller.PollOnce(ctx)
}

func (r *proxyKeyRig) status(t *testing.T, path, key string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.url+path, nil)
	req.Header.Set("X-Environment-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// statuses answers path with each key in turn.
func (r *proxyKeyRig) statuses(t *testing.T, path string, keys ...string) string {
	t.Helper()
	var out []string
	for _, k := range keys {
		out = append(out, k+":"+http.StatusText(r.status(t, path, k)))
	}
	return strings.Join(out, " ")
}

func discovered(client string, keys ...fakeapi.ProxyServerKey) fakeapi.ProxyEnvironment {
	return fakeapi.ProxyEnvironment{ClientSideKey: client, ServerSideKeys: keys}
}

func activeKey(k string) fakeapi.ProxyServerKey { return fakeapi.ProxyServerKey{Key: k, Active: true} }

// TestProxyKeyDiscoveryServed: environments come and go without a restart,
// a rotated key answers and the retired one gets 401, the static pair
// serves throughout, and a failed or refused discovery changes nothing.
func TestProxyKeyDiscoveryServed(t *testing.T) {
	r := newProxyKeyRig(t)
	const flags, doc = "/api/v1/flags/", "/api/v1/environment-document/"
	r.list(t, discovered("envA", activeKey("ser.a1")), discovered("envB", activeKey("ser.b1")))
	if got := r.statuses(t, flags, "envA", "ser.a1"); got != "envA:Unauthorized ser.a1:Unauthorized" {
		t.Fatalf("before the first pass: %s", got)
	}
	r.pass(t)
	keys := []string{clientKey, serverKey, "envA", "ser.a1", "envB", "ser.b1"}
	if got, want := r.statuses(t, flags, keys...), clientKey+":OK "+serverKey+":OK envA:OK ser.a1:OK envB:OK ser.b1:OK"; got != want {
		t.Fatalf("after the first pass:\n got %s\nwant %s", got, want)
	}

	// envB removed, envA rotated: ser.a2 added (expiring later), ser.a1
	// deactivated.
	later := time.Now().Add(time.Hour)
	r.list(t, discovered("envA", fakeapi.ProxyServerKey{Key: "ser.a1"}, fakeapi.ProxyServerKey{Key: "ser.a2", Active: true, ExpiresAt: &later}))
	r.pass(t)
	keys = append(keys, "ser.a2")
	if got, want := r.statuses(t, flags, keys...), clientKey+":OK "+serverKey+":OK envA:OK ser.a1:Unauthorized envB:Unauthorized ser.b1:Unauthorized ser.a2:OK"; got != want {
		t.Fatalf("after removal and rotation:\n got %s\nwant %s", got, want)
	}
	if got := r.statuses(t, doc, "ser.a2", "ser.a1", "ser.b1"); got != "ser.a2:OK ser.a1:Unauthorized ser.b1:Unauthorized" {
		t.Fatalf("environment document after rotation: %s", got)
	}

	// The upstream fails, then refuses the proxy key: nothing changes.
	r.api.SetProxyEnvironments(nil)
	r.api.Fail(fakeapi.Fault500, 1)
	r.pass(t)
	r.api.SetProxyKey("pk_someone_else")
	r.pass(t)
	r.api.Fail(fakeapi.Fault403, 1)
	r.pass(t)
	if got, want := r.statuses(t, flags, clientKey, "envA", "ser.a2"), clientKey+":OK envA:OK ser.a2:OK"; got != want {
		t.Fatalf("after failed discoveries:\n got %s\nwant %s", got, want)
	}
	// Accepted again, and empty: every discovered environment goes; the
	// static pair stays.
	r.api.SetProxyKey(rigProxyKey)
	r.pass(t)
	if got, want := r.statuses(t, flags, clientKey, serverKey, "envA", "ser.a2"), clientKey+":OK "+serverKey+":OK envA:Unauthorized ser.a2:Unauthorized"; got != want {
		t.Fatalf("after an empty configuration:\n got %s\nwant %s", got, want)
	}
}

// TestProxyKeyUsageReported: what the server answered, by environment and
// resource, reaches /proxy/usage/ under the client keys, static and
// discovered; failures are not counted.
func TestProxyKeyUsageReported(t *testing.T) {
	r := newProxyKeyRig(t)
	r.list(t, discovered("envA", activeKey("ser.a1")))
	r.pass(t)
	for _, req := range []struct{ path, key string }{
		{"/api/v1/flags/", "envA"},
		{"/api/v1/flags/", "ser.a1"},
		{"/api/v1/identities/?identifier=u", "envA"},
		{"/api/v1/environment-document/", "ser.a1"},
		{"/api/v1/flags/", clientKey},
		{"/api/v1/environment-document/", serverKey},
		{"/api/v1/flags/", "unknown"},
		{"/api/v1/flags/?feature=nope", "envA"},
	} {
		r.status(t, req.path, req.key)
	}
	if err := r.rep.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]int64{
		"envA":    {"flags": 2, "identities": 1, "environment-document": 1},
		clientKey: {"flags": 1, "environment-document": 1},
	}
	if got := r.api.UsageTotals(); !reflect.DeepEqual(got, want) {
		t.Errorf("usage %v, want %v", got, want)
	}
	var marked, unmarked int
	for _, req := range r.api.Requests() {
		if req.Path == "/api/v1/environment-document/" {
			if req.ProxyKey == rigProxyKey {
				marked++
			} else {
				unmarked++
			}
		}
	}
	if marked != 2 || unmarked != 0 {
		t.Errorf("document fetches: %d with X-Proxy-Key, %d without; want 2 and 0", marked, unmarked)
	}
}
