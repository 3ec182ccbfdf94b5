package source

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fledge-flags/fledge/identity/dynamo"
	"github.com/fledge-flags/fledge/registry"
)

// DynamoReader reads Flagsmith's environment tables: *dynamo.Store, or
// *dynamo.Regions, which fails over between regions.
type DynamoReader interface {
	APIKeys(ctx context.Context) ([]dynamo.APIKey, error)
	EnvironmentDocument(ctx context.Context, clientKey string) ([]byte, error)
	EnvironmentDocuments(ctx context.Context) ([]dynamo.EnvironmentItem, error)
	OverrideEntries(ctx context.Context, envID, clientKey string) ([]json.RawMessage, error)
}

// Dynamo serves environments straight from the DynamoDB tables Flagsmith's
// core writes (environment_source "dynamodb"), as Flagsmith's Edge API
// does. Each refresh:
//
//  1. scans flagsmith_environment_api_key for the server-side keys, with
//     their active and expires_at;
//  2. reads the documents: with Keys, each one's flagsmith_environments
//     item (or its v2 _META item when there is none); without, every item
//     of a scan of flagsmith_environments, which is then the set of
//     environments served;
//  3. when both succeeded, reconciles the registry's set (added, re-keyed,
//     removed environments; an environment needs no server key to be
//     served by its client key);
//  4. installs each document read, compiled only when its bytes changed;
//     a document that could not be read keeps the last good one.
//
// A failure of any step is logged with redacted keys and leaves what it
// would have changed as it was: nothing is removed but by a successful
// scan that no longer lists it. Readiness follows the poller's rule: the
// set must have been read (Freshness.EnableDiscovery, which the caller
// sets) and every document read within the interval plus grace.
type Dynamo struct {
	Reader   DynamoReader
	Registry *registry.Registry
	// Freshness records every successful read of the set and of each
	// document, for readiness and metrics; nil: the source keeps one of
	// its own.
	Freshness *Freshness
	// Keys are the client-side keys to serve; empty: every environment in
	// flagsmith_environments.
	Keys []string
	// MergeOverrides puts the v2 identity_override items into the
	// document's identity_overrides for environments with
	// use_identity_overrides_in_local_eval. Off where something else
	// merges them when serving (the api role on the dynamodb store, whose
	// admin.DocumentOverrides reads the same items).
	MergeOverrides bool
	// Interval is the time between refreshes; Timeout bounds each read.
	Interval, Timeout time.Duration
	Logger            *slog.Logger
	// Snapshots, if set, persists every new document for warm starts.
	Snapshots *SnapshotDir
	// now is replaceable in tests.
	now       func() time.Time
	freshOnce sync.Once
	wakeOnce  sync.Once
	wake      chan struct{} // capacity 1: "refresh at once"
}

func (d *Dynamo) wakeChan() chan struct{} {
	d.wakeOnce.Do(func() { d.wake = make(chan struct{}, 1) })
	return d.wake
}

// Wake asks Run to refresh at once instead of at the next interval (a
// self-hosted Flagsmith's queue-change call, after it wrote the tables).
// Calls while a refresh is pending are merged; a refresh reads the whole
// set, so the key only has to be known. It reports false for an unknown
// key, and never blocks.
func (d *Dynamo) Wake(clientKey string) bool {
	if d.Registry.Env(clientKey) == nil {
		return false
	}
	select {
	case d.wakeChan() <- struct{}{}:
	default: // already pending
	}
	return true
}

// fresh is the Freshness the source records into.
func (d *Dynamo) fresh() *Freshness {
	d.freshOnce.Do(func() {
		if d.Freshness == nil {
			d.Freshness = NewFreshness(d.Registry)
		}
	})
	return d.Freshness
}

// docResult is one environment's read document or why there is none.
type docResult struct {
	raw []byte
	err error
}

