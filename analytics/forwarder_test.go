package analytics

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/internal/fakeapi"
)

const (
	exampleServerKey = "ser.exampleServerKey00001"
	otherServerKey   = "ser.otherServerKey0000001"
)

// logBuffer collects log output from any goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type fixture struct {
	api  *fakeapi.Server
	agg  *Aggregator
	fw   *Forwarder
	logs *logBuffer
}

// newFixture serves the example environment (and a copy under other keys)
// from a stand-in Flagsmith API and forwards to it.
func newFixture(t *testing.T, opt ForwarderOptions) *fixture {
	t.Helper()
	api := fakeapi.New()
	t.Cleanup(api.Close)
	api.SetDocument(exampleServerKey, snapshot(t, exampleClientKey).Document.JSON)
	api.SetDocument(otherServerKey, snapshot(t, otherClientKey).Document.JSON)
	logs := &logBuffer{}
	if opt.APIURL == "" {
		opt.APIURL = api.URL()
	}
	opt.Logger = slog.New(slog.NewTextHandler(logs, nil))
	agg := NewAggregator(0)
	return &fixture{api: api, agg: agg, fw: NewForwarder(agg, opt), logs: logs}
}

func (f *fixture) flush(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f.fw.Flush(ctx)
}

// TestFlushForwards: each environment's sums go in one POST to
// {api_url}/analytics/flags/ with its client-side key, as a flat object;
// the next flush has nothing to send.
func TestFlushForwards(t *testing.T) {
	f := newFixture(t, ForwarderOptions{})
	ex, other := snapshot(t, exampleClientKey), snapshot(t, otherClientKey)
	f.agg.RecordV1(ex, []byte(`{"new_checkout":3,"banner_colour":1}`))
	f.agg.RecordV2(ex, []byte(`{"evaluations":[{"feature_name":"new_checkout","enabled_when_evaluated":true,"count":2}]}`))
	f.agg.RecordV1(other, []byte(`{"max_upload_mb":9}`))
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	reports := f.api.AnalyticsReports()
	if len(reports) != 2 {
		t.Fatalf("%d reports, want one per environment", len(reports))
	}
	for _, r := range reports {
		if len(r.Skipped) > 0 {
			t.Errorf("upstream skipped %v", r.Skipped)
		}
	}
	if got := f.api.AnalyticsTotals(exampleServerKey); !reflect.DeepEqual(got, map[string]int64{"new_checkout": 5, "banner_colour": 1}) {
		t.Errorf("example totals %v", got)
	}
	if got := f.api.AnalyticsTotals(otherServerKey); !reflect.DeepEqual(got, map[string]int64{"max_upload_mb": 9}) {
		t.Errorf("other totals %v", got)
	}
	for _, req := range f.api.Requests() {
		if req.Method != http.MethodPost || req.Path != "/api/v1/analytics/flags/" {
			t.Errorf("request %s %s, want POST /api/v1/analytics/flags/", req.Method, req.Path)
		}
		if req.EnvironmentKey != exampleClientKey && req.EnvironmentKey != otherClientKey {
			t.Errorf("X-Environment-Key %q, want a client-side key", req.EnvironmentKey)
		}
		if ct := req.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
	}
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	if n := f.api.RequestCount(); n != 2 {
		t.Errorf("%d requests after an empty flush, want still 2", n)
	}
}

// TestRetryOnceThenDrop: counts that fail are sent again, merged with the
// next window's; when that fails too they are dropped (logged with the
// redacted key) and only the newer counts get another try.
func TestRetryOnceThenDrop(t *testing.T) {
	f := newFixture(t, ForwarderOptions{})
	ex := snapshot(t, exampleClientKey)
	f.api.Fail(fakeapi.Fault500, 2)

	f.agg.RecordV1(ex, []byte(`{"new_checkout":1}`)) // A
	if err := f.flush(t); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("first flush: error %v, want the 500", err)
	}
	f.agg.RecordV1(ex, []byte(`{"banner_colour":2}`)) // B
	if err := f.flush(t); err == nil {
		t.Fatal("second flush: no error")
	}
	reqs := f.api.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	var second map[string]int64
	if err := json.Unmarshal(reqs[1].Body, &second); err != nil || !reflect.DeepEqual(second, map[string]int64{"new_checkout": 1, "banner_colour": 2}) {
		t.Errorf("retry body %s, want A merged with B", reqs[1].Body)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "dropped: forwarding failed twice") || !strings.Contains(logs, "exam…") {
		t.Errorf("no drop line with the redacted key:\n%s", logs)
	}
	if strings.Contains(logs, exampleClientKey) {
		t.Errorf("the log shows the whole key:\n%s", logs)
	}

	f.agg.RecordV1(ex, []byte(`{"max_upload_mb":4}`)) // C
	if err := f.flush(t); err != nil {
		t.Fatalf("third flush: %v", err)
	}
	// A failed twice and is gone; B (failed once) and C arrive.
	if got := f.api.AnalyticsTotals(exampleServerKey); !reflect.DeepEqual(got, map[string]int64{"banner_colour": 2, "max_upload_mb": 4}) {
		t.Errorf("upstream totals %v, want B and C only", got)
	}
	if err := f.flush(t); err != nil || f.api.RequestCount() != 3 {
		t.Errorf("fourth flush: %v, %d requests; want nothing more sent", err, f.api.RequestCount())
	}
}

