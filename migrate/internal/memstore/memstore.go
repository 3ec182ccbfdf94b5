// Package memstore is a small in-memory identity.Store for tests: items are
// kept as their item JSON (so what is read back went through the same
// encoding a real store uses), Update is atomic per identity (one lock for
// the whole store), and Validate runs before every write.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/fledge-flags/fledge/identity"
)

// Store is an in-memory identity.Store.
type Store struct {
	mu    sync.Mutex
	items map[string][]byte // composite key → item JSON
	// Writes counts acknowledged writes.
	Writes int
	// FailAfter, when > 0, makes every Update after that many writes fail
	// with identity.ErrUnavailable (to test interrupted runs).
	FailAfter int
}

// New returns an empty store.
func New() *Store { return &Store{items: map[string][]byte{}} }

func (s *Store) get(envKey, identifier string) (*identity.Identity, error) {
	b, ok := s.items[identity.CompositeKey(envKey, identifier)]
	if !ok {
		return nil, identity.ErrNotFound
	}
	id, _, err := identity.UnmarshalItem(b)
	return id, err
}

// Get implements identity.Store.
func (s *Store) Get(ctx context.Context, envKey, identifier string) (*identity.Identity, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", identity.ErrUnavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(envKey, identifier)
}

// GetByUUID implements identity.Store.
func (s *Store) GetByUUID(ctx context.Context, uuid string) (*identity.Identity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.items {
		id, _, err := identity.UnmarshalItem(b)
		if err == nil && id.UUID == uuid {
			return id, nil
		}
	}
	return nil, identity.ErrNotFound
}

// Update implements identity.Store.
func (s *Store) Update(ctx context.Context, env identity.Env, identifier string, fn identity.UpdateFunc) (*identity.Identity, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", identity.ErrUnavailable, err)
	}
	if err := identity.ValidateIdentifier(identifier); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.FailAfter > 0 && s.Writes >= s.FailAfter {
		return nil, fmt.Errorf("%w: injected failure", identity.ErrUnavailable)
	}
	cur, err := s.get(env.APIKey, identifier)
	if errors.Is(err, identity.ErrNotFound) {
		cur = nil
	} else if err != nil {
		return nil, err
	}
	next, err := fn(cur.Clone())
	if errors.Is(err, identity.ErrSkip) {
		return cur, identity.ErrSkip
	}
	if err != nil {
		return nil, err
	}
	next.EnvironmentAPIKey, next.Identifier = env.APIKey, identifier
	if next.UUID == "" {
		next.UUID = identity.NewUUID()
	}
	if cur != nil {
		next.SystemTraits = cur.SystemTraits
	}
	if err := identity.Validate(next); err != nil {
		return nil, err
	}
	b, err := identity.MarshalItem(next)
	if err != nil {
		return nil, err
	}
	s.items[identity.CompositeKey(env.APIKey, identifier)] = b
	s.Writes++
	return next, nil
}

// Delete implements identity.Store.
func (s *Store) Delete(ctx context.Context, env identity.Env, identifier string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, identity.CompositeKey(env.APIKey, identifier))
	return nil
}

// List implements identity.Store (identifier order; prefix search only).
func (s *Store) List(ctx context.Context, envKey string, q identity.ListQuery) (identity.Page, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prefix := envKey + "_"
	var ids []string
	for k := range s.items {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		id := k[len(prefix):]
		if strings.HasPrefix(id, q.Search) && (q.After == nil || id > q.After.Identifier) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	var p identity.Page
	for _, id := range ids {
		if len(p.Identities) == limit {
			last := p.Identities[limit-1].Identifier
			p.Next = &identity.Cursor{CompositeKey: identity.CompositeKey(envKey, last), EnvironmentAPIKey: envKey, Identifier: last}
			break
		}
		it, err := s.get(envKey, id)
		if err != nil {
			return identity.Page{}, err
		}
		if it.EnvironmentAPIKey == envKey {
			p.Identities = append(p.Identities, it)
		}
	}
	return p, nil
}

// Overrides implements identity.Store.
func (s *Store) Overrides(ctx context.Context, env identity.Env, featureID int64) ([]identity.OverrideItem, error) {
	return nil, errors.New("memstore: Overrides not implemented")
}

// Close implements identity.Store.
func (s *Store) Close() error { return nil }

// Items returns a copy of every item's JSON by composite key.
func (s *Store) Items() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]byte, len(s.items))
	for k, v := range s.items {
		out[k] = append([]byte(nil), v...)
	}
	return out
}
