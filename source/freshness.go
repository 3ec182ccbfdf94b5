package source

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/fledge-flags/fledge/registry"
)

// Freshness is what the sources know about how fresh the registry's
// documents are: per environment, when its source last answered with a
// usable document and whether the snapshot served is a warm-start one the
// source has not confirmed yet; and, when the set of environments is
// discovered, when the discovery last succeeded. Health turns that into
// the readiness verdict. One Freshness goes with one registry and the
// sources that feed it.
//
// Environments are keyed by their *registry.Env, not their client key: an
// *Env lives as long as its environment is in the set (re-keying and index
// rebuilds keep it), and an environment that leaves and comes back gets a
// new one, which must start never fetched, as its document does. Entries
// of removed environments are dropped as the registry announces the
// removal.
type Freshness struct {
	reg *registry.Registry
	// envs maps *registry.Env to *envFreshness.
	envs sync.Map
	// discovery: whether the set is discovered at run time, and when that
	// last succeeded (Unix nanoseconds; 0 never).
	discovery     atomic.Bool
	lastDiscovery atomic.Int64
}

type envFreshness struct {
	// lastSuccess is when the upstream last answered with a usable
	// document (a 200 or a 304), in Unix nanoseconds; 0 is never.
	lastSuccess atomic.Int64
	// warm is set while the snapshot came from disk, not the upstream.
	warm atomic.Bool
}

// NewFreshness tracks the freshness of reg's environments.
func NewFreshness(reg *registry.Registry) *Freshness {
	f := &Freshness{reg: reg}
	reg.Subscribe(func(c registry.Change) {
		if c.Kind == registry.EnvRemoved {
			f.envs.Delete(c.Env)
		}
	})
	return f
}

// state is env's entry, created on first use. An entry created for an
// environment removed meanwhile is dropped again: the removal's
// announcement may have come first.
func (f *Freshness) state(env *registry.Env) *envFreshness {
	if s, ok := f.envs.Load(env); ok {
		return s.(*envFreshness)
	}
	s, _ := f.envs.LoadOrStore(env, &envFreshness{})
	if env.Removed() {
		f.envs.Delete(env)
	}
	return s.(*envFreshness)
}

// lookup is env's entry, nil when nothing was recorded.
func (f *Freshness) lookup(env *registry.Env) *envFreshness {
	if s, ok := f.envs.Load(env); ok {
		return s.(*envFreshness)
	}
	return nil
}

// MarkFetched records a successful fetch of env's document at now (a 200
// or a 304, changed or not): the snapshot is the upstream's, no longer a
// warm-start one.
func (f *Freshness) MarkFetched(env *registry.Env, now time.Time) {
	s := f.state(env)
	s.warm.Store(false)
	s.lastSuccess.Store(now.UnixNano())
}

// MarkWarm records that env's snapshot was installed from the warm-start
// directory. It does not count as a successful fetch.
func (f *Freshness) MarkWarm(env *registry.Env) { f.state(env).warm.Store(true) }

// LastSuccess is the time of env's last successful fetch, zero if none.
func (f *Freshness) LastSuccess(env *registry.Env) time.Time {
	if s := f.lookup(env); s != nil {
		return unixTime(s.lastSuccess.Load())
	}
	return time.Time{}
}

// Warm reports whether env's snapshot came from disk and has not been
// confirmed by the upstream yet.
func (f *Freshness) Warm(env *registry.Env) bool {
	s := f.lookup(env)
	return s != nil && s.warm.Load()
}

// EnableDiscovery marks the set as discovered at run time: readiness then
// waits for the first successful discovery (see Health).
func (f *Freshness) EnableDiscovery() { f.discovery.Store(true) }

// MarkDiscovered records a successful discovery of the set at now.
func (f *Freshness) MarkDiscovered(now time.Time) { f.lastDiscovery.Store(now.UnixNano()) }

// LastDiscovery is when the set was last discovered, zero if never.
func (f *Freshness) LastDiscovery() time.Time { return unixTime(f.lastDiscovery.Load()) }

func unixTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Health is the readiness verdict.
type Health struct {
	Ready bool
	// Reason is empty when ready, else Flagsmith's edge-proxy wording.
	Reason         string
	LastSuccessful time.Time // the oldest environment's last success
}

// Reasons, worded as Flagsmith's edge proxy words them.
const (
	ReasonNotUpdated = "environment document(s) not updated."
	ReasonStale      = "environment document(s) stale."
)

// Health applies the edge proxy's readiness rule to the registry's current
// set: every environment must have been fetched, and, unless grace is
// disabled, within pollInterval + grace × number of environments. When the
// set is discovered (EnableDiscovery), the discovery counts as one more
// thing to keep fresh: it must have succeeded once, and recently enough by
// the same rule (with at least one environment's grace), so that a proxy
// whose proxy key never worked, or stopped working, is not reported ready.
func (f *Freshness) Health(now time.Time, pollInterval, grace time.Duration, graceEnabled bool) Health {
	envs := f.reg.Envs()
	var oldest time.Time
	n := len(envs)
	if f.discovery.Load() {
		oldest = f.LastDiscovery()
		if oldest.IsZero() {
			return Health{Reason: ReasonNotUpdated}
		}
		n = max(n, 1)
	}
	for _, e := range envs {
		last := f.LastSuccess(e)
		if last.IsZero() {
			return Health{Reason: ReasonNotUpdated}
		}
		if oldest.IsZero() || last.Before(oldest) {
			oldest = last
		}
	}
	h := Health{Ready: true, LastSuccessful: oldest}
	if graceEnabled && !oldest.IsZero() {
		limit := pollInterval + grace*time.Duration(n)
		if now.Sub(oldest) > limit {
			h.Ready, h.Reason = false, ReasonStale
		}
	}
	return h
}
