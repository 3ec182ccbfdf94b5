package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/analytics"
	"github.com/fledge-flags/fledge/internal/fakeapi"
)

// analyticsRig is Fledge's handler with flag analytics on, served over real
// HTTP, forwarding to a stand-in Flagsmith API that serves the example
// environment.
type analyticsRig struct {
	api  *fakeapi.Server
	url  string // Fledge
	fw   *analytics.Forwarder
	logs *bytes.Buffer
}

func newAnalyticsRig(t *testing.T) *analyticsRig {
	t.Helper()
	agg := analytics.NewAggregator(0)
	h, env := newTestHandler(t, func(o *Options) { o.Analytics = agg })
	api := fakeapi.New()
	t.Cleanup(api.Close)
	api.SetDocument(serverKey, env.Snapshot().Document.JSON)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	logs := &bytes.Buffer{} // written by Flush, in the test's goroutine
	fw := analytics.NewForwarder(agg, analytics.ForwarderOptions{
		APIURL: api.URL(),
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	return &analyticsRig{api: api, url: srv.URL, fw: fw, logs: logs}
}

// post sends a report as the SDKs do, with their headers, and expects 200.
func (r *analyticsRig) post(t *testing.T, path, key, body string, extra ...string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Environment-Key", key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "flagsmith-go-sdk/v4")
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s, want 200", path, resp.StatusCode, b)
	}
}

func (r *analyticsRig) flush(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.fw.Flush(ctx)
}

// TestAnalyticsForwarded: SDK reports, v1 and v2, with either key and
// either path form, arrive summed at the upstream on the next flush: one
// POST to {api_url}/analytics/flags/ with the client-side key.
func TestAnalyticsForwarded(t *testing.T) {
	r := newAnalyticsRig(t)
	r.post(t, "/api/v1/analytics/flags/", serverKey, `{"new_checkout":3,"banner_colour":1}`)
	r.post(t, "/api/v1/analytics/flags", clientKey, `{"new_checkout":2}`)
	r.post(t, "/api/v2/analytics/flags/", clientKey,
		`{"evaluations":[{"feature_name":"max_upload_mb","identity_identifier":"u1","enabled_when_evaluated":true,"count":4},`+
			`{"feature_name":"max_upload_mb","enabled_when_evaluated":false,"count":1}]}`)
	if n := r.api.RequestCount(); n != 0 {
		t.Fatalf("%d upstream requests before the flush, want 0", n)
	}
	if err := r.flush(t); err != nil {
		t.Fatal(err)
	}
	reqs := r.api.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d upstream requests, want 1", len(reqs))
	}
	if reqs[0].Method != http.MethodPost || reqs[0].Path != "/api/v1/analytics/flags/" || reqs[0].EnvironmentKey != clientKey {
		t.Errorf("upstream got %s %s with key %q; want POST /api/v1/analytics/flags/ with the client-side key",
			reqs[0].Method, reqs[0].Path, reqs[0].EnvironmentKey)
	}
	want := map[string]int64{"new_checkout": 5, "banner_colour": 1, "max_upload_mb": 5}
	if got := r.api.AnalyticsTotals(serverKey); !reflect.DeepEqual(got, want) {
		t.Errorf("upstream totals %v, want %v", got, want)
	}
}

