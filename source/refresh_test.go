package source

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/bench/workload"
	"github.com/fledge-flags/fledge/internal/fakeapi"
	"github.com/fledge-flags/fledge/metrics"
	"github.com/fledge-flags/fledge/registry"
)

// TestRefresh: between regular polls (a minute apart here), Refresh makes
// the loop fetch the environment at once; a refresh of an unchanged
// document installs nothing.
func TestRefresh(t *testing.T) {
	f := newFixture(t)
	f.poller.Interval = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.poller.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, time.Second, func() bool { return f.env.Snapshot() != nil })
	first := f.env.Snapshot()

	if f.poller.Refresh("no-such-key") {
		t.Fatal("Refresh accepted an unknown key")
	}
	if f.poller.Refresh(workload.ServerKey(profile)) {
		t.Fatal("Refresh accepted a server-side key")
	}
	before := len(f.api.Requests())
	if !f.poller.Refresh(f.env.ClientKey) {
		t.Fatal("Refresh refused the environment's key")
	}
	waitFor(t, time.Second, func() bool { return len(f.api.Requests()) > before })
	time.Sleep(50 * time.Millisecond)
	if f.env.Snapshot() != first {
		t.Fatal("a refresh of an unchanged document replaced the snapshot")
	}

	f.api.SetDocument(workload.ServerKey(profile), workload.Document(profile, 2))
	start := time.Now()
	f.poller.Refresh(f.env.ClientKey)
	waitFor(t, time.Second, func() bool { return f.env.Snapshot() != first })
	t.Logf("new document installed %s after Refresh", time.Since(start))
}

func waitFor(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s", d)
		}
	}
}

// polls records what the poller reports.
type polls struct {
	metrics.Nop
	mu       sync.Mutex
	outcomes []string
	reasons  []string
}

func (p *polls) Poll(_ *registry.Env, outcome string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outcomes = append(p.outcomes, outcome)
}

func (p *polls) PollFailed(_ *registry.Env, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reasons = append(p.reasons, reason)
}

// TestPollMetrics: every poll is counted with its outcome, every failure
// with its reason from the fixed set.
func TestPollMetrics(t *testing.T) {
	for _, tc := range []struct {
		fault fakeapi.Fault
		want  string
	}{
		{fakeapi.FaultDown, metrics.ReasonTransport},
		{fakeapi.FaultHang, metrics.ReasonTimeout},
		{fakeapi.Fault500, metrics.ReasonHTTP5xx},
		{fakeapi.Fault403, metrics.ReasonForbidden},
		{fakeapi.FaultInvalidJSON, metrics.ReasonInvalid},
		{fakeapi.FaultLinkLoop, metrics.ReasonInvalid},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			f := newFixture(t)
			rec := &polls{}
			f.poller.Metrics = rec
			f.poll(t) // updated
			f.poll(t) // 304
			f.api.Fail(tc.fault, -1)
			f.poll(t)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.outcomes) != 2 || rec.outcomes[0] != metrics.PollUpdated || rec.outcomes[1] != metrics.PollNotModified {
				t.Errorf("outcomes %v, want [updated not_modified]", rec.outcomes)
			}
			if len(rec.reasons) != 1 || rec.reasons[0] != tc.want {
				t.Errorf("failure reasons %v, want [%s]\n%s", rec.reasons, tc.want, f.logs)
			}
		})
	}
}
