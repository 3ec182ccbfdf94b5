package source

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/bench/workload"
	"github.com/fledge-flags/fledge/internal/fakeapi"
	"github.com/fledge-flags/fledge/registry"
)

// logBuffer collects log lines; safe for the poller's goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), substr)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type fixture struct {
	api    *fakeapi.Server
	reg    *registry.Registry
	env    *registry.Env
	fresh  *Freshness
	poller *Poller
	logs   *logBuffer
}

var profile = workload.P1

func newFixture(t *testing.T) *fixture {
	t.Helper()
	api := fakeapi.New()
	t.Cleanup(api.Close)
	api.SetDocument(workload.ServerKey(profile), workload.Document(profile, 1))
	reg := registry.New([]registry.Pair{{ClientKey: workload.ClientKey(profile), ServerKey: workload.ServerKey(profile)}})
	logs := &logBuffer{}
	fresh := NewFreshness(reg)
	p := &Poller{
		APIURL:    api.URL(),
		Interval:  time.Second,
		Timeout:   500 * time.Millisecond,
		Client:    NewHTTPClient(),
		Registry:  reg,
		Freshness: fresh,
		Logger:    slog.New(slog.NewTextHandler(logs, nil)),
	}
	return &fixture{api: api, reg: reg, env: reg.Envs()[0], fresh: fresh, poller: p, logs: logs}
}

func (f *fixture) poll(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f.poller.PollOnce(ctx)
}

func featureValue(t *testing.T, f *fixture, name string) string {
	t.Helper()
	snap := f.env.Snapshot()
	if snap == nil {
		t.Fatal("no snapshot")
	}
	var flags []struct {
		Feature struct{ Name string }
		Value   json.RawMessage `json:"feature_state_value"`
	}
	if err := json.Unmarshal(snap.FlagsJSON(1), &flags); err != nil {
		t.Fatal(err)
	}
	for _, fl := range flags {
		if fl.Feature.Name == name {
			return string(fl.Value)
		}
	}
	t.Fatalf("feature %s not served", name)
	return ""
}

// changedFeature finds a feature whose value differs between two versions
// of the workload document, so tests can tell which version is served.
func changedFeature(t *testing.T) (name, v1, v2 string) {
	t.Helper()
	values := func(doc []byte) map[string]string {
		var d struct {
			FeatureStates []struct {
				Feature struct{ Name string }
				Value   json.RawMessage `json:"feature_state_value"`
			} `json:"feature_states"`
		}
		if err := json.Unmarshal(doc, &d); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, fs := range d.FeatureStates {
			m[fs.Feature.Name] = string(fs.Value)
		}
		return m
	}
	a, b := values(workload.Document(profile, 1)), values(workload.Document(profile, 2))
	for n := range a {
		if a[n] != b[n] {
			return n, a[n], b[n]
		}
	}
	t.Fatal("versions 1 and 2 do not differ")
	return
}

// TestUpstreamFaults: whatever the upstream does wrong, the last good
// document keeps being served, each failed poll logs one line, and the
// next good poll takes the new document.
func TestUpstreamFaults(t *testing.T) {
	faults := []struct {
		fault fakeapi.Fault
		want  string // in the logged error
	}{
		{fakeapi.FaultDown, "connection refused"},
		{fakeapi.FaultHang, "no complete answer within"},
		{fakeapi.Fault500, "500"},
		{fakeapi.Fault502, "502"},
		{fakeapi.Fault403, "403"},
		{fakeapi.FaultTruncated, "GET "},
		{fakeapi.FaultInvalidJSON, "invalid"},
		{fakeapi.FaultWrongShape, "GET "},
		{fakeapi.FaultHuge, "larger than"},
		{fakeapi.FaultRedirectLoop, "redirects"},
		{fakeapi.FaultLinkLoop, "pagination loop"},
	}
	name, v1, v2 := changedFeature(t)
	for _, tc := range faults {
		t.Run(tc.fault.String(), func(t *testing.T) {
			f := newFixture(t)
			if tc.fault == fakeapi.FaultHuge {
				f.poller.MaxDocumentBytes = 1 << 20
				f.poller.Timeout = 5 * time.Second
			}
			f.poll(t)
			first := f.env.Snapshot()
			if first == nil || featureValue(t, f, name) != v1 {
				t.Fatalf("first poll did not install version 1: %s", f.logs)
			}
			f.api.SetDocument(workload.ServerKey(profile), workload.Document(profile, 2))
			f.api.Fail(tc.fault, -1)
			f.poll(t)
			f.poll(t)
			if f.env.Snapshot() != first {
				t.Fatal("a failed poll replaced the snapshot")
			}
			if n := f.logs.count("environment document fetch failed"); n != 2 {
				t.Fatalf("want one log line per failed poll (2), got %d:\n%s", n, f.logs)
			}
			if !strings.Contains(f.logs.String(), tc.want) {
				t.Fatalf("log does not explain the failure (%q):\n%s", tc.want, f.logs)
			}
			if tc.fault == fakeapi.Fault403 && !strings.Contains(f.logs.String(), "hint=") {
				t.Fatalf("403 without the diagnosis hint:\n%s", f.logs)
			}
			f.api.Fail(fakeapi.FaultNone, 0)
			f.poll(t)
			if got := featureValue(t, f, name); got != v2 {
				t.Fatalf("after recovery %s = %s, want %s\n%s", name, got, v2, f.logs)
			}
		})
	}
}

