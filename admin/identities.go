package admin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// Core's limits on edge-identities bodies.
const (
	maxIdentifierChars = 2000
	defaultPageSize    = 100
)

// identityOut is an identity as the edge-identities endpoints serve it.
type identityOut struct {
	IdentityUUID   string  `json:"identity_uuid"`
	Identifier     string  `json:"identifier"`
	DashboardAlias *string `json:"dashboard_alias"`
}

func outIdentity(id *identity.Identity) identityOut {
	out := identityOut{IdentityUUID: id.UUID, Identifier: id.Identifier}
	if id.DashboardAlias != "" {
		alias := id.DashboardAlias
		out.DashboardAlias = &alias
	}
	return out
}

// lookup returns the identity with the UUID if it belongs to this
// environment; another environment's identity is not found.
func (c *call) lookup(uuid string) (*identity.Identity, error) {
	id, err := c.h.opt.Store.GetByUUID(c.r.Context(), uuid)
	if errors.Is(err, identity.ErrNotFound) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading identity %s: %w", uuid, err)
	}
	if id.EnvironmentAPIKey != c.envKey {
		return nil, errNotFound
	}
	return id, nil
}

// update applies fn to the identity with the UUID through Store.Update,
// so the read-modify-write is atomic. fn is not called (errNotFound) when
// the identity has gone, or was replaced by another of the same identifier.
func (c *call) update(uuid string, fn identity.UpdateFunc) (*identity.Identity, error) {
	id, err := c.lookup(uuid)
	if err != nil {
		return nil, err
	}
	out, err := c.h.opt.Store.Update(c.r.Context(), c.env, id.Identifier, func(cur *identity.Identity) (*identity.Identity, error) {
		if cur == nil || cur.UUID != uuid {
			return nil, errNotFound
		}
		return fn(cur)
	})
	if err != nil {
		return nil, fmt.Errorf("updating identity %s: %w", uuid, err)
	}
	return out, nil
}

// ---- edge-identities/ --------------------------------------------------------

type listOut struct {
	Results          []identityOut `json:"results"`
	LastEvaluatedKey *string       `json:"last_evaluated_key"`
}

// listIdentities: GET edge-identities/?q=&page_size=&last_evaluated_key=.
func (c *call) listIdentities() error {
	q := c.r.URL.Query()
	lq := identity.ListQuery{Limit: defaultPageSize}
	if v := strings.TrimSpace(q.Get("page_size")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fieldError("page_size", "A valid integer is required.")
		}
		if n > 0 && n < defaultPageSize {
			lq.Limit = n
		}
	}
	search := q.Get("q")
	if rest, ok := strings.CutPrefix(search, "dashboard_alias:"); ok {
		lq.ByAlias, search = true, strings.ToLower(rest)
	}
	if len(search) >= 2 && search[0] == '"' && search[len(search)-1] == '"' {
		lq.Exact, search = true, search[1:len(search)-1]
	}
	lq.Search = search
	if v := q.Get("last_evaluated_key"); v != "" {
		cur, err := decodeCursor(v, c.envKey)
		if err != nil {
			return err
		}
		lq.After = cur
	}
	out := listOut{Results: []identityOut{}}
	if lq.Exact && search == "" {
		return c.reply(http.StatusOK, out) // nothing has an empty identifier or alias
	}
	page, err := c.h.opt.Store.List(c.r.Context(), c.envKey, lq)
	if err != nil {
		return fmt.Errorf("listing identities: %w", err)
	}
	for _, id := range page.Identities {
		out.Results = append(out.Results, outIdentity(id))
	}
	if page.Next != nil {
		b, err := json.Marshal(page.Next)
		if err != nil {
			return fmt.Errorf("encoding the cursor: %w", err)
		}
		s := base64.StdEncoding.EncodeToString(b)
		out.LastEvaluatedKey = &s
	}
	return c.reply(http.StatusOK, out)
}

// decodeCursor reads last_evaluated_key: standard base64 of the cursor's
// JSON. A "+" the client did not URL-encode arrives as a space and is put
// back; padding may be missing. The cursor must be this environment's.
func decodeCursor(v, envKey string) (*identity.Cursor, error) {
	bad := fieldError("last_evaluated_key", "Invalid value: expected the last_evaluated_key of a previous page.")
	v = strings.ReplaceAll(strings.TrimSpace(v), " ", "+")
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "=")); err != nil {
			return nil, bad
		}
	}
	var cur identity.Cursor
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cur); err != nil || cur.EnvironmentAPIKey != envKey ||
		!strings.HasPrefix(cur.CompositeKey, envKey+"_") ||
		(cur.Identifier != "" && cur.CompositeKey != identity.CompositeKey(envKey, cur.Identifier)) {
		return nil, bad
	}
	return &cur, nil
}

// validIdentifier applies core's and the store's limits to an identifier
// from a body.
func validIdentifier(field, s string) error {
	if strings.TrimSpace(s) == "" {
		return fieldError(field, "This field may not be blank.")
	}
	if err := maxChars(field, s, maxIdentifierChars); err != nil {
		return err
	}
	if len(s) > identity.MaxIdentifierBytes {
		return fieldError(field, "Ensure this field has no more than "+strconv.Itoa(identity.MaxIdentifierBytes)+" bytes in UTF-8.")
	}
	return nil
}

// alias reads dashboard_alias (absent, null or "" give ok false).
func alias(f fields) (string, bool, error) {
	a, ok, err := f.optionalString("dashboard_alias")
	if err != nil || !ok || a == "" {
		return "", false, err
	}
	if err := maxChars("dashboard_alias", a, identity.MaxAliasChars); err != nil {
		return "", false, err
	}
	return strings.ToLower(a), true, nil
}

