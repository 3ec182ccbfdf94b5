package admin

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/identity"
)

// DocumentOverrides renders /api/v1/environment-document/ with the
// store's identity overrides in identity_overrides, for environments with
// use_identity_overrides_in_local_eval, so local-evaluation SDKs see the
// overrides made through the admin API. Each store identity with overrides
// becomes one {identifier, identity_uuid, environment_api_key,
// identity_features} entry; an entry of the upstream document for the same
// identifier is replaced by it, others are kept.
//
// A rendering is cached per environment until the snapshot changes, an
// override changes (Changed, which the admin API calls), or MaxAge passes
// (for writers outside this process). It is safe for concurrent use.
type DocumentOverrides struct {
	store identity.Store
	opt   DocumentOptions
	// started is when this process began serving overrides: the earliest
	// LastModified it reports, since changes made before a restart are
	// not known.
	started time.Time

	mu   sync.Mutex
	envs map[string]*docState // by client key
	cats catalogs
}

// DocumentOptions tunes DocumentOverrides.
type DocumentOptions struct {
	// MaxAge re-reads the store's overrides this long after a rendering
	// even without a Changed call (0: only on Changed or a new snapshot).
	MaxAge time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

type docState struct {
	render sync.Mutex // one rendering at a time per environment
	// Guarded by DocumentOverrides.mu:
	gen     uint64
	changed time.Time
	cached  *rendered
}

type rendered struct {
	snap *environment.Snapshot
	gen  uint64
	at   time.Time
	body environment.Body
}

// NewDocumentOverrides returns the renderer for store.
func NewDocumentOverrides(store identity.Store, opt DocumentOptions) *DocumentOverrides {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &DocumentOverrides{store: store, opt: opt, started: opt.Now(), envs: map[string]*docState{}}
}

func (d *DocumentOverrides) state(envKey string) *docState {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.envs[envKey]
	if st == nil {
		st = &docState{changed: d.started}
		d.envs[envKey] = st
	}
	return st
}

// Changed records that the environment's overrides changed: the next
// Document renders afresh.
func (d *DocumentOverrides) Changed(envKey string) {
	st := d.state(envKey)
	d.mu.Lock()
	st.gen++
	if now := d.opt.Now(); now.After(st.changed) {
		st.changed = now
	}
	d.mu.Unlock()
}

// Document returns the document body to serve for snap and the time it
// last changed (for Last-Modified and If-Modified-Since): the snapshot's
// own document and updated_at when the environment does not put identity
// overrides in its document, else the rendering with the store's overrides
// and the later of updated_at and the last override change. An error means
// the store could not be read (answer 503).
func (d *DocumentOverrides) Document(ctx context.Context, snap *environment.Snapshot) (*environment.Body, time.Time, error) {
	if !snap.IdentityOverridesInLocalEval() || len(snap.Document.JSON) == 0 {
		return &snap.Document, snap.UpdatedAt, nil
	}
	st := d.state(snap.APIKey)
	st.render.Lock()
	defer st.render.Unlock()
	d.mu.Lock()
	gen, changed, c := st.gen, st.changed, st.cached
	d.mu.Unlock()
	modified := changed
	if snap.UpdatedAt.After(modified) {
		modified = snap.UpdatedAt
	}
	now := d.opt.Now()
	if c != nil && c.snap == snap && c.gen == gen && (d.opt.MaxAge <= 0 || now.Sub(c.at) < d.opt.MaxAge) {
		return &c.body, modified, nil
	}
	body, err := d.render(ctx, snap)
	if err != nil {
		return nil, time.Time{}, err
	}
	r := &rendered{snap: snap, gen: gen, at: now, body: body}
	d.mu.Lock()
	st.cached = r
	d.mu.Unlock()
	return &r.body, modified, nil
}

// docOverride is one identity_overrides entry.
type docOverride struct {
	Identifier        string            `json:"identifier"`
	IdentityUUID      string            `json:"identity_uuid"`
	EnvironmentAPIKey string            `json:"environment_api_key"`
	IdentityFeatures  []json.RawMessage `json:"identity_features"`
}

func (d *DocumentOverrides) render(ctx context.Context, snap *environment.Snapshot) (environment.Body, error) {
	items, err := d.store.Overrides(ctx, identity.Env{APIKey: snap.APIKey, ID: snap.EnvironmentID}, 0)
	if err != nil {
		return environment.Body{}, fmt.Errorf("reading identity overrides of %s: %w", snap.APIKey, err)
	}
	cat := d.cats.get(snap.APIKey, snap)
	var entries []*docOverride
	byUUID := map[string]*docOverride{}
	for _, it := range items {
		fi, ok := cat.byID[it.Override.Feature.ID]
		if !ok {
			continue // the feature is gone; SDKs would ignore it anyway
		}
		o := it.Override
		o.Feature = fi.ref // the current name: SDKs match overrides by name
		o.MultivariateValues = normalizeMV(o.MultivariateValues, fi)
		fs, err := identity.MarshalOverride(o)
		if err != nil {
			return environment.Body{}, fmt.Errorf("encoding an override of %s: %w", it.IdentityUUID, err)
		}
		e := byUUID[it.IdentityUUID]
		if e == nil {
			e = &docOverride{Identifier: it.Identifier, IdentityUUID: it.IdentityUUID, EnvironmentAPIKey: snap.APIKey}
			byUUID[it.IdentityUUID] = e
			entries = append(entries, e)
		}
		e.IdentityFeatures = append(e.IdentityFeatures, fs)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(snap.Document.JSON, &top); err != nil {
		return environment.Body{}, fmt.Errorf("reading the document of %s: %w", snap.APIKey, err)
	}
	stored := make(map[string]bool, len(entries))
	for _, e := range entries {
		stored[e.Identifier] = true
	}
	merged := make([]json.RawMessage, 0, len(entries))
	var upstream []json.RawMessage
	_ = json.Unmarshal(top["identity_overrides"], &upstream) // absent or unreadable: none
	for _, raw := range upstream {
		var head struct {
			Identifier string `json:"identifier"`
		}
		if json.Unmarshal(raw, &head) == nil && stored[head.Identifier] {
			continue
		}
		merged = append(merged, raw)
	}
	for _, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return environment.Body{}, fmt.Errorf("encoding identity overrides: %w", err)
		}
		merged = append(merged, b)
	}
	if top["identity_overrides"], err = json.Marshal(merged); err != nil {
		return environment.Body{}, fmt.Errorf("encoding identity overrides: %w", err)
	}
	doc, err := json.Marshal(top)
	if err != nil {
		return environment.Body{}, fmt.Errorf("encoding the document: %w", err)
	}
	return newBody(doc)
}

// newBody prepares a body as environment.Snapshot prepares its own: gzip
// from environment.GzipMinBytes on, at the speed the document uses.
func newBody(doc []byte) (environment.Body, error) {
	b := environment.Body{JSON: doc, JSONLength: []string{strconv.Itoa(len(doc))}}
	if len(doc) < environment.GzipMinBytes {
		return b, nil
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return environment.Body{}, err
	}
	if _, err := zw.Write(doc); err != nil {
		return environment.Body{}, fmt.Errorf("compressing the document: %w", err)
	}
	if err := zw.Close(); err != nil {
		return environment.Body{}, fmt.Errorf("compressing the document: %w", err)
	}
	b.Gzip = buf.Bytes()
	b.GzipLength = []string{strconv.Itoa(len(b.Gzip))}
	return b, nil
}