func TestNotModifiedWithoutCachedDocument(t *testing.T) {
	f := newFixture(t)
	f.api.Fail(fakeapi.Fault304, -1)
	f.poll(t)
	if f.env.Snapshot() != nil {
		t.Fatal("a 304 installed a snapshot")
	}
	if !f.fresh.LastSuccess(f.env).IsZero() {
		t.Fatal("a 304 without a cached document counted as a success")
	}
	if !strings.Contains(f.logs.String(), "no document is cached") {
		t.Fatalf("missing explanation:\n%s", f.logs)
	}
}

func TestConditionalFetch(t *testing.T) {
	f := newFixture(t)
	f.poll(t)
	snap := f.env.Snapshot()
	before := f.fresh.LastSuccess(f.env)
	time.Sleep(10 * time.Millisecond)
	f.poll(t)
	reqs := f.api.Requests()
	if len(reqs) != 2 {
		t.Fatalf("want 2 requests, got %d", len(reqs))
	}
	first, second := reqs[0], reqs[1]
	if first.Header.Get("If-Modified-Since") != "" {
		t.Error("first fetch sent If-Modified-Since")
	}
	want := snap.UpdatedAt.UTC().Format(http.TimeFormat)
	if got := second.Header.Get("If-Modified-Since"); got != want {
		t.Errorf("If-Modified-Since = %q, want %q", got, want)
	}
	if got := second.Header.Get("X-Environment-Key"); got != workload.ServerKey(profile) {
		t.Errorf("fetched with key %q, want the server key", got)
	}
	if f.env.Snapshot() != snap {
		t.Error("a 304 replaced the snapshot")
	}
	if !f.fresh.LastSuccess(f.env).After(before) {
		t.Error("a 304 did not count as a successful fetch")
	}
}