// TestMergeAfterFailure: a failed window arrives with the next one, summed.
func TestMergeAfterFailure(t *testing.T) {
	f := newFixture(t, ForwarderOptions{})
	ex := snapshot(t, exampleClientKey)
	f.api.Fail(fakeapi.Fault502, 1)
	f.agg.RecordV1(ex, []byte(`{"new_checkout":3}`))
	if err := f.flush(t); err == nil {
		t.Fatal("no error from a 502")
	}
	f.agg.RecordV1(ex, []byte(`{"new_checkout":4,"banner_colour":1}`))
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	if got := f.api.AnalyticsTotals(exampleServerKey); !reflect.DeepEqual(got, map[string]int64{"new_checkout": 7, "banner_colour": 1}) {
		t.Errorf("totals %v, want new_checkout:7 banner_colour:1", got)
	}
	if !strings.Contains(f.logs.String(), "retrying with the next flush") {
		t.Errorf("no retry line:\n%s", f.logs.String())
	}
}

// TestRetryWithoutNewCounts: a failed window is retried even when nothing
// new arrived.
func TestRetryWithoutNewCounts(t *testing.T) {
	f := newFixture(t, ForwarderOptions{Timeout: 200 * time.Millisecond})
	f.agg.RecordV1(snapshot(t, exampleClientKey), []byte(`{"new_checkout":3}`))
	f.api.Fail(fakeapi.FaultHang, 1)
	if err := f.flush(t); err == nil || !strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("error %v, want a timeout", err)
	}
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	if got := f.api.AnalyticsTotals(exampleServerKey); !reflect.DeepEqual(got, map[string]int64{"new_checkout": 3}) {
		t.Errorf("totals %v", got)
	}
}

// TestShutdownDropsFailures: the last flush sends what is pending; what
// fails then is dropped, not kept.
func TestShutdownDropsFailures(t *testing.T) {
	f := newFixture(t, ForwarderOptions{})
	ex := snapshot(t, exampleClientKey)
	f.agg.RecordV1(ex, []byte(`{"new_checkout":1}`))
	f.api.Fail(fakeapi.Fault500, -1)
	_ = f.flush(t)
	f.agg.RecordV1(ex, []byte(`{"banner_colour":1}`))
	if err := f.fw.Shutdown(context.Background()); err == nil {
		t.Fatal("no error")
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "forwarding failed twice") || !strings.Contains(logs, "failed at shutdown") {
		t.Errorf("missing drop lines:\n%s", logs)
	}
	f.api.Fail(fakeapi.FaultNone, 0)
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	if n := len(f.api.AnalyticsReports()); n != 0 {
		t.Errorf("%d reports after shutdown dropped them, want 0", n)
	}
}

// TestShutdownSends: the last flush sends the window and the retry.
func TestShutdownSends(t *testing.T) {
	f := newFixture(t, ForwarderOptions{})
	ex := snapshot(t, exampleClientKey)
	f.api.Fail(fakeapi.Fault500, 1)
	f.agg.RecordV1(ex, []byte(`{"new_checkout":1}`))
	_ = f.flush(t)
	f.agg.RecordV1(ex, []byte(`{"new_checkout":2}`))
	if err := f.fw.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.api.AnalyticsTotals(exampleServerKey); !reflect.DeepEqual(got, map[string]int64{"new_checkout": 3}) {
		t.Errorf("totals %v, want new_checkout:3", got)
	}
}

