package source

import (
	"testing"
	"time"

	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/registry"
)

func activeKeys(keys ...string) []registry.ServerKey {
	out := make([]registry.ServerKey, len(keys))
	for i, k := range keys {
		out[i] = registry.ServerKey{Key: k, Active: true}
	}
	return out
}

func TestHealth(t *testing.T) {
	now := time.Now()
	r := registry.New([]registry.Pair{{ClientKey: "a"}, {ClientKey: "b"}})
	f := NewFreshness(r)
	if h := f.Health(now, 10*time.Second, 30*time.Second, true); h.Ready || h.Reason != ReasonNotUpdated {
		t.Fatalf("nothing fetched: %+v", h)
	}
	f.MarkFetched(r.Envs()[0], now.Add(-5*time.Second))
	if h := f.Health(now, 10*time.Second, 30*time.Second, true); h.Ready {
		t.Fatal("ready with one environment never fetched")
	}
	// Limit: 10s + 30s × 2 environments = 70s.
	f.MarkFetched(r.Envs()[1], now.Add(-69*time.Second))
	h := f.Health(now, 10*time.Second, 30*time.Second, true)
	if !h.Ready || !h.LastSuccessful.Equal(now.Add(-69*time.Second).Truncate(0)) {
		t.Fatalf("within the limit: %+v", h)
	}
	f.MarkFetched(r.Envs()[1], now.Add(-71*time.Second))
	if h := f.Health(now, 10*time.Second, 30*time.Second, true); h.Ready || h.Reason != ReasonStale {
		t.Fatalf("past the limit: %+v", h)
	}
	if h := f.Health(now, 10*time.Second, 0, false); !h.Ready {
		t.Fatal("with grace disabled a fetched environment never goes stale")
	}
}

func TestHealthDiscovery(t *testing.T) {
	now := time.Now()
	poll, grace := 10*time.Second, 30*time.Second
	r := registry.New(nil)
	f := NewFreshness(r)
	if h := f.Health(now, poll, grace, true); !h.Ready {
		t.Fatalf("no environments and no discovery: %+v (Flagsmith's rule: ready)", h)
	}
	f.EnableDiscovery()
	if h := f.Health(now, poll, grace, true); h.Ready || h.Reason != ReasonNotUpdated {
		t.Fatalf("discovery never succeeded: %+v", h)
	}
	discover := func(list []registry.Discovered, at time.Time) {
		r.Reconcile(list, at)
		f.MarkDiscovered(at)
	}
	discover(nil, now.Add(-39*time.Second))
	if h := f.Health(now, poll, grace, true); !h.Ready {
		t.Fatalf("discovered nothing, recently: %+v", h)
	}
	discover([]registry.Discovered{{ClientKey: "envA", ServerKeys: activeKeys("ser.a")}}, now.Add(-5*time.Second))
	if h := f.Health(now, poll, grace, true); h.Ready || h.Reason != ReasonNotUpdated {
		t.Fatalf("a discovered environment without a document: %+v", h)
	}
	f.MarkFetched(r.Env("envA"), now.Add(-time.Second))
	if h := f.Health(now, poll, grace, true); !h.Ready {
		t.Fatalf("all fresh: %+v", h)
	}
	// Discovery failing since 41 s ago: past 10 s + 30 s × 1.
	discover([]registry.Discovered{{ClientKey: "envA", ServerKeys: activeKeys("ser.a")}}, now.Add(-41*time.Second))
	if h := f.Health(now, poll, grace, true); h.Ready || h.Reason != ReasonStale {
		t.Fatalf("discovery stale: %+v", h)
	}
	if h := f.Health(now, poll, 0, false); !h.Ready {
		t.Fatalf("grace disabled: %+v", h)
	}
	if !f.LastDiscovery().Equal(now.Add(-41 * time.Second).Truncate(0)) {
		t.Fatalf("LastDiscovery = %v", f.LastDiscovery())
	}
}

// TestFreshnessFollowsEnv: freshness belongs to the *Env: re-keying keeps
// it, removal drops it, and an environment that returns starts never
// fetched, as its document does.
func TestFreshnessFollowsEnv(t *testing.T) {
	now := time.Now()
	r := registry.New(nil)
	f := NewFreshness(r)
	r.Reconcile([]registry.Discovered{{ClientKey: "envA", ServerKeys: activeKeys("ser.a1")}}, now)
	env := r.Env("envA")
	f.MarkFetched(env, now)
	r.Reconcile([]registry.Discovered{{ClientKey: "envA", ServerKeys: activeKeys("ser.a2")}}, now)
	if !f.LastSuccess(env).Equal(now.Truncate(0)) {
		t.Fatal("re-keying lost the environment's last success")
	}
	r.Reconcile(nil, now)
	if _, ok := f.envs.Load(env); ok {
		t.Fatal("a removed environment's freshness is kept")
	}
	f.MarkFetched(env, now) // a fetch that finished after the removal
	if _, ok := f.envs.Load(env); ok {
		t.Fatal("a fetch of a removed environment recreated its freshness")
	}
	r.Reconcile([]registry.Discovered{{ClientKey: "envA", ServerKeys: activeKeys("ser.a2")}}, now)
	if back := r.Env("envA"); !f.LastSuccess(back).IsZero() || f.Warm(back) {
		t.Fatal("a returning environment inherited its predecessor's freshness")
	}
}

// TestMarkWarm: a warm start is recorded as such, not as a fetch, and only
// when it filled an empty slot; a fetch confirms it.
func TestMarkWarm(t *testing.T) {
	dir := t.TempDir()
	sd := &SnapshotDir{Dir: dir}
	f := newFixture(t)
	f.poll(t)
	if err := sd.Save(f.env.ClientKey, f.env.Snapshot().Document.JSON); err != nil {
		t.Fatal(err)
	}
	// A document already there wins: nothing warm.
	sd.LoadInto(f.reg, f.fresh, f.poller.Logger)
	if f.fresh.Warm(f.env) {
		t.Fatal("a warm start over a fetched document marked it warm")
	}
	g := newFixture(t)
	sd.LoadInto(g.reg, g.fresh, g.poller.Logger)
	if !g.fresh.Warm(g.env) || !g.fresh.LastSuccess(g.env).IsZero() {
		t.Fatal("a warm start is not warm, or counted as a fetch")
	}
	g.fresh.MarkFetched(g.env, time.Now())
	if g.fresh.Warm(g.env) {
		t.Fatal("a fetch did not confirm the warm snapshot")
	}
	if g.env.StoreWarm(&environment.Snapshot{}) {
		t.Fatal("StoreWarm replaced a document")
	}
}