// createIdentity: POST edge-identities/.
func (c *call) createIdentity() error {
	f, err := c.object()
	if err != nil {
		return err
	}
	identifier, err := f.requiredString("identifier")
	if err != nil {
		return err
	}
	if err := validIdentifier("identifier", identifier); err != nil {
		return err
	}
	a, _, err := alias(f)
	if err != nil {
		return err
	}
	id, err := c.h.opt.Store.Update(c.r.Context(), c.env, identifier, func(cur *identity.Identity) (*identity.Identity, error) {
		if cur != nil {
			return nil, listError("Identity with identifier: " + identifier + " already exists")
		}
		return &identity.Identity{EnvironmentAPIKey: c.envKey, Identifier: identifier, DashboardAlias: a}, nil
	})
	if err != nil {
		return fmt.Errorf("creating identity: %w", err)
	}
	return c.reply(http.StatusCreated, outIdentity(id))
}

// ---- edge-identities/{uuid}/ -------------------------------------------------

func (c *call) getIdentity() error {
	id, err := c.lookup(c.route.identityUUID)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, outIdentity(id))
}

// updateIdentity: PUT/PATCH sets dashboard_alias, lower-cased; an empty or
// missing alias keeps the old one, as in core.
func (c *call) updateIdentity() error {
	f, err := c.object()
	if err != nil {
		return err
	}
	a, ok, err := alias(f)
	if err != nil {
		return err
	}
	if !ok {
		return c.getIdentity()
	}
	id, err := c.update(c.route.identityUUID, func(cur *identity.Identity) (*identity.Identity, error) {
		if cur.DashboardAlias == a {
			return nil, identity.ErrSkip
		}
		cur.DashboardAlias = a
		return cur, nil
	})
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, outIdentity(id))
}

func (c *call) deleteIdentity() error {
	id, err := c.lookup(c.route.identityUUID)
	if err != nil {
		return err
	}
	if err := c.h.opt.Store.Delete(c.r.Context(), c.env, id.Identifier); err != nil {
		return fmt.Errorf("deleting identity %s: %w", id.UUID, err)
	}
	if len(id.Overrides) > 0 {
		c.changed()
	}
	return c.noContent()
}

// ---- traits --------------------------------------------------------------------

type traitOut struct {
	TraitKey   string          `json:"trait_key"`
	TraitValue json.RawMessage `json:"trait_value"`
}

func (c *call) listTraits() error {
	id, err := c.lookup(c.route.identityUUID)
	if err != nil {
		return err
	}
	out := make([]traitOut, 0, len(id.Traits))
	for _, t := range id.Traits {
		out = append(out, traitOut{TraitKey: t.Key, TraitValue: identity.ValueJSON(t.Value)})
	}
	return c.reply(http.StatusOK, out)
}

// updateTraits: PUT update-traits/ {"trait_key","trait_value"|null}. The
// value is typed as Flagsmith types it; null deletes; an unchanged value
// is not rewritten. The answer echoes the typed value.
func (c *call) updateTraits() error {
	f, err := c.object()
	if err != nil {
		return err
	}
	key, err := f.requiredString("trait_key")
	if err != nil {
		return err
	}
	if strings.TrimSpace(key) == "" {
		return fieldError("trait_key", "This field may not be blank.")
	}
	if err := maxChars("trait_key", key, identity.MaxTraitKeyChars); err != nil {
		return err
	}
	raw, ok := f["trait_value"]
	if !ok {
		return fieldError("trait_value", "This field is required.")
	}
	v, ok := identity.ValueFromJSON(raw)
	if !ok {
		return fieldError("trait_value", "Must be a string, a number, a boolean or null.")
	}
	if v.Kind == engine.KindString {
		if err := maxChars("trait_value", v.Str, identity.MaxTraitValueChars); err != nil {
			return err
		}
	}
	if _, err := c.lookup(c.route.identityUUID); err != nil {
		return err // another environment's identity is not found, whatever its settings
	}
	if !c.snap.PersistTraitData() {
		// Core's TraitPersistenceError has no message of its own.
		return &apiError{code: http.StatusBadRequest, body: detail("A server error occurred.")}
	}
	v = identity.Coerce(v)
	if _, err := c.update(c.route.identityUUID, func(cur *identity.Identity) (*identity.Identity, error) {
		if !setTrait(cur, key, v) {
			return nil, identity.ErrSkip
		}
		return cur, nil
	}); err != nil {
		return err
	}
	return c.reply(http.StatusOK, traitOut{TraitKey: key, TraitValue: identity.ValueJSON(v)})
}

// setTrait sets or (KindNone) deletes a trait, reporting a change.
func setTrait(id *identity.Identity, key string, v engine.Value) bool {
	i := slices.IndexFunc(id.Traits, func(t identity.Trait) bool { return t.Key == key })
	switch {
	case v.Kind == engine.KindNone && i < 0:
		return false
	case v.Kind == engine.KindNone:
		id.Traits = slices.Delete(id.Traits, i, i+1)
	case i < 0:
		id.Traits = append(id.Traits, identity.Trait{Key: key, Value: v})
	case id.Traits[i].Value.Kind == v.Kind && bytes.Equal(identity.ValueJSON(id.Traits[i].Value), identity.ValueJSON(v)):
		return false
	default:
		id.Traits[i].Value = v
	}
	return true
}
