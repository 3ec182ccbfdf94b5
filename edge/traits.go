package edge

import (
	"context"
	"slices"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/sdk"
)

// errClientTraits refuses traits from a client key, worded as core words it.
var errClientTraits = &sdk.FieldError{Loc: []any{"body"}, Type: "non_field_errors", Msg: "Setting traits not allowed with client key."}

// SetTrait implements sdk.TraitWriter: POST /api/v1/traits/ creates the
// identity if needed and stores one trait (typed as Flagsmith types it).
func (e *Identifier) SetTrait(ctx context.Context, snap *environment.Snapshot, kind environment.KeyKind, req *sdk.TraitRequest) (engine.Value, error) {
	if snap.StopServingFlags() {
		return engine.Value{}, sdk.ErrStopServingFlags
	}
	if !snap.PersistTraitData() {
		return engine.Value{}, sdk.ErrTraitsNotStored
	}
	if kind == environment.ClientKey && !snap.AllowClientTraits() {
		return engine.Value{}, errClientTraits
	}
	env := identity.Env{APIKey: snap.APIKey, ID: snap.EnvironmentID}
	_, err := e.Store.Update(ctx, env, req.Identifier, func(cur *identity.Identity) (*identity.Identity, error) {
		changed := cur == nil
		if cur == nil {
			cur = &identity.Identity{EnvironmentAPIKey: env.APIKey, Identifier: req.Identifier}
		}
		if setTrait(cur, req.Key, req.Value) {
			changed = true
		}
		if !changed {
			return nil, identity.ErrSkip
		}
		return cur, nil
	})
	if err != nil {
		return engine.Value{}, storeError(err)
	}
	return identity.Coerce(req.Value), nil
}

// Bulk implements sdk.TraitWriter for bulk-identities. Unlike the SaaS,
// which accepts and processes later, every identity is stored before the
// answer. Transient items store nothing; with a client key and
// allow_client_traits off, traits are dropped and identities still made.
func (e *Identifier) Bulk(ctx context.Context, snap *environment.Snapshot, kind environment.KeyKind, reqs []*sdk.IdentityRequest, replace bool) error {
	if snap.StopServingFlags() {
		return sdk.ErrStopServingFlags
	}
	env := identity.Env{APIKey: snap.APIKey, ID: snap.EnvironmentID}
	keepTraits := snap.PersistTraitData() && (kind == environment.ServerKey || snap.AllowClientTraits())
	for _, req := range reqs {
		if req.Transient {
			continue
		}
		_, err := e.Store.Update(ctx, env, req.Identity.Identifier, func(cur *identity.Identity) (*identity.Identity, error) {
			changed := cur == nil
			if cur == nil {
				cur = &identity.Identity{EnvironmentAPIKey: env.APIKey, Identifier: req.Identity.Identifier}
			}
			if !keepTraits {
				if !changed {
					return nil, identity.ErrSkip
				}
				return cur, nil
			}
			if replace {
				// Traits not sent are removed: the identity's traits become
				// exactly the non-transient, non-null ones of the request.
				sent := make(map[string]bool, len(req.RawTraits))
				for _, rt := range req.RawTraits {
					if !rt.Transient {
						sent[rt.Key] = true
					}
				}
				before := len(cur.Traits)
				cur.Traits = slices.DeleteFunc(cur.Traits, func(t identity.Trait) bool { return !sent[t.Key] })
				changed = changed || len(cur.Traits) != before
			}
			for i, rt := range req.RawTraits {
				if !rt.Transient && setTrait(cur, rt.Key, req.Identity.Traits[i].Value) {
					changed = true
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
	}
	return nil
}
