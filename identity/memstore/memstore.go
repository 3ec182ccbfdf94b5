// Package memstore is an in-memory identity.Store for tests of the packages
// built on the store (the admin API, the identify stage). It keeps each
// identity as its item JSON, as the embedded store does, so what a test
// reads back went through the same encoding; it passes the
// identity/identitytest contract. Nothing is durable.
package memstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// Store is the in-memory store. The zero value is not usable; use New.
type Store struct {
	mu sync.RWMutex
	// items maps composite key → item JSON; uuids maps identity_uuid →
	// composite key.
	items  map[string][]byte
	uuids  map[string]string
	closed bool
	// Fail, when set, is returned (wrapped in identity.ErrUnavailable) by
	// every call: a store that cannot be reached.
	fail error
	// writes counts written updates; failAfter > 0 fails every Update once
	// that many were written (a store that goes away mid-run).
	writes, failAfter int
}

// Writes reports how many updates were written.
func (s *Store) Writes() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.writes
}

// FailAfter makes Update fail (identity.ErrUnavailable) once n updates were
// written; 0 turns it off.
func (s *Store) FailAfter(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failAfter = n
}

// Items returns a copy of every stored item (composite key → item JSON).
func (s *Store) Items() map[string][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string][]byte, len(s.items))
	for k, v := range s.items {
		out[k] = append([]byte(nil), v...)
	}
	return out
}

// New returns an empty store.
func New() *Store {
	return &Store{items: map[string][]byte{}, uuids: map[string]string{}}
}

// SetFailure makes every later call fail with err wrapped in
// identity.ErrUnavailable (nil heals the store).
func (s *Store) SetFailure(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %w", err)
	}
	if s.closed {
		return fmt.Errorf("memstore: closed: %w", identity.ErrUnavailable)
	}
	if s.fail != nil {
		return fmt.Errorf("memstore: %w: %w", identity.ErrUnavailable, s.fail)
	}
	return nil
}

func (s *Store) decode(b []byte) (*identity.Identity, error) {
	id, _, err := identity.UnmarshalItem(b)
	if err != nil {
		return nil, fmt.Errorf("memstore: %w", err)
	}
	return id, nil
}

// Get implements identity.Store.
func (s *Store) Get(ctx context.Context, envKey, identifier string) (*identity.Identity, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	b, ok := s.items[identity.CompositeKey(envKey, identifier)]
	if !ok || !belongs(b, envKey, s) {
		return nil, fmt.Errorf("memstore: get %q: %w", identifier, identity.ErrNotFound)
	}
	return s.decode(b)
}

// belongs guards against composite keys that collide across environments
// ("a_b" + "_c" and "a" + "_b_c"): the item's own environment must match.
func belongs(b []byte, envKey string, s *Store) bool {
	id, err := s.decode(b)
	return err == nil && id.EnvironmentAPIKey == envKey
}

// GetByUUID implements identity.Store.
func (s *Store) GetByUUID(ctx context.Context, uuid string) (*identity.Identity, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	ck, ok := s.uuids[uuid]
	if !ok {
		return nil, fmt.Errorf("memstore: uuid %q: %w", uuid, identity.ErrNotFound)
	}
	return s.decode(s.items[ck])
}

// Update implements identity.Store. One lock serializes writers, so the
// read-modify-write is atomic.
func (s *Store) Update(ctx context.Context, env identity.Env, identifier string, fn identity.UpdateFunc) (*identity.Identity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if s.failAfter > 0 && s.writes >= s.failAfter {
		return nil, fmt.Errorf("memstore: injected failure after %d writes: %w", s.writes, identity.ErrUnavailable)
	}
	ck := identity.CompositeKey(env.APIKey, identifier)
	var cur *identity.Identity
	if b, ok := s.items[ck]; ok {
		var err error
		if cur, err = s.decode(b); err != nil {
			return nil, err
		}
		if cur.EnvironmentAPIKey != env.APIKey {
			return nil, fmt.Errorf("memstore: composite key %q belongs to another environment: %w", ck, identity.ErrInvalid)
		}
	}
	next, err := fn(cur.Clone())
	if errors.Is(err, identity.ErrSkip) {
		return cur, nil
	}
	if err != nil {
		return nil, err
	}
	if next == nil {
		return nil, fmt.Errorf("memstore: update function returned no identity")
	}
	next = next.Clone()
	identity.Complete(next, cur, env.APIKey, identifier, time.Now())
	b, err := identity.ValidatedItem(next)
	if err != nil {
		return nil, fmt.Errorf("memstore: update %q: %w", identifier, err)
	}
	if other, ok := s.uuids[next.UUID]; ok && other != ck {
		return nil, fmt.Errorf("memstore: identity_uuid %s already used: %w", next.UUID, identity.ErrInvalid)
	}
	if cur != nil && cur.UUID != next.UUID {
		delete(s.uuids, cur.UUID)
	}
	s.items[ck] = b
	s.uuids[next.UUID] = ck
	s.writes++
	return s.decode(b)
}