func TestPaginationMergesIdentityOverrides(t *testing.T) {
	f := newFixture(t)
	doc := workload.Document(profile, 1)
	var d struct {
		IdentityOverrides []json.RawMessage `json:"identity_overrides"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.IdentityOverrides) < 2 {
		t.Fatalf("workload document has %d identity overrides; the test needs 2 or more", len(d.IdentityOverrides))
	}
	f.api.SetPageSize(1)
	f.poll(t)
	snap := f.env.Snapshot()
	if snap == nil {
		t.Fatalf("no snapshot:\n%s", f.logs)
	}
	if n := f.api.RequestCount(); n != len(d.IdentityOverrides) {
		t.Fatalf("fetched %d pages, want %d", n, len(d.IdentityOverrides))
	}
	var served struct {
		IdentityOverrides []json.RawMessage `json:"identity_overrides"`
	}
	if err := json.Unmarshal(snap.Document.JSON, &served); err != nil {
		t.Fatal(err)
	}
	if len(served.IdentityOverrides) != len(d.IdentityOverrides) {
		t.Fatalf("served document has %d overrides, want %d", len(served.IdentityOverrides), len(d.IdentityOverrides))
	}
}

func TestLinkToAnotherOriginIsRefused(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the server key was sent to another origin: %s", r.URL)
	}))
	defer other.Close()
	doc := workload.Document(profile, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "<"+other.URL+"/api/v1/environment-document/?page_id=x>; rel=\"next\"")
		_, _ = w.Write(doc)
	}))
	defer up.Close()
	f := newFixture(t)
	f.poller.APIURL = up.URL + "/api/v1"
	f.poll(t)
	if f.env.Snapshot() != nil {
		t.Fatal("installed a document whose next page leaves the origin")
	}
	if !strings.Contains(f.logs.String(), "leaves the API") {
		t.Fatalf("missing explanation:\n%s", f.logs)
	}
}

// TestDocumentWithAnotherAPIKeyIsServed: Flagsmith's proxies serve what the
// server key fetches under the configured client key, whatever the
// document's api_key says; Fledge does too, warning once per version.
func TestDocumentWithAnotherAPIKeyIsServed(t *testing.T) {
	f := newFixture(t)
	f.api.SetDocument(workload.ServerKey(profile), workload.Document(workload.P2, 1))
	const warning = "api_key differs from the configured client_side_key"
	f.poll(t)
	f.poll(t)
	s := f.env.Snapshot()
	if s == nil {
		t.Fatalf("the document was not installed:\n%s", f.logs)
	}
	if s.APIKey != workload.ClientKey(workload.P2) {
		t.Errorf("served api_key %q, want the document's own %q (it seeds identity hashing)", s.APIKey, workload.ClientKey(workload.P2))
	}
	if h := f.fresh.Health(time.Now(), time.Second, time.Second, true); !h.Ready {
		t.Errorf("not ready: %+v", h)
	}
	if n := f.logs.count(warning); n != 1 {
		t.Errorf("warned %d times for one document version, want once:\n%s", n, f.logs)
	}
	if strings.Contains(f.logs.String(), workload.ClientKey(workload.P2)) {
		t.Errorf("a whole key is in the logs:\n%s", f.logs)
	}
	f.api.SetDocument(workload.ServerKey(profile), workload.Document(workload.P2, 2))
	f.poll(t)
	if n := f.logs.count(warning); n != 2 {
		t.Errorf("warned %d times for two document versions, want twice", n)
	}
}

func TestWarmStart(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t)
	f.poller.Snapshots = &SnapshotDir{Dir: dir}
	f.poll(t)
	if f.env.Snapshot() == nil {
		t.Fatal(f.logs)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("want one snapshot file, got %v", files)
	}
	// A new process, upstream down: the snapshot serves, readiness stays
	// honest (not ready), and the first good poll confirms it.
	g := newFixture(t)
	g.api.Fail(fakeapi.FaultDown, -1)
	(&SnapshotDir{Dir: dir}).LoadInto(g.reg, g.fresh, g.poller.Logger)
	if g.env.Snapshot() == nil || !g.fresh.Warm(g.env) {
		t.Fatal("warm start did not install the saved snapshot")
	}
	if h := g.fresh.Health(time.Now(), time.Second, time.Second, true); h.Ready {
		t.Fatal("ready on a warm-start snapshot the upstream never confirmed")
	}
	g.poll(t)
	if g.env.Snapshot() == nil {
		t.Fatal("the failed poll dropped the warm snapshot")
	}
	g.api.Fail(fakeapi.FaultNone, 0)
	g.poll(t)
	if g.fresh.Warm(g.env) {
		t.Fatal("still warm after a successful poll")
	}
	if h := g.fresh.Health(time.Now(), time.Second, time.Second, true); !h.Ready {
		t.Fatalf("not ready after a successful poll: %+v", h)
	}
	if req := g.api.Requests(); req[len(req)-1].Header.Get("If-Modified-Since") != "" {
		t.Error("a warm snapshot's timestamp must not be trusted for If-Modified-Since")
	}
}

func TestCorruptSnapshotIsSkipped(t *testing.T) {
	dir := t.TempDir()
	reg := registry.New([]registry.Pair{{ClientKey: workload.ClientKey(profile), ServerKey: workload.ServerKey(profile)}})
	sd := &SnapshotDir{Dir: dir}
	if err := os.WriteFile(sd.path(workload.ClientKey(profile)), []byte(`{"api_key":`), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	sd.LoadInto(reg, NewFreshness(reg), slog.New(slog.NewTextHandler(logs, nil)))
	if reg.Envs()[0].Snapshot() != nil {
		t.Fatal("installed a corrupt snapshot")
	}
	if !strings.Contains(logs.String(), "unusable") {
		t.Fatalf("corrupt snapshot not reported:\n%s", logs)
	}
}

func TestNextLink(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{`</api/v1/environment-document/?page_id=a>; rel="next"`}, "/api/v1/environment-document/?page_id=a"},
		{[]string{`</x>; rel="prev", </y>; rel="next"`}, "/y"},
		{[]string{`</x>; rel=next`}, "/x"},
		{[]string{`</x>; rel="last"`}, ""},
		{[]string{`garbage`}, ""},
	}
	for _, tt := range tests {
		if got := nextLink(tt.in); got != tt.want {
			t.Errorf("nextLink(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
