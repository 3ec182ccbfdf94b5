package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/source"
)

const (
	clientKey = "exampleClientKey0000001"
	serverKey = "ser.exampleServerKey00001"
)

// newTestHandler serves the repository's example environment.
func newTestHandler(t testing.TB, mutate func(*Options)) (*Handler, *registry.Env) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "examples", "environment.json"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := source.Build(raw, nil, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New([]registry.Pair{{ClientKey: clientKey, ServerKey: serverKey}})
	env := reg.Envs()[0]
	fresh := source.NewFreshness(reg)
	fresh.MarkFetched(env, time.Now())
	env.Store(snap)
	opt := Options{Registry: reg, Readiness: fresh, AllowOrigins: []string{"*"}, PollInterval: 10 * time.Second, Grace: 30 * time.Second, GraceEnabled: true}
	if mutate != nil {
		mutate(&opt)
	}
	return New(opt), env
}

func do(h http.Handler, method, target string, body string, headers ...string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRoutingAndMethods(t *testing.T) {
	h, _ := newTestHandler(t, nil)
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/flags/", 200},
		{"GET", "/api/v1/flags", 200},
		{"HEAD", "/api/v1/flags/", 200},
		{"POST", "/api/v1/flags/", 405},
		{"GET", "/api/v1/identities/?identifier=a", 200},
		{"GET", "/api/v1/identities?identifier=a", 200},
		{"DELETE", "/api/v1/identities/", 405},
		{"GET", "/api/v1/nope/", 404},
		{"GET", "/", 404},
		{"POST", "/api/v1/analytics/flags/", 200},
		{"GET", "/proxy/health/liveness", 200},
		{"GET", "/proxy/health", 200},
		{"GET", "/health", 200},
	}
	for _, tt := range tests {
		rec := do(h, tt.method, tt.path, "", "X-Environment-Key", clientKey)
		if rec.Code != tt.want {
			t.Errorf("%s %s = %d, want %d: %s", tt.method, tt.path, rec.Code, tt.want, rec.Body)
		}
		if rec.Code >= 300 && rec.Code < 400 {
			t.Errorf("%s %s redirected", tt.method, tt.path)
		}
		if rec.Code >= 400 && !json.Valid(rec.Body.Bytes()) {
			t.Errorf("%s %s error body is not JSON: %q", tt.method, tt.path, rec.Body)
		}
	}
}

func TestCORS(t *testing.T) {
	h, _ := newTestHandler(t, func(o *Options) { o.AllowOrigins = []string{"https://app.example.com"} })
	pre := do(h, "OPTIONS", "/api/v1/identities/", "", "Origin", "https://app.example.com",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "x-environment-key, content-type, flagsmith-sdk-user-agent")
	if pre.Code != 200 {
		t.Fatalf("preflight = %d", pre.Code)
	}
	if got := pre.Header().Get("Access-Control-Allow-Origin"); got != "https://app.example.com" {
		t.Errorf("Allow-Origin = %q", got)
	}
	if got := pre.Header().Get("Access-Control-Allow-Headers"); !strings.Contains(got, "flagsmith-sdk-user-agent") {
		t.Errorf("Allow-Headers = %q", got)
	}
	if got := pre.Header().Get("Access-Control-Allow-Methods"); !strings.Contains(got, "POST") {
		t.Errorf("Allow-Methods = %q", got)
	}
	get := do(h, "GET", "/api/v1/flags/", "", "Origin", "https://app.example.com", "X-Environment-Key", clientKey)
	if got := get.Header().Get("Access-Control-Expose-Headers"); !strings.Contains(got, "X-Flagsmith-Document-Updated-At") {
		t.Errorf("Expose-Headers = %q", got)
	}
	other := do(h, "GET", "/api/v1/flags/", "", "Origin", "https://evil.example.com", "X-Environment-Key", clientKey)
	if got := other.Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("disallowed origin got Allow-Origin %q", got)
	}
}

