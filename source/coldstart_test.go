package source

import (
	"context"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/internal/fakeapi"
)

// TestColdStartRetriesSoon: with a 30 s poll interval and an upstream that
// comes up 2 s after Fledge, the first document arrives within a few
// seconds (retries after 1 s, then 2 s, …), not after a whole interval.
func TestColdStartRetriesSoon(t *testing.T) {
	f := newFixture(t)
	f.poller.Interval = 30 * time.Second
	f.api.Fail(fakeapi.FaultDown, -1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	go f.poller.Run(ctx)
	time.Sleep(2 * time.Second)
	f.api.Fail(fakeapi.FaultNone, 0)
	deadline := time.Now().Add(5 * time.Second)
	for f.fresh.LastSuccess(f.env).IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("no document %v after start with a 30 s interval; logs:\n%s", time.Since(start).Round(time.Millisecond), f.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("first document %v after start (upstream up after 2 s)", took.Round(time.Millisecond))
	// 1 s + 2 s (+10% jitter each) is the retry that should succeed.
	if took > 4*time.Second {
		t.Errorf("first document after %v, want under 4 s", took)
	}
	// Once the document is in, polls are an interval apart again.
	n := len(f.api.Requests())
	time.Sleep(2500 * time.Millisecond)
	if m := len(f.api.Requests()); m != n {
		t.Errorf("%d more requests in 2.5 s after the first document, want none before the 30 s interval", m-n)
	}
}

func TestColdRetryDelays(t *testing.T) {
	r := coldRetry{first: time.Second, max: 10 * time.Second}
	for i, want := range []time.Duration{1, 2, 4, 8, 10, 10} {
		want *= time.Second
		got := r.next()
		if got < want || got > want+want/10 {
			t.Errorf("retry %d: %v, want %v plus at most 10%%", i, got, want)
		}
	}
}