// TestRunFlushesOnInterval: Run sends without being asked, and stops with
// its context.
func TestRunFlushesOnInterval(t *testing.T) {
	f := newFixture(t, ForwarderOptions{Interval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.fw.Run(ctx); close(done) }()
	f.agg.RecordV1(snapshot(t, exampleClientKey), []byte(`{"new_checkout":1}`))
	wait, cancelWait := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelWait()
	if err := f.api.WaitForRequests(wait, 1); err != nil {
		t.Fatalf("nothing forwarded: %v", err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestOverLimitLogged: names dropped by the cap are reported at the flush.
func TestOverLimitLogged(t *testing.T) {
	f := newFixture(t, ForwarderOptions{})
	f.agg = NewAggregator(1)
	f.fw = NewForwarder(f.agg, ForwarderOptions{APIURL: f.api.URL(), Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
	f.agg.RecordV1(snapshot(t, exampleClientKey), []byte(`{"new_checkout":1,"banner_colour":1,"max_upload_mb":1}`))
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "names_dropped=2") || !strings.Contains(logs, "analytics.max_features_per_environment") {
		t.Errorf("no over-limit line:\n%s", logs)
	}
	if got := f.api.AnalyticsTotals(exampleServerKey); len(got) != 1 {
		t.Errorf("totals %v, want one name", got)
	}
}

// TestRedirectStaysOnOrigin: a redirect to another host is not followed,
// so the key goes nowhere else; the counts are kept for the retry.
func TestRedirectStaysOnOrigin(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	f := newFixture(t, ForwarderOptions{APIURL: redirect.URL + "/api/v1"})
	f.agg.RecordV1(snapshot(t, exampleClientKey), []byte(`{"new_checkout":1}`))
	err := f.flush(t)
	if err == nil || !strings.Contains(err.Error(), "leaves the API's origin") {
		t.Errorf("error %v, want the redirect refused", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the other host got %d requests", n)
	}
}

// TestPasswordNotLogged: a password in api_url stays out of errors and logs.
func TestPasswordNotLogged(t *testing.T) {
	f := newFixture(t, ForwarderOptions{})
	f.fw = NewForwarder(f.agg, ForwarderOptions{APIURL: "http://user:hunter2@127.0.0.1:1/api/v1", Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
	f.agg.RecordV1(snapshot(t, exampleClientKey), []byte(`{"new_checkout":1}`))
	err := f.flush(t)
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(f.logs.String(), "hunter2") {
		t.Errorf("the password shows:\n%v\n%s", err, f.logs.String())
	}
}

// TestRunCutShortByShutdown: when Run's context ends during a flush that
// stalls, Run returns within about one timeout, not one per environment;
// the environment it did not get to keeps its counts, and its retry, with
// no attempt counted, and Shutdown sends them.
func TestRunCutShortByShutdown(t *testing.T) {
	const timeout = time.Second
	f := newFixture(t, ForwarderOptions{Interval: 20 * time.Millisecond, Timeout: timeout})
	ex, other := snapshot(t, exampleClientKey), snapshot(t, otherClientKey)
	// Both environments fail once: each has a retry pending.
	f.api.Fail(fakeapi.Fault500, 2)
	f.agg.RecordV1(ex, []byte(`{"new_checkout":1}`))
	f.agg.RecordV1(other, []byte(`{"new_checkout":10}`))
	if err := f.flush(t); err == nil {
		t.Fatal("no error")
	}
	f.agg.RecordV1(ex, []byte(`{"banner_colour":2}`))
	f.agg.RecordV1(other, []byte(`{"banner_colour":20}`))
	// Slow rather than hanging: a hanging request would be served when
	// the fault is lifted, and counted, though its client gave up.
	f.api.SetDelay(time.Minute)
	f.api.Fail(fakeapi.FaultSlow, -1)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.fw.Run(ctx); close(done) }()
	wait, cancelWait := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelWait()
	if err := f.api.WaitForRequests(wait, 3); err != nil { // the example environment's, stalled
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if took := time.Since(start); took > timeout+timeout/2 {
		t.Errorf("Run returned %v after its context ended, want about one timeout (%v)", took, timeout)
	}

	f.api.Fail(fakeapi.FaultNone, 0)
	if err := f.fw.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The example environment's request timed out: its first counts had
	// failed twice and are gone. The other's was cut short: all arrive.
	if got := f.api.AnalyticsTotals(exampleServerKey); !reflect.DeepEqual(got, map[string]int64{"banner_colour": 2}) {
		t.Errorf("example totals %v, want banner_colour:2", got)
	}
	if got := f.api.AnalyticsTotals(otherServerKey); !reflect.DeepEqual(got, map[string]int64{"new_checkout": 10, "banner_colour": 20}) {
		t.Errorf("other totals %v, want both windows", got)
	}
}
