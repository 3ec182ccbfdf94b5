// Package edge is the api role's identify stage: it loads the stored
// identity, merges the request's traits as Flagsmith's Edge API does, saves
// what must persist through an identity.Store, and hands the engine the
// identity's traits and own overrides.
//
// The cases (edge-api.md, POST /identities/ table):
//   - no identifier (missing, null, blank): fully transient; nothing is read
//     or stored; the identifier is the SHA-256 of the sorted traits, or a
//     random UUID without traits;
//   - transient: true (or GET with transient=true): the stored identity is
//     loaded and evaluated with the incoming traits laid over it; nothing
//     is written;
//   - default: get-or-create; non-transient traits are upserted (unchanged
//     values not rewritten), null deletes, transient traits are evaluated
//     only and win on a key clash.
package edge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/sdk"
)

// Identifier implements sdk.Identifier on a Store.
type Identifier struct {
	Store  identity.Store
	Logger *slog.Logger
	// EvaluateBlockedClientTraits is the SaaS Edge API's behaviour
	// (flagsmith#6822): with allow_client_traits off, traits sent with a
	// client key are still evaluated, though never stored. Off by default,
	// which is core's behaviour: such traits are dropped entirely.
	EvaluateBlockedClientTraits bool
}

// incoming is one trait of the request.
type incoming struct {
	key       string
	value     engine.Value
	raw       json.RawMessage
	transient bool
}

// Identify implements sdk.Identifier.
func (e *Identifier) Identify(ctx context.Context, snap *environment.Snapshot, kind environment.KeyKind, req *sdk.IdentityRequest, out *sdk.Identified) error {
	if snap.StopServingFlags() {
		return sdk.ErrStopServingFlags
	}
	traits := make([]incoming, 0, len(req.RawTraits))
	for i, rt := range req.RawTraits {
		traits = append(traits, incoming{key: rt.Key, value: req.Identity.Traits[i].Value, raw: rt.Value, transient: rt.Transient || req.Transient})
	}
	if kind == environment.ClientKey && !snap.AllowClientTraits() {
		if e.EvaluateBlockedClientTraits {
			for i := range traits {
				traits[i].transient = true
			}
		} else {
			traits = nil
		}
	}
	env := identity.Env{APIKey: snap.APIKey, ID: snap.EnvironmentID}
	switch {
	case req.Identity.Identifier == "":
		fullyTransient(traits, out)
		return nil
	case req.Transient:
		cur, err := e.load(ctx, env.APIKey, req.Identity.Identifier)
		if err != nil {
			return err
		}
		e.result(snap, req.Identity.Identifier, cur, traits, out)
		return nil
	case req.Get:
		cur, err := e.load(ctx, env.APIKey, req.Identity.Identifier)
		if err != nil {
			return err
		}
		if cur == nil {
			// Lazily created, as the Edge API documents.
			if cur, err = e.Store.Update(ctx, env, req.Identity.Identifier, func(c *identity.Identity) (*identity.Identity, error) {
				if c != nil {
					return nil, identity.ErrSkip
				}
				return &identity.Identity{EnvironmentAPIKey: env.APIKey, Identifier: req.Identity.Identifier}, nil
			}); err != nil {
				return storeError(err)
			}
		}
		e.result(snap, req.Identity.Identifier, cur, nil, out)
		return nil
	}
	persist := snap.PersistTraitData()
	stored, err := e.Store.Update(ctx, env, req.Identity.Identifier, func(cur *identity.Identity) (*identity.Identity, error) {
		changed := false
		if cur == nil {
			cur = &identity.Identity{EnvironmentAPIKey: env.APIKey, Identifier: req.Identity.Identifier}
			changed = true
		}
		if persist {
			for _, t := range traits {
				if !t.transient && setTrait(cur, t.key, t.value) {
					changed = true
				}
			}
		}
		if !changed {
			return nil, identity.ErrSkip
		}
		return cur, nil
	})
	if err != nil {
		return storeError(err)
	}
	overlay := traits
	if persist {
		overlay = slices.DeleteFunc(slices.Clone(traits), func(t incoming) bool { return !t.transient })
	}
	e.result(snap, req.Identity.Identifier, stored, overlay, out)
	return nil
}

func (e *Identifier) load(ctx context.Context, envKey, identifier string) (*identity.Identity, error) {
	cur, err := e.Store.Get(ctx, envKey, identifier)
	if errors.Is(err, identity.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeError(err)
	}
	return cur, nil
}

// storeError turns the limits a store enforces into field errors (400);
// everything else stays a store failure (503).
func storeError(err error) error {
	switch {
	case errors.Is(err, identity.ErrTooLarge):
		return &sdk.FieldError{Loc: []any{"body", "traits"}, Type: "too_large", Msg: "the identity would exceed the 400 KB item limit: " + err.Error()}
	case errors.Is(err, identity.ErrInvalid):
		return &sdk.FieldError{Loc: []any{"body"}, Type: "value_error", Msg: err.Error()}
	}
	return err
}

