// Package registry holds the current compiled snapshot of every environment
// the server answers for, keyed by client-side key, and what the health
// endpoints need to know about how fresh they are. Readers never lock: each
// environment's snapshot sits behind an atomic pointer.
package registry

import (
	"crypto/subtle"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/internal/redact"
)

// Pair is an environment's keys. ServerKey may be empty in offline mode.
type Pair struct {
	ClientKey string
	ServerKey string
}

// Env is one environment's state.
type Env struct {
	ClientKey string
	ServerKey string
	snap      atomic.Pointer[environment.Snapshot]
	// lastSuccess is when the upstream last answered with a usable
	// document (a 200 or a 304), in Unix nanoseconds; 0 is never.
	lastSuccess atomic.Int64
	// warm is set while the snapshot came from disk, not the upstream.
	warm atomic.Bool
	feed *feed
}

// Change announces that an environment's snapshot was replaced. Old is nil
// for the first snapshot.
type Change struct {
	Env      *Env
	Old, New *environment.Snapshot
}

// feed is the registry's change feed: subscribers are called, in the
// order they subscribed, by whichever goroutine installs a snapshot (a
// source's), so they must return quickly and hand long work elsewhere.
type feed struct {
	mu   sync.Mutex
	next int
	subs map[int]func(Change)
	// order keeps delivery deterministic.
	order []int
}

func (f *feed) publish(c Change) {
	f.mu.Lock()
	fns := make([]func(Change), 0, len(f.order))
	for _, id := range f.order {
		fns = append(fns, f.subs[id])
	}
	f.mu.Unlock()
	for _, fn := range fns {
		fn(c)
	}
}

// Snapshot is the environment's current snapshot, nil before the first one.
func (e *Env) Snapshot() *environment.Snapshot { return e.snap.Load() }

// Registry maps keys to environments. The set of environments is fixed at
// construction; only their snapshots change.
type Registry struct {
	envs []*Env
	// byHash maps a keyed hash of each key to its environment: hashing
	// first means a lookup's timing does not depend on how much of a
	// guessed key is right, and the random seed means nobody outside can
	// compute the hashes. (SHA-256 served as well at 5× the cost, ~50 ns of
	// every request.)
	seed   maphash.Seed
	byHash map[uint64]lookup
	feed   feed
}

// Subscribe calls fn with every snapshot change from now on (realtime
// streams, caches, metrics). fn runs on the goroutine that installs the
// snapshot and must not block. The returned function unsubscribes.
func (r *Registry) Subscribe(fn func(Change)) (unsubscribe func()) {
	f := &r.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[int]func(Change){}
	}
	id := f.next
	f.next++
	f.subs[id] = fn
	f.order = append(f.order, id)
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, id)
		for i, o := range f.order {
			if o == id {
				f.order = append(f.order[:i:i], f.order[i+1:]...)
				break
			}
		}
	}
}

type lookup struct {
	env  *Env
	key  string
	kind environment.KeyKind
}

// New builds a registry for the key pairs.
func New(pairs []Pair) *Registry {
	r := &Registry{}
	for _, p := range pairs {
		r.envs = append(r.envs, &Env{ClientKey: p.ClientKey, ServerKey: p.ServerKey, feed: &r.feed})
	}
	for !r.index(maphash.MakeSeed()) {
		// Two different keys share a 64-bit hash (odds about n²/2⁶⁴):
		// another seed separates them.
	}
	return r
}

// index builds byHash with seed, reporting false if two different keys
// collide under it.
func (r *Registry) index(seed maphash.Seed) bool {
	r.seed = seed
	r.byHash = make(map[uint64]lookup, 2*len(r.envs))
	add := func(l lookup) bool {
		h := maphash.String(seed, l.key)
		if old, dup := r.byHash[h]; dup && old.key != l.key {
			return false
		}
		r.byHash[h] = l
		return true
	}
	for _, e := range r.envs {
		// A "ser." client key (which Flagsmith's proxies accept) is a
		// server-side key to the SDKs that use it, and is served as one.
		kind := environment.ClientKey
		if strings.HasPrefix(e.ClientKey, "ser.") {
			kind = environment.ServerKey
		}
		if !add(lookup{env: e, key: e.ClientKey, kind: kind}) {
			return false
		}
		if e.ServerKey != "" && !add(lookup{env: e, key: e.ServerKey, kind: environment.ServerKey}) {
			return false
		}
	}
	return true
}

