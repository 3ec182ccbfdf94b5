// Package registry holds the current compiled snapshot of every environment
// the server answers for, keyed by client-side key, and what the health
// endpoints need to know about how fresh they are. Readers never lock: each
// environment's snapshot sits behind an atomic pointer, and so does the
// index of keys, which is rebuilt (copy-on-write) when the set of
// environments or their keys changes.
//
// The set holds static environments (environment_key_pairs, offline files),
// fixed at construction, and discovered ones (proxy_key mode), which
// Reconcile adds, re-keys and removes at run time.
package registry

import (
	"crypto/subtle"
	"hash/maphash"
	"slices"
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

// ServerKey is one server-side key of an environment. Discovered
// environments may have several, for rotation; a static pair's is active
// and never expires.
type ServerKey struct {
	Key    string
	Active bool
	// ExpiresAt is when the key stops working; zero: never.
	ExpiresAt time.Time
}

// ValidAt reports whether the key is usable at now: active and not
// expired.
func (k ServerKey) ValidAt(now time.Time) bool {
	return k.Active && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

func (k ServerKey) equal(o ServerKey) bool {
	return k.Key == o.Key && k.Active == o.Active && k.ExpiresAt.Equal(o.ExpiresAt)
}

// Env is one environment's state. The *Env of an environment lives as long
// as the environment is in the set: re-keying keeps it (and its snapshot),
// removal retires it, and a later return gets a new one.
type Env struct {
	// ClientKey identifies the environment; it never changes.
	ClientKey string
	// keys are the server-side keys sorted by Key; nil in offline mode
	// without a server key.
	keys   atomic.Pointer[[]ServerKey]
	static bool
	// removed is set once the environment has left the set.
	removed atomic.Bool
	snap    atomic.Pointer[environment.Snapshot]
	// uses counts served requests per resource, for usage reporting.
	uses [NumResources]atomic.Int64
	feed *feed
}

// ChangeKind says what a Change announces.
type ChangeKind uint8

// Change kinds. The zero value is the one every Change had before the set
// of environments could change, so subscribers that only look at Old and
// New keep working: for an added environment both are nil (it has no
// document yet), for a removed one New is nil.
const (
	// SnapshotChanged: Env's snapshot went from Old to New.
	SnapshotChanged ChangeKind = iota
	// EnvAdded: Env joined the set (discovered at run time).
	EnvAdded
	// EnvRemoved: Env left the set; its keys answer 401 from now on and
	// Old was its last snapshot.
	EnvRemoved
)

// Change announces that an environment's snapshot was replaced, or that an
// environment joined or left the set. Old is nil for the first snapshot.
type Change struct {
	Env      *Env
	Old, New *environment.Snapshot
	Kind     ChangeKind
}

// feed is the registry's change feed: subscribers are called, in the
// order they subscribed, by whichever goroutine makes the change (a
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

// Snapshot is the environment's current snapshot, nil before the first one
// and after removal.
func (e *Env) Snapshot() *environment.Snapshot { return e.snap.Load() }

// ServerKeys are the environment's server-side keys sorted by key, valid
// or not. The slice is shared: do not modify it.
func (e *Env) ServerKeys() []ServerKey {
	if k := e.keys.Load(); k != nil {
		return *k
	}
	return nil
}

// FetchKey is the key to fetch the environment's document with: the first
// server-side key, in key order, that is valid at now (as the Rust proxy
// picks it). ok is false when there is none.
func (e *Env) FetchKey(now time.Time) (key string, ok bool) {
	for _, k := range e.ServerKeys() {
		if k.ValidAt(now) {
			return k.Key, true
		}
	}
	return "", false
}

// Static reports whether the environment comes from the configuration
// rather than discovery.
func (e *Env) Static() bool { return e.static }

// Removed reports whether the environment has left the set.
func (e *Env) Removed() bool { return e.removed.Load() }

// Registry maps keys to environments.
type Registry struct {
	// idx is the current index; readers load it once per lookup.
	idx atomic.Pointer[index]
	// mu serialises changes to the set (Reconcile).
	mu   sync.Mutex
	feed feed
}

// index is an immutable view of the set: built whole, swapped in
// atomically, never modified.
type index struct {
	// byHash maps a keyed hash of each key to its environment: hashing
	// first means a lookup's timing does not depend on how much of a
	// guessed key is right, and the random seed means nobody outside can
	// compute the hashes. (SHA-256 served as well at 5× the cost, ~50 ns of
	// every request.)
	seed   maphash.Seed
	byHash map[uint64]lookup
	// envs lists the environments: static ones in configuration order,
	// then discovered ones in the order the upstream listed them.
	envs []*Env
}

type lookup struct {
	env  *Env
	key  string
	kind environment.KeyKind
	// expires is when a server key stops resolving, Unix nanoseconds; 0:
	// never. Inactive keys are not indexed at all.
	expires int64
}

// Subscribe calls fn with every change from now on (realtime streams,
// caches, metrics, usage reporting). fn runs on the goroutine that makes
// the change and must not block. The returned function unsubscribes.
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

// New builds a registry for the static key pairs.
func New(pairs []Pair) *Registry {
	r := &Registry{}
	envs := make([]*Env, 0, len(pairs))
	for _, p := range pairs {
		e := &Env{ClientKey: p.ClientKey, static: true, feed: &r.feed}
		if p.ServerKey != "" {
			e.keys.Store(&[]ServerKey{{Key: p.ServerKey, Active: true}})
		}
		envs = append(envs, e)
	}
	r.idx.Store(buildIndex(maphash.MakeSeed(), envs))
	return r
}

// buildIndex indexes envs under seed, or under a fresh seed when two
// different keys share a 64-bit hash under it (odds about n²/2⁶⁴).
func buildIndex(seed maphash.Seed, envs []*Env) *index {
	for {
		if ix, ok := tryIndex(seed, envs); ok {
			return ix
		}
		seed = maphash.MakeSeed()
	}
}

func tryIndex(seed maphash.Seed, envs []*Env) (*index, bool) {
	ix := &index{seed: seed, byHash: make(map[uint64]lookup, 2*len(envs)), envs: envs}
	add := func(l lookup) bool {
		h := maphash.String(seed, l.key)
		if old, dup := ix.byHash[h]; dup && old.key != l.key {
			return false
		}
		ix.byHash[h] = l
		return true
	}
	for _, e := range envs {
		// A "ser." client key (which Flagsmith's proxies accept) is a
		// server-side key to the SDKs that use it, and is served as one.
		kind := environment.ClientKey
		if strings.HasPrefix(e.ClientKey, "ser.") {
			kind = environment.ServerKey
		}
		if !add(lookup{env: e, key: e.ClientKey, kind: kind}) {
			return nil, false
		}
		for _, k := range e.ServerKeys() {
			if !k.Active || k.Key == "" {
				continue
			}
			var exp int64
			if !k.ExpiresAt.IsZero() {
				// A key expiring at the epoch or before is expired
				// already; 1 keeps it distinct from "never".
				exp = max(k.ExpiresAt.UnixNano(), 1)
			}
			if !add(lookup{env: e, key: k.Key, kind: environment.ServerKey, expires: exp}) {
				return nil, false
			}
		}
	}
	return ix, true
}

// Envs lists the current environments: static ones in configuration
// order, then discovered ones. The slice is shared: do not modify it.
func (r *Registry) Envs() []*Env { return r.idx.Load().envs }

// Env returns the current environment with the client key.
func (r *Registry) Env(clientKey string) *Env {
	ix := r.idx.Load()
	l, ok := ix.byHash[maphash.String(ix.seed, clientKey)]
	if !ok || l.env.ClientKey != clientKey {
		return nil
	}
	return l.env
}

// Lookup resolves a request key to its environment and key kind. Keys are
// compared in constant time; a server-side key resolves only while it is
// active and unexpired, judged now, so an expiry between two discoveries
// takes effect at once.
func (r *Registry) Lookup(key string) (*Env, environment.KeyKind, bool) {
	ix := r.idx.Load()
	l, ok := ix.byHash[maphash.String(ix.seed, key)]
	if !ok || subtle.ConstantTimeCompare([]byte(l.key), []byte(key)) != 1 {
		return nil, 0, false
	}
	if l.expires != 0 && time.Now().UnixNano() >= l.expires {
		return nil, 0, false
	}
	return l.env, l.kind, true
}

// Store swaps in a new snapshot that came from the upstream or a file, and
// announces it when it differs from the current one. The source records
// the fetch in its source.Freshness.
func (e *Env) Store(s *environment.Snapshot) {
	old := e.snap.Swap(s)
	e.announce(old, s)
}

func (e *Env) announce(old, s *environment.Snapshot) {
	if old != s && e.feed != nil && !e.removed.Load() {
		e.feed.publish(Change{Env: e, Old: old, New: s})
	}
}

// StoreWarm installs a snapshot read from the warm-start directory, only
// into an empty slot: a document already there (fetched, or read from a
// file) wins. It reports whether s was installed.
func (e *Env) StoreWarm(s *environment.Snapshot) bool {
	if e.snap.CompareAndSwap(nil, s) {
		e.announce(nil, s)
		return true
	}
	return false
}

// Redact shortens a key for logs: enough to tell keys apart, never the
// whole secret. It is redact.Key, the one rule for logs and --print-config.
func Redact(key string) string { return redact.Key(key) }

// sortedKeys copies keys sorted by Key, dropping empty keys and repeats
// (the first of a key wins).
func sortedKeys(keys []ServerKey) []ServerKey {
	out := make([]ServerKey, 0, len(keys))
	for _, k := range keys {
		if k.Key != "" {
			out = append(out, k)
		}
	}
	slices.SortStableFunc(out, func(a, b ServerKey) int { return strings.Compare(a.Key, b.Key) })
	return slices.CompactFunc(out, func(a, b ServerKey) bool { return a.Key == b.Key })
}
