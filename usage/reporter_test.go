package usage

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/internal/fakeapi"
	"github.com/fledge-flags/fledge/registry"
)

const proxyKey = "pk_usage_secret_0123456789"

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type fixture struct {
	api  *fakeapi.Server
	reg  *registry.Registry
	rep  *Reporter
	logs *logBuffer
}

func newFixture(t *testing.T, pairs ...registry.Pair) *fixture {
	t.Helper()
	api := fakeapi.New()
	t.Cleanup(api.Close)
	api.SetProxyKey(proxyKey)
	if pairs == nil {
		pairs = []registry.Pair{{ClientKey: "clientA", ServerKey: "ser.a"}, {ClientKey: "clientB", ServerKey: "ser.b"}}
	}
	reg := registry.New(pairs)
	logs := &logBuffer{}
	rep := New(Options{
		APIURL:   api.URL(),
		ProxyKey: proxyKey,
		Registry: reg,
		Interval: time.Hour,
		Timeout:  300 * time.Millisecond,
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	t.Cleanup(rep.Close)
	return &fixture{api: api, reg: reg, rep: rep, logs: logs}
}

func (f *fixture) count(client string, r registry.Resource, n int) {
	for range n {
		f.reg.Env(client).CountUse(r)
	}
}

func (f *fixture) flush(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f.rep.Flush(ctx)
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestReport: one flush, one POST of every count under its client key,
// with the proxy key, a v4 Idempotency-Key and a JSON body.
func TestReport(t *testing.T) {
	f := newFixture(t)
	f.count("clientA", registry.Flags, 2)
	f.count("clientA", registry.EnvironmentDocument, 1)
	f.count("clientA", registry.Identities, 2)
	f.count("clientB", registry.Flags, 1)
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	reports := f.api.UsageReports()
	if len(reports) != 1 {
		t.Fatalf("%d POSTs, want 1", len(reports))
	}
	r := reports[0]
	if r.Status != 204 || r.ProxyKey != proxyKey || !uuidV4.MatchString(r.IdempotencyKey) || r.ContentType != "application/json" {
		t.Errorf("report %+v", r)
	}
	want := []fakeapi.UsageRow{
		{ClientSideKey: "clientA", Resource: "environment-document", Count: 1},
		{ClientSideKey: "clientA", Resource: "flags", Count: 2},
		{ClientSideKey: "clientA", Resource: "identities", Count: 2},
		{ClientSideKey: "clientB", Resource: "flags", Count: 1},
	}
	if !reflect.DeepEqual(r.Rows, want) {
		t.Errorf("rows %+v, want %+v", r.Rows, want)
	}
	// Nothing counted since: no POST.
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	if n := len(f.api.UsageReports()); n != 1 {
		t.Errorf("%d POSTs after an empty flush, want still 1", n)
	}
}

// TestRetryKeepsIdempotencyKey: a batch without a verdict is resent
// unchanged (same rows, same key) before anything new is drained; what was
// counted meanwhile goes next, under a new key. Nothing is counted twice.
func TestRetryKeepsIdempotencyKey(t *testing.T) {
	failures := []struct {
		name string
		fail func(api *fakeapi.Server)
		want string // in the log
	}{
		{"500", func(a *fakeapi.Server) { a.FailUsage(500) }, "status=500"},
		{"502", func(a *fakeapi.Server) { a.FailUsage(502) }, "status=502"},
		{"307 not followed", func(a *fakeapi.Server) { a.FailUsage(307) }, "status=307"},
		{"hang", func(a *fakeapi.Server) { a.Fail(fakeapi.FaultHang, 1) }, "no answer within"},
		{"down", func(a *fakeapi.Server) { a.Fail(fakeapi.FaultDown, -1) }, "connection refused"},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.count("clientA", registry.Flags, 1)
			tt.fail(f.api)
			if err := f.flush(t); err == nil {
				t.Fatal("a failed flush reported success")
			}
			if f.rep.Pending() != 1 {
				t.Fatalf("%d batches pending, want 1", f.rep.Pending())
			}
			if !strings.Contains(f.logs.String(), tt.want) {
				t.Errorf("log does not say why (%q):\n%s", tt.want, f.logs)
			}
			f.count("clientA", registry.Flags, 1) // served in between
			f.api.Fail(fakeapi.FaultNone, 0)
			if err := f.flush(t); err != nil {
				t.Fatal(err)
			}
			if err := f.flush(t); err != nil {
				t.Fatal(err)
			}
			reports := f.api.UsageReports()
			n := len(reports)
			switch {
			case tt.name == "down" && n != 2:
				// The refused connection never reached the server.
				t.Fatalf("%d POSTs reached the server, want 2", n)
			case tt.name == "hang" && n != 2 && n != 3:
				// The hung POST is recorded only if the server still held it
				// when the fault was lifted; the client had given up either way.
				t.Fatalf("%d POSTs reached the server, want 2 or 3", n)
			case tt.name != "down" && tt.name != "hang" && n != 3:
				t.Fatalf("%d POSTs, want 3", n)
			}
			last, resent := reports[n-1], reports[n-2]
			if n == 3 {
				first := reports[0]
				if first.IdempotencyKey != resent.IdempotencyKey || !reflect.DeepEqual(first.Rows, resent.Rows) {
					t.Errorf("the resend differs: %+v then %+v", first, resent)
				}
			}
			if last.IdempotencyKey == resent.IdempotencyKey {
				t.Error("the next batch reused the resent batch's key")
			}
			if want := []fakeapi.UsageRow{{ClientSideKey: "clientA", Resource: "flags", Count: 1}}; !reflect.DeepEqual(resent.Rows, want) || !reflect.DeepEqual(last.Rows, want) {
				t.Errorf("rows: resent %+v, then %+v; want one flags count each", resent.Rows, last.Rows)
			}
			if got := f.api.UsageTotals()["clientA"]["flags"]; got != 2 {
				t.Errorf("upstream counted %d flags, want 2", got)
			}
		})
	}
}

// TestRefusedBatchDropped: a 4xx is a verdict: the batch is dropped, never
// resent, and later counts go in a new batch.
func TestRefusedBatchDropped(t *testing.T) {
	for _, status := range []int{400, 401, 403, 422} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFixture(t)
			f.count("clientA", registry.Identities, 3)
			f.api.FailUsage(status)
			if err := f.flush(t); err != nil {
				t.Fatalf("a refused batch is a verdict, not a failure: %v", err)
			}
			if f.rep.Pending() != 0 {
				t.Fatal("a refused batch is pending")
			}
			if err := f.flush(t); err != nil {
				t.Fatal(err)
			}
			if n := len(f.api.UsageReports()); n != 1 {
				t.Fatalf("%d POSTs, want 1 (the refused batch is not resent)", n)
			}
			if !strings.Contains(f.logs.String(), "refused by the API; dropped") {
				t.Errorf("no log line:\n%s", f.logs)
			}
			if strings.Contains(f.logs.String(), proxyKey) {
				t.Errorf("the proxy key is in the logs:\n%s", f.logs)
			}
			f.count("clientA", registry.Identities, 1)
			if err := f.flush(t); err != nil {
				t.Fatal(err)
			}
			if got := f.api.UsageTotals()["clientA"]["identities"]; got != 1 {
				t.Errorf("after the refusal the upstream counted %d, want the 1 counted since", got)
			}
		})
	}
}