func TestGzipThreshold(t *testing.T) {
	h, _ := newTestHandler(t, nil)
	small := do(h, "GET", "/api/v1/flags/?feature=new_checkout", "", "X-Environment-Key", clientKey, "Accept-Encoding", "gzip")
	if small.Header().Get("Content-Encoding") != "" {
		t.Error("compressed a response under 1000 bytes")
	}
	body := `{"identifier":"` + strings.Repeat("x", 1200) + `"}`
	big := do(h, "POST", "/api/v1/identities/", body, "X-Environment-Key", clientKey, "Accept-Encoding", "gzip, deflate")
	if big.Code != 200 || big.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("large response: %d, encoding %q", big.Code, big.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(big.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !json.Valid(plain) {
		t.Fatalf("gzip body invalid: %v", err)
	}
	ident := do(h, "POST", "/api/v1/identities/", body, "X-Environment-Key", clientKey)
	if !bytes.Equal(plain, ident.Body.Bytes()) {
		t.Error("gzip and plain bodies differ")
	}
	refused := do(h, "POST", "/api/v1/identities/", body, "X-Environment-Key", clientKey, "Accept-Encoding", "gzip;q=0")
	if refused.Header().Get("Content-Encoding") != "" {
		t.Error("compressed although gzip;q=0")
	}
}

func TestBodyLimit(t *testing.T) {
	h, _ := newTestHandler(t, func(o *Options) { o.MaxBodyBytes = 100 })
	rec := do(h, "POST", "/api/v1/identities/", `{"identifier":"`+strings.Repeat("a", 200)+`"}`, "X-Environment-Key", clientKey)
	if rec.Code != http.StatusRequestEntityTooLarge || !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
}

func TestReadinessGraceRule(t *testing.T) {
	now := time.Now()
	h, env := newTestHandler(t, func(o *Options) { o.now = func() time.Time { return now } })
	check := func(want int, reason string) {
		t.Helper()
		rec := do(h, "GET", "/proxy/health/readiness", "")
		if rec.Code != want {
			t.Fatalf("readiness = %d, want %d: %s", rec.Code, want, rec.Body)
		}
		if reason != "" && !strings.Contains(rec.Body.String(), reason) {
			t.Fatalf("body %s lacks %q", rec.Body, reason)
		}
	}
	check(200, `"status":"ok"`)
	fresh := h.opt.Readiness.(*source.Freshness)
	// poll 10s + grace 30s × 1 environment = 40s.
	fresh.MarkFetched(env, now.Add(-39*time.Second))
	check(200, "")
	fresh.MarkFetched(env, now.Add(-41*time.Second))
	check(503, source.ReasonStale)
	h.opt.GraceEnabled = false // grace: null
	check(200, "")
	if rec := do(h, "GET", "/proxy/health/liveness", ""); rec.Code != 200 {
		t.Fatal("liveness must always be 200")
	}
	reg := registry.New([]registry.Pair{{ClientKey: "a", ServerKey: "ser.a"}})
	h2 := New(Options{Registry: reg, Readiness: source.NewFreshness(reg), GraceEnabled: true, PollInterval: time.Second})
	if rec := do(h2, "GET", "/proxy/health/readiness", ""); rec.Code != 503 || !strings.Contains(rec.Body.String(), source.ReasonNotUpdated) {
		t.Fatalf("never fetched: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h2, "GET", "/api/v1/flags/", "", "X-Environment-Key", "a"); rec.Code != 503 {
		t.Fatalf("known key without a document = %d, want 503", rec.Code)
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name         string
		proxyHeaders bool
		peer, xff    string
		want         string
	}{
		{"headers off", false, "10.1.2.3:5000", "1.2.3.4", "10.1.2.3"},
		{"trusted peer", true, "10.1.2.3:5000", "1.2.3.4, 10.0.0.1", "1.2.3.4"},
		{"untrusted peer", true, "192.0.2.1:5000", "1.2.3.4", "192.0.2.1"},
		{"no header", true, "10.1.2.3:5000", "", "10.1.2.3"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.peer
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := ClientIPFunc(tt.proxyHeaders, false, trusted)(r); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestAllowClientTraitsFalse(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "examples", "environment.json"))
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.Replace(raw, []byte(`"allow_client_traits": true`), []byte(`"allow_client_traits": false`), 1)
	snap, err := source.Build(raw, nil, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	h, env := newTestHandler(t, nil)
	env.Store(snap)
	body := `{"identifier":"u1","traits":[{"trait_key":"plan","trait_value":"beta"}]}`
	client := do(h, "POST", "/api/v1/identities/", body, "X-Environment-Key", clientKey)
	server := do(h, "POST", "/api/v1/identities/", body, "X-Environment-Key", serverKey)
	if strings.Contains(client.Body.String(), `"v2"`) || strings.Contains(client.Body.String(), "trait_key") {
		t.Errorf("client key traits were used: %s", client.Body)
	}
	if !strings.Contains(server.Body.String(), `"v2"`) {
		t.Errorf("server key traits were dropped: %s", server.Body)
	}
}

func TestIdentityCache(t *testing.T) {
	h, env := newTestHandler(t, func(o *Options) { o.IdentityCacheSize = 2 })
	body := `{"identifier":"u1","traits":[{"trait_key":"plan","trait_value":"beta"}]}`
	first := do(h, "POST", "/api/v1/identities/", body, "X-Environment-Key", clientKey)
	if first.Code != 200 || !strings.Contains(first.Body.String(), `"v2"`) {
		t.Fatalf("first: %d %s", first.Code, first.Body)
	}
	if _, ok := h.cache.get(identityCacheKey(clientKey, []byte(body)), env.Snapshot()); !ok {
		t.Fatal("response not cached")
	}
	again := do(h, "POST", "/api/v1/identities/", body, "X-Environment-Key", clientKey)
	if again.Body.String() != first.Body.String() {
		t.Fatal("cached response differs")
	}
	// A new document version must not be answered from the cache.
	raw, _ := os.ReadFile(filepath.Join("..", "examples", "environment.json"))
	raw = bytes.Replace(raw, []byte(`"feature_state_value": "v2"`), []byte(`"feature_state_value": "v2-new"`), 1)
	snap, err := source.Build(raw, nil, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	env.Store(snap)
	after := do(h, "POST", "/api/v1/identities/", body, "X-Environment-Key", clientKey)
	if !strings.Contains(after.Body.String(), `"v2-new"`) {
		t.Fatalf("stale cached response after a document change: %s", after.Body)
	}
	for i := 0; i < 5; i++ {
		do(h, "POST", "/api/v1/identities/", `{"identifier":"other`+string(rune('a'+i))+`"}`, "X-Environment-Key", clientKey)
	}
	if n, _ := h.cache.stats(); n != 2 {
		t.Fatalf("cache holds %d entries, max 2", n)
	}
}

// TestBodyReadTimeout: a client that sends its headers and then stalls in
// the middle of its body gets 408 once ReadTimeout has passed, through the
// access-log wrapper too (it must let http.ResponseController reach the
// connection), and a complete body sent in time is still served.
func TestBodyReadTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, accessLog := range []bool{false, true} {
		t.Run(fmt.Sprintf("access_log=%v", accessLog), func(t *testing.T) {
			h, _ := newTestHandler(t, func(o *Options) {
				o.ReadTimeout = timeout
				o.AccessLog = accessLog
				o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			})
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close) // after the connections' cleanups, so a failure does not hang here
			for _, tt := range []struct {
				name       string
				sent, want int // body bytes sent of the 200 announced; status
			}{
				{"stalled", 20, http.StatusRequestTimeout},
				{"complete", 200, http.StatusOK},
			} {
				conn, err := net.Dial("tcp", srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close() })
				body := []byte(`{"identifier":"` + strings.Repeat("a", 200-len(`{"identifier":""}`)) + `"}`)
				head := "POST /api/v1/identities/ HTTP/1.1\r\nHost: x\r\nX-Environment-Key: " + clientKey +
					"\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
				start := time.Now()
				if _, err := conn.Write(append([]byte(head), body[:tt.sent]...)); err != nil {
					t.Fatal(err)
				}
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				got, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != tt.want {
					t.Fatalf("%s: status %d, want %d: %s", tt.name, resp.StatusCode, tt.want, got)
				}
				if tt.want != http.StatusRequestTimeout {
					continue
				}
				if el := time.Since(start); el < timeout || el > 3*time.Second {
					t.Errorf("%s: answered after %s, want just after %s", tt.name, el, timeout)
				}
				if !strings.Contains(string(got), `"request_timeout"`) {
					t.Errorf("%s: body %s, want a JSON error with code request_timeout", tt.name, got)
				}
			}
		})
	}
}