// SetSystemTrait implements identitytest.SystemTraitSetter.
func (s *Store) SetSystemTrait(ctx context.Context, envKey, identifier, key string, v engine.Value) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	ck := identity.CompositeKey(envKey, identifier)
	b, ok := s.items[ck]
	if !ok {
		return fmt.Errorf("memstore: %w", identity.ErrNotFound)
	}
	id, err := s.decode(b)
	if err != nil {
		return err
	}
	id.SystemTraits = slices.DeleteFunc(id.SystemTraits, func(t identity.Trait) bool { return t.Key == key })
	if v.Kind != engine.KindNone {
		id.SystemTraits = append(id.SystemTraits, identity.Trait{Key: key, Value: v})
		slices.SortFunc(id.SystemTraits, func(a, b identity.Trait) int { return strings.Compare(a.Key, b.Key) })
	}
	if b, err = identity.MarshalItem(id); err != nil {
		return fmt.Errorf("memstore: %w", err)
	}
	s.items[ck] = b
	return nil
}

// Delete implements identity.Store.
func (s *Store) Delete(ctx context.Context, env identity.Env, identifier string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	ck := identity.CompositeKey(env.APIKey, identifier)
	b, ok := s.items[ck]
	if !ok {
		return nil
	}
	if id, err := s.decode(b); err == nil {
		if id.EnvironmentAPIKey != env.APIKey {
			return nil
		}
		delete(s.uuids, id.UUID)
	}
	delete(s.items, ck)
	return nil
}

// envIdentities returns the environment's identities, decoded.
func (s *Store) envIdentities(envKey string) []*identity.Identity {
	var out []*identity.Identity
	for ck, b := range s.items {
		if !strings.HasPrefix(ck, envKey+"_") {
			continue
		}
		if id, err := s.decode(b); err == nil && id.EnvironmentAPIKey == envKey {
			out = append(out, id)
		}
	}
	return out
}

// List implements identity.Store.
func (s *Store) List(ctx context.Context, envKey string, q identity.ListQuery) (identity.Page, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return identity.Page{}, err
	}
	if q.Limit <= 0 {
		return identity.Page{}, fmt.Errorf("memstore: list limit %d: %w", q.Limit, identity.ErrInvalid)
	}
	field := func(id *identity.Identity) string {
		if q.ByAlias {
			return id.DashboardAlias
		}
		return id.Identifier
	}
	order := func(a, b *identity.Identity) int {
		return cmp.Or(strings.Compare(field(a), field(b)), strings.Compare(a.Identifier, b.Identifier))
	}
	var rows []*identity.Identity
	for _, id := range s.envIdentities(envKey) {
		f := field(id)
		if q.ByAlias && f == "" {
			continue
		}
		if q.Exact && f != q.Search || !q.Exact && !strings.HasPrefix(f, q.Search) {
			continue
		}
		rows = append(rows, id)
	}
	slices.SortFunc(rows, order)
	if q.After != nil {
		after := &identity.Identity{Identifier: q.After.Identifier, DashboardAlias: q.After.DashboardAlias}
		if after.Identifier == "" {
			after.Identifier = strings.TrimPrefix(q.After.CompositeKey, envKey+"_")
		}
		i, _ := slices.BinarySearchFunc(rows, after, order)
		for i < len(rows) && order(rows[i], after) <= 0 {
			i++
		}
		rows = rows[i:]
	}
	var page identity.Page
	if len(rows) > q.Limit {
		rows = rows[:q.Limit]
		last := rows[len(rows)-1]
		page.Next = &identity.Cursor{CompositeKey: identity.CompositeKey(envKey, last.Identifier), EnvironmentAPIKey: envKey, Identifier: last.Identifier}
		if q.ByAlias {
			page.Next.DashboardAlias = last.DashboardAlias
		}
	}
	page.Identities = rows
	return page, nil
}

// Overrides implements identity.Store.
func (s *Store) Overrides(ctx context.Context, env identity.Env, featureID int64) ([]identity.OverrideItem, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var items []identity.OverrideItem
	for _, id := range s.envIdentities(env.APIKey) {
		for _, o := range id.Overrides {
			if featureID == 0 || o.Feature.ID == featureID {
				items = append(items, identity.OverrideItem{Identifier: id.Identifier, IdentityUUID: id.UUID, Override: o})
			}
		}
	}
	slices.SortFunc(items, func(a, b identity.OverrideItem) int { return strings.Compare(a.DocumentKey(), b.DocumentKey()) })
	return items, nil
}

// Close implements identity.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