// TestAnalyticsUpstreamSeesOnlyTheReport: whatever SDKs send, the upstream
// gets the documented request and nothing else: no server key, no client
// headers, no identities, no unknown names, only integer counts.
func TestAnalyticsUpstreamSeesOnlyTheReport(t *testing.T) {
	r := newAnalyticsRig(t)
	r.post(t, "/api/v1/analytics/flags/?identity_identifier=secret-user", serverKey,
		`{"new_checkout":1,"secret_name":2,"banner_colour":"3","max_upload_mb":1.5}`,
		"Authorization", "Bearer secret-token", "Cookie", "session=secret-cookie", "X-Forwarded-For", "10.9.9.9")
	r.post(t, "/api/v2/analytics/flags/", serverKey,
		`{"evaluations":[{"feature_name":"new_checkout","identity_identifier":"secret-user","enabled_when_evaluated":true,"count":2}]}`,
		"Flagsmith-Application-Name", "secret-app")
	if err := r.flush(t); err != nil {
		t.Fatal(err)
	}
	reqs := r.api.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d upstream requests, want 1", len(reqs))
	}
	req := reqs[0]
	allowed := []string{"Accept-Encoding", "Content-Length", "Content-Type", "User-Agent", "X-Environment-Key"}
	for name, values := range req.Header {
		if !slices.Contains(allowed, name) {
			t.Errorf("upstream got header %s: %q", name, values)
		}
		for _, v := range values {
			if strings.Contains(v, serverKey[4:]) || strings.Contains(v, "secret") {
				t.Errorf("upstream header %s carries %q", name, v)
			}
		}
	}
	if req.EnvironmentKey != clientKey {
		t.Errorf("X-Environment-Key %q, want the client-side key", req.EnvironmentKey)
	}
	if len(req.Query) != 0 {
		t.Errorf("upstream query %v, want none", req.Query)
	}
	if bytes.Contains(req.Body, []byte("secret")) || bytes.Contains(req.Body, []byte(serverKey[4:])) {
		t.Errorf("upstream body %s carries what it must not", req.Body)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatalf("upstream body %s is not an object: %v", req.Body, err)
	}
	if want := map[string]json.RawMessage{"new_checkout": json.RawMessage("3")}; !reflect.DeepEqual(body, want) {
		t.Errorf("upstream body %s, want {\"new_checkout\":3}", req.Body)
	}
}

// TestAnalyticsUpstream500: a 500 from the upstream is retried once, with
// the next flush, then dropped with a log line that names the key redacted.
func TestAnalyticsUpstream500(t *testing.T) {
	r := newAnalyticsRig(t)
	r.api.Fail(fakeapi.Fault500, 2)
	r.post(t, "/api/v1/analytics/flags/", clientKey, `{"new_checkout":1}`)
	if err := r.flush(t); err == nil {
		t.Fatal("first flush: no error")
	}
	r.post(t, "/api/v1/analytics/flags/", clientKey, `{"banner_colour":1}`)
	if err := r.flush(t); err == nil {
		t.Fatal("second flush: no error")
	}
	if err := r.flush(t); err != nil {
		t.Fatalf("third flush: %v", err)
	}
	// new_checkout failed twice: dropped. banner_colour failed once: sent.
	if got := r.api.AnalyticsTotals(serverKey); !reflect.DeepEqual(got, map[string]int64{"banner_colour": 1}) {
		t.Errorf("upstream totals %v, want banner_colour:1 only", got)
	}
	if n := r.api.RequestCount(); n != 3 {
		t.Errorf("%d upstream requests, want 3", n)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "forwarding failed twice") || !strings.Contains(logs, "client_key=exam…") {
		t.Errorf("no drop line with the redacted key:\n%s", logs)
	}
	if strings.Contains(logs, clientKey) || strings.Contains(logs, serverKey) {
		t.Errorf("the log shows a whole key:\n%s", logs)
	}
}

// TestAnalyticsRequests: what the endpoint answers with analytics on.
func TestAnalyticsRequests(t *testing.T) {
	agg := analytics.NewAggregator(0)
	h, _ := newTestHandler(t, func(o *Options) { o.Analytics = agg; o.MaxBodyBytes = 64 })
	if rec := do(h, "POST", "/api/v1/analytics/flags/", `{"new_checkout":1}`, "X-Environment-Key", "nope"); rec.Code != http.StatusUnauthorized {
		t.Errorf("unknown key: %d, want 401", rec.Code)
	}
	if rec := do(h, "POST", "/api/v1/analytics/flags/", `not json`, "X-Environment-Key", clientKey); rec.Code != http.StatusOK {
		t.Errorf("malformed report: %d, want 200 (dropped, not refused)", rec.Code)
	}
	big := `{"new_checkout":1` + strings.Repeat(" ", 64) + `}`
	if rec := do(h, "POST", "/api/v1/analytics/flags/", big, "X-Environment-Key", clientKey); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("report over max_body_bytes: %d, want 413", rec.Code)
	}
	if rec := do(h, "GET", "/api/v2/analytics/flags/", "", "X-Environment-Key", clientKey); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", rec.Code)
	}
	if s := agg.Stats(); s.Invalid != 1 {
		t.Errorf("stats %+v, want the malformed report counted", s)
	}
}