// setTrait applies one non-transient trait to a stored identity: null
// deletes, a value is typed as Flagsmith types it and written unless equal
// to the stored one. It reports whether anything changed.
func setTrait(id *identity.Identity, key string, v engine.Value) bool {
	i := slices.IndexFunc(id.Traits, func(t identity.Trait) bool { return t.Key == key })
	if v.Kind == engine.KindNone {
		if i < 0 {
			return false
		}
		id.Traits = slices.Delete(id.Traits, i, i+1)
		return true
	}
	v = identity.Coerce(v)
	if i >= 0 {
		if sameValue(id.Traits[i].Value, v) {
			return false
		}
		id.Traits[i].Value = v
		return true
	}
	id.Traits = append(id.Traits, identity.Trait{Key: key, Value: v})
	return true
}

func sameValue(a, b engine.Value) bool {
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case engine.KindString:
		return a.Str == b.Str
	case engine.KindFloat:
		return a.Float == b.Float
	case engine.KindInt:
		if a.Big != nil || b.Big != nil {
			return a.Big != nil && b.Big != nil && a.Big.Cmp(b.Big) == 0
		}
	}
	return a.Int == b.Int
}

// result builds what is evaluated and returned: the stored traits (cur may
// be nil) with the transient overlay laid over them, system traits winning
// in evaluation, the identity's own overrides, and the hash key.
func (e *Identifier) result(snap *environment.Snapshot, identifier string, cur *identity.Identity, overlay []incoming, out *sdk.Identified) {
	type entry struct {
		rt    sdk.RawTrait
		value engine.Value
	}
	var merged []entry
	if cur != nil {
		merged = make([]entry, 0, len(cur.Traits)+len(overlay))
		// The stored values' JSON shares one buffer: one allocation for
		// all of them instead of one each. A slice taken before the
		// buffer grows keeps the old array, which stays valid.
		buf := make([]byte, 0, 16*len(cur.Traits))
		for _, t := range cur.Traits {
			start := len(buf)
			buf = identity.AppendValueJSON(buf, t.Value)
			merged = append(merged, entry{sdk.RawTrait{Key: t.Key, Value: buf[start:len(buf):len(buf)]}, t.Value})
		}
	}
	for _, t := range overlay {
		en := entry{sdk.RawTrait{Key: t.key, Value: t.raw, Transient: t.transient}, t.value}
		if i := slices.IndexFunc(merged, func(m entry) bool { return m.rt.Key == t.key }); i >= 0 {
			merged[i] = en // a null hides the stored value for this evaluation
		} else {
			merged = append(merged, en)
		}
	}
	*out = sdk.Identified{Identity: engine.Identity{Identifier: identifier}}
	out.Traits = make([]sdk.RawTrait, 0, len(merged))
	eval := make([]engine.Trait, 0, len(merged))
	for _, m := range merged {
		out.Traits = append(out.Traits, m.rt)
		if m.value.Kind != engine.KindNone {
			eval = append(eval, engine.Trait{Name: m.rt.Key, Value: m.value})
		}
	}
	if cur != nil {
		for _, st := range cur.SystemTraits {
			if i := slices.IndexFunc(eval, func(t engine.Trait) bool { return t.Name == st.Key }); i >= 0 {
				eval[i].Value = st.Value
			} else {
				eval = append(eval, engine.Trait{Name: st.Key, Value: st.Value})
			}
		}
		for _, o := range cur.Overrides {
			out.Identity.Overrides = append(out.Identity.Overrides, engine.IdentityOverride{Feature: o.Feature.Name, Enabled: o.Enabled, Value: o.Value})
		}
		if !snap.CompositeKeyHashing() && cur.DjangoID != nil {
			// Identities migrated from core keep core's bucketing key, so
			// their splits and variants do not change (edge-api.md item 11).
			out.Identity.Key = strconv.FormatInt(*cur.DjangoID, 10)
		}
	}
	out.Identity.Traits = eval
}

// fullyTransient handles a request without an identifier: nothing is
// stored, every non-null trait is evaluated and returned as transient, and
// the identifier is derived as core derives it.
func fullyTransient(traits []incoming, out *sdk.Identified) {
	*out = sdk.Identified{Identity: engine.Identity{Identifier: transientIdentifier(traits)}}
	for _, t := range traits {
		if t.value.Kind == engine.KindNone {
			continue
		}
		out.Traits = append(out.Traits, sdk.RawTrait{Key: t.key, Value: t.raw, Transient: true})
		if i := slices.IndexFunc(out.Identity.Traits, func(et engine.Trait) bool { return et.Name == t.key }); i >= 0 {
			out.Identity.Traits[i].Value = t.value
		} else {
			out.Identity.Traits = append(out.Identity.Traits, engine.Trait{Name: t.key, Value: t.value})
		}
	}
}

// transientIdentifier is core's identifier for an identity sent without
// one: the SHA-256 hex of key + Python str(value) over the traits sorted by
// key (stably; nulls skipped), or a random UUID4 hex when there are no
// traits at all, so that identical trait sets get the same identifier.
func transientIdentifier(traits []incoming) string {
	if len(traits) == 0 {
		u := uuid.New() // version 4, random; core sends uuid4().hex
		return hex.EncodeToString(u[:])
	}
	sorted := slices.Clone(traits)
	slices.SortStableFunc(sorted, func(a, b incoming) int { return strings.Compare(a.key, b.key) })
	h := sha256.New()
	for _, t := range sorted {
		if t.value.Kind == engine.KindNone {
			continue
		}
		h.Write([]byte(t.key))
		h.Write([]byte(t.value.PyString()))
	}
	return hex.EncodeToString(h.Sum(nil))
}