// Envs lists the environments in configuration order.
func (r *Registry) Envs() []*Env { return r.envs }

// Env returns the environment with the client key.
func (r *Registry) Env(clientKey string) *Env {
	l, ok := r.byHash[maphash.String(r.seed, clientKey)]
	if !ok || l.env.ClientKey != clientKey {
		return nil
	}
	return l.env
}

// Lookup resolves a request key to its environment and key kind. Keys are
// compared in constant time.
func (r *Registry) Lookup(key string) (*Env, environment.KeyKind, bool) {
	l, ok := r.byHash[maphash.String(r.seed, key)]
	if !ok || subtle.ConstantTimeCompare([]byte(l.key), []byte(key)) != 1 {
		return nil, 0, false
	}
	return l.env, l.kind, true
}

// Store swaps in a new snapshot that came from the upstream or a file.
func (e *Env) Store(s *environment.Snapshot, now time.Time) {
	old := e.snap.Swap(s)
	e.warm.Store(false)
	e.lastSuccess.Store(now.UnixNano())
	e.announce(old, s)
}

func (e *Env) announce(old, s *environment.Snapshot) {
	if old != s && e.feed != nil {
		e.feed.publish(Change{Env: e, Old: old, New: s})
	}
}

// StoreWarm installs a snapshot read from the warm-start directory. It does
// not count as a successful fetch.
func (e *Env) StoreWarm(s *environment.Snapshot) {
	if e.snap.CompareAndSwap(nil, s) {
		e.warm.Store(true)
		e.announce(nil, s)
	}
}

// MarkFetched records a successful fetch that did not change the document
// (a 304 or identical bytes).
func (e *Env) MarkFetched(now time.Time) { e.lastSuccess.Store(now.UnixNano()) }

// LastSuccess is the time of the last successful fetch, zero if none.
func (e *Env) LastSuccess() time.Time {
	n := e.lastSuccess.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Warm reports whether the snapshot came from disk and has not been
// confirmed by the upstream yet.
func (e *Env) Warm() bool { return e.warm.Load() }

// Health is the readiness verdict.
type Health struct {
	Ready bool
	// Reason is nil when ready, else Flagsmith's edge-proxy wording.
	Reason         string
	LastSuccessful time.Time // the oldest environment's last success
}

// Reasons, worded as Flagsmith's edge proxy words them.
const (
	ReasonNotUpdated = "environment document(s) not updated."
	ReasonStale      = "environment document(s) stale."
)

// Health applies the edge proxy's readiness rule: every environment must
// have been fetched, and, unless grace is disabled, within
// pollInterval + grace × number of environments.
func (r *Registry) Health(now time.Time, pollInterval, grace time.Duration, graceEnabled bool) Health {
	var oldest time.Time
	for _, e := range r.envs {
		last := e.LastSuccess()
		if last.IsZero() {
			return Health{Reason: ReasonNotUpdated}
		}
		if oldest.IsZero() || last.Before(oldest) {
			oldest = last
		}
	}
	h := Health{Ready: true, LastSuccessful: oldest}
	if graceEnabled && !oldest.IsZero() {
		limit := pollInterval + grace*time.Duration(len(r.envs))
		if now.Sub(oldest) > limit {
			h.Ready, h.Reason = false, ReasonStale
		}
	}
	return h
}

// Redact shortens a key for logs: enough to tell keys apart, never the
// whole secret. It is redact.Key, the one rule for logs and --print-config.
func Redact(key string) string { return redact.Key(key) }