// Run refreshes until ctx ends: at once, then every Interval (with up to
// 10% jitter). Until the set and every document have been read once, it
// retries sooner, after 1 s, 2 s, 4 s… up to the interval, as the poller
// does.
func (d *Dynamo) Run(ctx context.Context) {
	retry := coldRetry{first: FirstRetry, max: d.Interval}
	for {
		d.Refresh(ctx)
		wait := jittered(d.Interval)
		if d.cold() {
			wait = min(wait, retry.next())
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-d.wakeChan():
			t.Stop()
		}
	}
}

func (d *Dynamo) cold() bool {
	fresh := d.fresh()
	if fresh.LastDiscovery().IsZero() {
		return true
	}
	for _, env := range d.Registry.Envs() {
		if fresh.LastSuccess(env).IsZero() {
			return true
		}
	}
	return false
}

func (d *Dynamo) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

func (d *Dynamo) clock() time.Time {
	if d.now != nil {
		return d.now()
	}
	return time.Now()
}

// call runs fn bounded by Timeout.
func call[T any](ctx context.Context, timeout time.Duration, fn func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return fn(ctx)
}

// Refresh is one pass (see Dynamo).
func (d *Dynamo) Refresh(ctx context.Context) {
	log := d.logger()
	keys, kerr := call(ctx, d.Timeout, d.Reader.APIKeys)
	if kerr != nil {
		log.Error("dynamodb: reading server-side keys failed", "error", kerr.Error(),
			"serving", "the last good set of environments and keys", "environments", len(d.Registry.Envs()))
	}
	docs, listed := d.documents(ctx)
	if ctx.Err() != nil {
		return
	}
	if kerr == nil && listed != nil {
		d.reconcile(ctx, listed, keys)
	}
	for _, env := range d.Registry.Envs() {
		if ctx.Err() != nil {
			return
		}
		r, ok := docs[env.ClientKey]
		if !ok {
			continue // not read this pass (a failed scan, logged)
		}
		if r.err == nil {
			r.err = d.install(ctx, env, r.raw)
		}
		if r.err != nil {
			attrs := []any{"client_key", registry.Redact(env.ClientKey), "error", r.err.Error()}
			if s := env.Snapshot(); s != nil {
				attrs = append(attrs, "serving", "last good document", "updated_at", s.UpdatedAt)
			}
			if errors.Is(r.err, dynamo.ErrNoDocument) {
				attrs = append(attrs, "hint", "store.dynamodb.environment_keys names an environment whose document is in neither environments table")
			}
			log.Warn("dynamodb: environment document read failed", attrs...)
		}
	}
}

// documents reads the documents, by client key, and the client keys that
// make up the set (nil when the set could not be read).
func (d *Dynamo) documents(ctx context.Context) (map[string]docResult, []string) {
	docs := map[string]docResult{}
	if len(d.Keys) > 0 {
		for _, k := range d.Keys {
			raw, err := call(ctx, d.Timeout, func(ctx context.Context) ([]byte, error) {
				return d.Reader.EnvironmentDocument(ctx, k)
			})
			docs[k] = docResult{raw: raw, err: err}
		}
		return docs, d.Keys
	}
	items, err := call(ctx, d.Timeout, d.Reader.EnvironmentDocuments)
	if err != nil {
		d.logger().Error("dynamodb: scanning environment documents failed", "error", err.Error(),
			"serving", "the last good documents", "environments", len(d.Registry.Envs()))
		return docs, nil
	}
	listed := make([]string, 0, len(items))
	for _, it := range items {
		if _, dup := docs[it.ClientKey]; dup {
			continue
		}
		docs[it.ClientKey] = docResult{raw: it.JSON, err: it.Err}
		listed = append(listed, it.ClientKey)
	}
	return docs, listed
}