// TestRowCap: 1001 environments make two batches, 1000 rows and 1, each
// with its own key, both within the server's cap.
func TestRowCap(t *testing.T) {
	pairs := make([]registry.Pair, MaxRows+1)
	for i := range pairs {
		pairs[i] = registry.Pair{ClientKey: fmt.Sprintf("client%04d", i), ServerKey: fmt.Sprintf("ser.%04d", i)}
	}
	f := newFixture(t, pairs...)
	for _, p := range pairs {
		f.count(p.ClientKey, registry.Flags, 1)
	}
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	reports := f.api.UsageReports()
	if len(reports) != 2 {
		t.Fatalf("%d POSTs, want 2", len(reports))
	}
	if len(reports[0].Rows) != MaxRows || len(reports[1].Rows) != 1 || reports[0].IdempotencyKey == reports[1].IdempotencyKey {
		t.Errorf("batches of %d and %d rows, keys %s and %s", len(reports[0].Rows), len(reports[1].Rows), reports[0].IdempotencyKey, reports[1].IdempotencyKey)
	}
	if reports[0].Status != 204 || reports[1].Status != 204 || len(f.api.UsageTotals()) != MaxRows+1 {
		t.Errorf("statuses %d %d, %d environments counted", reports[0].Status, reports[1].Status, len(f.api.UsageTotals()))
	}
}

// TestBoundedWhileFailing: while the upstream fails, the one pending batch
// is resent and nothing more is queued; counts keep accumulating in the
// counters and all arrive once it recovers.
func TestBoundedWhileFailing(t *testing.T) {
	f := newFixture(t)
	f.api.Fail(fakeapi.Fault500, -1)
	for range 5 {
		f.count("clientA", registry.Flags, 10)
		f.count("clientB", registry.Identities, 1)
		_ = f.flush(t)
		if p := f.rep.Pending(); p != 1 {
			t.Fatalf("%d batches pending, want 1", p)
		}
	}
	f.api.Fail(fakeapi.FaultNone, 0)
	for range 2 {
		if err := f.flush(t); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]map[string]int64{"clientA": {"flags": 50}, "clientB": {"identities": 5}}
	if got := f.api.UsageTotals(); !reflect.DeepEqual(got, want) {
		t.Errorf("totals %v, want %v", got, want)
	}
}

// TestRemovedEnvironmentReported: what a discovered environment served
// before it was removed is still reported.
func TestRemovedEnvironmentReported(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	f.reg.Reconcile([]registry.Discovered{{ClientKey: "gone", ServerKeys: []registry.ServerKey{{Key: "ser.gone", Active: true}}}}, now)
	f.count("gone", registry.Flags, 4)
	f.reg.Reconcile(nil, now)
	if err := f.flush(t); err != nil {
		t.Fatal(err)
	}
	if got := f.api.UsageTotals()["gone"]["flags"]; got != 4 {
		t.Errorf("removed environment reported %d flags, want 4", got)
	}
}

// TestRunTiming: the first flush comes one interval after the start, not
// at once; Shutdown sends what is left.
func TestRunTiming(t *testing.T) {
	f := newFixture(t)
	f.rep.opt.Interval = 300 * time.Millisecond
	f.count("clientA", registry.Flags, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.rep.Run(ctx)
	}()
	time.Sleep(150 * time.Millisecond)
	if n := len(f.api.UsageReports()); n != 0 {
		t.Fatalf("%d POSTs before the first interval ended", n)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer wcancel()
	if err := f.api.WaitForRequests(wctx, 1); err != nil {
		t.Fatal("no flush after an interval")
	}
	cancel()
	<-done
	f.count("clientB", registry.Flags, 2)
	if err := f.rep.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]int64{"clientA": {"flags": 1}, "clientB": {"flags": 2}}
	if got := f.api.UsageTotals(); !reflect.DeepEqual(got, want) {
		t.Errorf("totals %v, want %v", got, want)
	}
}
