package registry

import (
	"slices"
	"time"
)

// Discovered is one environment as a discovering source lists it: the
// upstream's proxy configuration (proxy_key mode) or Flagsmith's DynamoDB
// tables (environment_source dynamodb).
type Discovered struct {
	ClientKey  string
	ServerKeys []ServerKey
	// KeyOptional keeps the entry without any valid server-side key: its
	// client key is served, since its document is read without one (from
	// DynamoDB). Proxy-key entries need a key to fetch their document.
	KeyOptional bool
}

// Skip is an entry of a discovery that Reconcile left out, and why.
type Skip struct {
	ClientKey string
	Reason    string
	// Quiet marks the expected case of an environment without a valid
	// server key, which is worth a debug line, not a warning.
	Quiet bool
}

// Reasons an entry is skipped.
const (
	SkipNoValidKey = "no active, unexpired server-side key"
	SkipEmptyKey   = "empty client_side_key"
	SkipStaticKey  = "one of its keys belongs to an environment of environment_key_pairs, which wins"
	SkipDuplicate  = "its client_side_key is listed twice; the first entry wins"
	SkipClaimedKey = "one of its keys belongs to another discovered environment listed earlier"
)

// Reconciled says what a Reconcile changed, by client key.
type Reconciled struct {
	Added, Rekeyed, Removed []string
	Skipped                 []Skip
}

// Changed reports whether the set or any environment's keys changed.
func (r Reconciled) Changed() bool {
	return len(r.Added)+len(r.Rekeyed)+len(r.Removed) > 0
}

// Reconcile makes the discovered part of the set what the upstream listed,
// as the Rust edge proxy does on every successful configuration fetch:
//
//   - entries with no server key valid at now are left out, unless
//     KeyOptional;
//   - an entry sharing its client key or any server key with a static
//     environment is left out (static always wins), as is one sharing a key
//     with an entry listed before it (two environments cannot answer to one
//     key);
//   - a new client key adds an environment; an environment whose keys
//     (or their active flags or expiry) changed keeps its *Env and its
//     document, with the new keys; an unchanged one is left alone;
//   - a discovered environment no longer listed is removed: its keys stop
//     resolving and its document is dropped. Static environments are never
//     removed.
//
// Only a successful fetch may call it: a failed one must leave the set as
// it is; the caller records the success in its source.Freshness. The index is rebuilt, and swapped in atomically, only when
// something changed. Additions and removals are announced on the change
// feed.
func (r *Registry) Reconcile(list []Discovered, now time.Time) Reconciled {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.idx.Load()
	var res Reconciled

	static := map[string]bool{}
	current := map[string]*Env{}
	var envs []*Env
	for _, e := range cur.envs {
		if e.static {
			static[e.ClientKey] = true
			for _, k := range e.ServerKeys() {
				static[k.Key] = true
			}
			envs = append(envs, e)
		} else {
			current[e.ClientKey] = e
		}
	}

	claimed := map[string]bool{}
	kept := map[string]bool{}
	type accepted struct {
		clientKey string
		keys      []ServerKey
	}
	var accept []accepted
	for _, d := range list {
		keys := sortedKeys(d.ServerKeys)
		switch {
		case d.ClientKey == "":
			res.Skipped = append(res.Skipped, Skip{ClientKey: d.ClientKey, Reason: SkipEmptyKey})
			continue
		case !d.KeyOptional && !slices.ContainsFunc(keys, func(k ServerKey) bool { return k.ValidAt(now) }):
			res.Skipped = append(res.Skipped, Skip{ClientKey: d.ClientKey, Reason: SkipNoValidKey, Quiet: true})
			continue
		case kept[d.ClientKey]:
			res.Skipped = append(res.Skipped, Skip{ClientKey: d.ClientKey, Reason: SkipDuplicate})
			continue
		}
		all := append([]string{d.ClientKey}, keyStrings(keys)...)
		if slices.ContainsFunc(all, func(k string) bool { return static[k] }) {
			res.Skipped = append(res.Skipped, Skip{ClientKey: d.ClientKey, Reason: SkipStaticKey})
			continue
		}
		if slices.ContainsFunc(all, func(k string) bool { return claimed[k] }) {
			res.Skipped = append(res.Skipped, Skip{ClientKey: d.ClientKey, Reason: SkipClaimedKey})
			continue
		}
		for _, k := range all {
			claimed[k] = true
		}
		kept[d.ClientKey] = true
		accept = append(accept, accepted{clientKey: d.ClientKey, keys: keys})
	}

	var added, removed []*Env
	for _, a := range accept {
		e := current[a.clientKey]
		switch {
		case e == nil:
			e = &Env{ClientKey: a.clientKey, feed: &r.feed}
			e.keys.Store(&a.keys)
			added = append(added, e)
			res.Added = append(res.Added, a.clientKey)
		case !slices.EqualFunc(e.ServerKeys(), a.keys, ServerKey.equal):
			e.keys.Store(&a.keys)
			res.Rekeyed = append(res.Rekeyed, a.clientKey)
		}
		envs = append(envs, e)
	}
	for _, e := range cur.envs {
		if !e.static && !kept[e.ClientKey] {
			removed = append(removed, e)
			res.Removed = append(res.Removed, e.ClientKey)
		}
	}
	if !res.Changed() {
		return res
	}
	r.idx.Store(buildIndex(cur.seed, envs))
	for _, e := range removed {
		e.removed.Store(true)
		old := e.snap.Swap(nil)
		r.feed.publish(Change{Env: e, Old: old, Kind: EnvRemoved})
	}
	for _, e := range added {
		r.feed.publish(Change{Env: e, Kind: EnvAdded})
	}
	return res
}

func keyStrings(keys []ServerKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.Key
	}
	return out
}

// Resource is an SDK endpoint family, as usage reports count them.
type Resource uint8

// Resources, in the order of their counters.
const (
	Flags Resource = iota
	Identities
	EnvironmentDocument
	// NumResources is the number of resources.
	NumResources
)

var resourceNames = [NumResources]string{"flags", "identities", "environment-document"}

// String is the resource's name in usage reports.
func (r Resource) String() string {
	if r < NumResources {
		return resourceNames[r]
	}
	return "unknown"
}

// CountUse records one request served for the resource: one atomic add,
// no allocation, on the request path.
func (e *Env) CountUse(r Resource) {
	if r < NumResources {
		e.uses[r].Add(1)
	}
}

// TakeUses returns the counts recorded since the last call and resets
// them.
func (e *Env) TakeUses() [NumResources]int64 {
	var out [NumResources]int64
	for i := range e.uses {
		out[i] = e.uses[i].Swap(0)
	}
	return out
}