// reconcile makes the registry's set the listed environments with their
// server-side keys.
func (d *Dynamo) reconcile(ctx context.Context, listed []string, keys []dynamo.APIKey) {
	byClient := map[string][]registry.ServerKey{}
	for _, k := range keys {
		byClient[k.ClientKey] = append(byClient[k.ClientKey], registry.ServerKey{Key: k.Key, Active: k.Active, ExpiresAt: k.ExpiresAt})
	}
	list := make([]registry.Discovered, len(listed))
	for i, ck := range listed {
		list[i] = registry.Discovered{ClientKey: ck, ServerKeys: byClient[ck], KeyOptional: true}
	}
	now := d.clock()
	res := d.Registry.Reconcile(list, now)
	d.fresh().MarkDiscovered(now)
	log := d.logger()
	for _, s := range res.Skipped {
		log.Log(ctx, slog.LevelWarn, "dynamodb: environment skipped", "client_key", registry.Redact(s.ClientKey), "reason", s.Reason)
	}
	for _, k := range res.Added {
		log.Info("environment added", "client_key", registry.Redact(k))
		if d.Snapshots != nil {
			if env := d.Registry.Env(k); env != nil {
				d.Snapshots.loadOne(env, d.fresh(), log)
			}
		}
	}
	for _, k := range res.Rekeyed {
		log.Info("environment server-side keys changed", "client_key", registry.Redact(k))
	}
	for _, k := range res.Removed {
		log.Info("environment removed", "client_key", registry.Redact(k))
	}
}

// install swaps in the document read for env when it changed, and marks
// the read either way.
func (d *Dynamo) install(ctx context.Context, env *registry.Env, raw []byte) error {
	if d.MergeOverrides {
		var err error
		if raw, err = d.mergeOverrides(ctx, env.ClientKey, raw); err != nil {
			return err
		}
	}
	cur := env.Snapshot()
	fresh := d.fresh()
	if cur != nil && cur.SourceSum == sha256.Sum256(raw) && !fresh.Warm(env) {
		fresh.MarkFetched(env, d.clock())
		return nil
	}
	snap, err := Build(raw, d.logger(), env.ClientKey)
	if err != nil {
		return err
	}
	if env.Removed() {
		return nil
	}
	fresh.MarkFetched(env, d.clock())
	env.Store(snap)
	d.logger().Info("environment document updated", "client_key", registry.Redact(env.ClientKey),
		"updated_at", snap.UpdatedAt, "bytes", len(raw), "source", "dynamodb")
	if d.Snapshots != nil {
		if err := d.Snapshots.Save(env.ClientKey, snap.Document.JSON); err != nil {
			d.logger().Warn("saving warm-start snapshot failed", "client_key", registry.Redact(env.ClientKey), "error", err.Error())
		}
	}
	return nil
}

// mergeOverrides puts the environment's v2 identity_override items into
// identity_overrides when the document asks for them: an entry of the
// document for an identifier the items also have is replaced, others are
// kept (core's v1 item has none).
func (d *Dynamo) mergeOverrides(ctx context.Context, clientKey string, raw []byte) ([]byte, error) {
	var head struct {
		ID        json.Number `json:"id"`
		Overrides *bool       `json:"use_identity_overrides_in_local_eval"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("invalid document: %w", err)
	}
	if head.Overrides == nil || !*head.Overrides || head.ID == "" {
		return raw, nil
	}
	entries, err := call(ctx, d.Timeout, func(ctx context.Context) ([]json.RawMessage, error) {
		return d.Reader.OverrideEntries(ctx, head.ID.String(), clientKey)
	})
	if err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("invalid document: %w", err)
	}
	stored := map[string]bool{}
	for _, e := range entries {
		var h struct {
			Identifier string `json:"identifier"`
		}
		_ = json.Unmarshal(e, &h)
		stored[h.Identifier] = true
	}
	var doc []json.RawMessage
	_ = json.Unmarshal(top["identity_overrides"], &doc) // absent or unreadable: none
	merged := make([]json.RawMessage, 0, len(doc)+len(entries))
	for _, e := range doc {
		var h struct {
			Identifier string `json:"identifier"`
		}
		if json.Unmarshal(e, &h) == nil && stored[h.Identifier] {
			continue
		}
		merged = append(merged, e)
	}
	merged = append(merged, entries...)
	if top["identity_overrides"], err = json.Marshal(merged); err != nil {
		return nil, fmt.Errorf("encoding identity_overrides: %w", err)
	}
	out, err := json.Marshal(top)
	if err != nil {
		return nil, fmt.Errorf("encoding the document: %w", err)
	}
	return out, nil
}
