// Package analytics carries the SDKs' flag-usage reports (POST
// /api/v1/analytics/flags/ and /api/v2/analytics/flags/) to the Flagsmith
// API. An Aggregator sums the counts per environment in memory, within fixed
// bounds whatever clients send; a Forwarder posts each environment's sums to
// the upstream's /analytics/flags/ on an interval.
package analytics

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/fledge-flags/fledge/environment"
)

// DefaultMaxFeatures is the default cap on distinct feature names kept per
// environment per flush window.
const DefaultMaxFeatures = 1000

// Counts maps feature names to evaluation counts.
type Counts map[string]int64

// Total is the sum of the counts, saturating at math.MaxInt64.
func (c Counts) Total() int64 {
	var n int64
	for _, v := range c {
		n = addSat(n, v)
	}
	return n
}

// Aggregator sums flag evaluation counts per environment until a Forwarder
// takes them. Memory is bounded: at most maxNames distinct feature names
// per environment per window (more are dropped and counted), counts
// saturate at math.MaxInt64, and only environments that authenticated
// (bounded by configuration) get a window. It is safe for concurrent use.
type Aggregator struct {
	maxNames int

	mu   sync.RWMutex
	envs map[string]*window // by client-side key

	invalid  atomic.Int64 // entries that were not a name with a non-negative integer count
	unknown  atomic.Int64 // names that are not features of the environment
	overflow atomic.Int64 // names refused by the per-window cap
}

// window holds one environment's counts since the last take. Each has its
// own lock, so reports for different environments never wait on each other.
type window struct {
	mu       sync.Mutex
	counts   Counts
	overflow int64 // names refused by the cap in this window
}

// Stats are the Aggregator's totals of dropped input since it was made.
type Stats struct {
	// Invalid counts entries without a feature name or with a count that
	// is not a non-negative JSON integer, and bodies that were not the
	// documented JSON shape (each counts once).
	Invalid int64
	// Unknown counts entries naming a feature the environment does not
	// have (Flagsmith would ignore them).
	Unknown int64
	// OverLimit counts entries dropped because their environment already
	// had the maximum number of distinct feature names in the window.
	OverLimit int64
}

// NewAggregator returns an Aggregator keeping at most maxNames distinct
// feature names per environment per window (DefaultMaxFeatures when
// maxNames < 1).
func NewAggregator(maxNames int) *Aggregator {
	if maxNames < 1 {
		maxNames = DefaultMaxFeatures
	}
	return &Aggregator{maxNames: maxNames, envs: map[string]*window{}}
}

// Stats returns the totals of dropped input.
func (a *Aggregator) Stats() Stats {
	return Stats{Invalid: a.invalid.Load(), Unknown: a.unknown.Load(), OverLimit: a.overflow.Load()}
}

// RecordV1 adds a v1 report, {"feature_name": count, …}, sent with a key of
// snap's environment. Entries are judged one by one, as Flagsmith does: a
// count that is not a non-negative JSON integer (1.5, "3", true, -2) or a
// name the environment does not have drops that entry only. A count beyond
// int64 is taken as math.MaxInt64.
func (a *Aggregator) RecordV1(snap *environment.Snapshot, body []byte) {
	var report map[string]json.RawMessage
	if json.Unmarshal(body, &report) != nil || report == nil {
		a.invalid.Add(1)
		return
	}
	batch := make(Counts, len(report))
	for name, raw := range report {
		n, ok := count(raw)
		if !ok {
			a.invalid.Add(1)
			continue
		}
		batch[name] = n
	}
	a.add(snap, batch)
}

// RecordV2 adds a v2 report, {"evaluations": [{"feature_name",
// "identity_identifier", "enabled_when_evaluated", "count"}, …]}, by summing
// count per feature_name. The upstream gets the v1 form, so the identity
// and the enabled state are not kept; an entry without a string
// feature_name or with a count that is not a non-negative JSON integer is
// dropped.
func (a *Aggregator) RecordV2(snap *environment.Snapshot, body []byte) {
	var report struct {
		Evaluations []json.RawMessage `json:"evaluations"`
	}
	if json.Unmarshal(body, &report) != nil || report.Evaluations == nil {
		a.invalid.Add(1)
		return
	}
	batch := make(Counts, len(report.Evaluations))
	for _, raw := range report.Evaluations {
		var e struct {
			FeatureName json.RawMessage `json:"feature_name"`
			Count       json.RawMessage `json:"count"`
		}
		var name string
		if json.Unmarshal(raw, &e) != nil || !isString(e.FeatureName) || json.Unmarshal(e.FeatureName, &name) != nil {
			a.invalid.Add(1)
			continue
		}
		n, ok := count(e.Count)
		if !ok {
			a.invalid.Add(1)
			continue
		}
		batch[name] = addSat(batch[name], n)
	}
	a.add(snap, batch)
}

// add merges a report's counts into snap's environment window. Names the
// environment does not have are dropped first: they would crowd real ones
// out of the cap, and Flagsmith ignores them (older versions refused the
// whole report for one of them).
func (a *Aggregator) add(snap *environment.Snapshot, batch Counts) {
	for name, n := range batch {
		if _, ok := snap.FlagJSON(environment.ServerKey, name); !ok {
			a.unknown.Add(1)
			delete(batch, name)
		} else if n == 0 {
			delete(batch, name) // nothing to report; must not take a slot
		}
	}
	if len(batch) == 0 {
		return
	}
	w := a.window(snap.APIKey)
	var over int64
	w.mu.Lock()
	for name, n := range batch {
		if cur, ok := w.counts[name]; ok {
			w.counts[name] = addSat(cur, n)
		} else if len(w.counts) < a.maxNames {
			w.counts[name] = n
		} else {
			over++
		}
	}
	w.overflow += over
	w.mu.Unlock()
	if over > 0 {
		a.overflow.Add(over)
	}
}

// window returns the environment's window, creating it on first use.
func (a *Aggregator) window(clientKey string) *window {
	a.mu.RLock()
	w := a.envs[clientKey]
	a.mu.RUnlock()
	if w != nil {
		return w
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if w = a.envs[clientKey]; w == nil {
		w = &window{counts: Counts{}}
		a.envs[clientKey] = w
	}
	return w
}

// taken is one environment's window as a Forwarder takes it.
type taken struct {
	counts   Counts
	overflow int64
}

// take empties every window and returns what they held, by client key.
// Environments with nothing to report are left out.
func (a *Aggregator) take() map[string]taken {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := map[string]taken{}
	for key, w := range a.envs {
		var t taken
		w.mu.Lock()
		if len(w.counts) > 0 {
			// The map goes to the caller; the window starts a new one.
			t.counts, w.counts = w.counts, make(Counts, len(w.counts))
		}
		t.overflow, w.overflow = w.overflow, 0
		w.mu.Unlock()
		if len(t.counts) > 0 || t.overflow > 0 {
			out[key] = t
		}
	}
	return out
}

// count parses a count from valid JSON: an integer (no fraction or
// exponent, as Flagsmith requires an int), not negative. Beyond int64 it
// saturates.
func count(raw json.RawMessage) (int64, bool) {
	s := bytes.TrimSpace(raw)
	if len(s) == 0 || s[0] == '-' {
		return 0, len(s) == 2 && s[1] == '0' // -0 is 0
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		return math.MaxInt64, true // only a range error is possible here
	}
	return n, true
}

func isString(raw json.RawMessage) bool {
	s := bytes.TrimSpace(raw)
	return len(s) > 0 && s[0] == '"'
}

// addSat adds two non-negative counts, saturating at math.MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
