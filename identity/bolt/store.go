// Package bolt is the embedded identity.Store: a single bbolt file, for
// self-hosted Edge APIs without DynamoDB.
//
// Every acknowledged write is fsynced before it returns. Concurrent writers
// are group-committed (commit.go): the writes that queue while one commit
// is flushed share the next, so that many identify requests share one fsync
// instead of queueing for one each, and a lone write waits for nothing.
package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// Options configures a Store. The zero value is usable.
type Options struct {
	// Logger receives reports of unreadable stored data; nil discards them.
	Logger *slog.Logger
	// LockTimeout bounds the wait for the file lock another process holds
	// (default 5s): without it Open would hang forever.
	LockTimeout time.Duration
	// MaxBatchSize caps a group commit (default 1000).
	MaxBatchSize int
	// OnCommit, when set, is told of every committed group commit: how
	// many writes it carried and how long it took, flushes included. It
	// runs on the committing goroutine, so it must be quick.
	OnCommit func(writes int, elapsed time.Duration)
	// Now stamps created_date; nil means time.Now.
	Now func() time.Time
	// CacheEntries bounds the cache of decoded identities (0: the
	// default, DefaultCacheEntries; negative: no cache).
	CacheEntries int
}

// Store is the bbolt identity store. It is safe for concurrent use.
type Store struct {
	db     *bbolt.DB
	commit *committer
	log    *slog.Logger
	now    func() time.Time
	cache  *decoded
}

var _ identity.Store = (*Store)(nil)

// Open opens (creating if needed) the store at path, a file inside a
// directory that is created too.
func Open(path string, opts Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("opening identity store: %w", err)
	}
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("opening identity store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening identity store %s: %w", path, err)
	}
	entries := opts.CacheEntries
	if entries == 0 {
		entries = DefaultCacheEntries
	}
	s := &Store{db: db, commit: newCommitter(db, opts.MaxBatchSize, opts.OnCommit), log: opts.Logger, now: opts.Now, cache: newDecoded(entries)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Close closes the file; later calls fail with identity.ErrUnavailable.
func (s *Store) Close() error {
	s.commit.close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing identity store: %w", err)
	}
	return nil
}

// meta is what an identity was indexed under (bucketMeta).
type meta struct {
	Env        string  `json:"env"`
	Identifier string  `json:"identifier"`
	UUID       string  `json:"uuid"`
	Alias      string  `json:"alias,omitempty"`
	Features   []int64 `json:"features,omitempty"`
}

// overrideEntry is the value of an overrides entry: the content of a
// flagsmith_environments_v2 identity_override item.
type overrideEntry struct {
	Identifier   string          `json:"identifier"`
	IdentityUUID string          `json:"identity_uuid"`
	FeatureState json.RawMessage `json:"feature_state"`
}

// unavailable wraps a bbolt failure (closed database, I/O error) as
// identity.ErrUnavailable, keeping the cause.
func unavailable(doing string, err error) error {
	return fmt.Errorf("%s: %w: %w", doing, identity.ErrUnavailable, err)
}

// ---- reading ------------------------------------------------------------------

// stored is an identity as read inside a transaction.
type stored struct {
	id   *identity.Identity // nil: absent
	raw  []byte             // the item bytes (valid for the transaction only)
	meta *meta              // nil: absent or unreadable
}

// load reads the identity of envKey and identifier. An item under the same
// composite key that belongs to another environment (the key is ambiguous
// when an environment key contains '_') is reported as a collision.
func (s *Store) load(tx *bbolt.Tx, envKey, identifier string) (stored, error) {
	ck := identity.CompositeKey(envKey, identifier)
	raw := tx.Bucket(bucketIdentities).Get([]byte(ck))
	mraw := tx.Bucket(bucketMeta).Get([]byte(ck))
	var st stored
	cached, cachedMeta, hit := s.cache.get(ck, raw, mraw)
	switch {
	case hit:
		st.meta = cachedMeta
	case mraw != nil:
		var m meta
		if err := json.Unmarshal(mraw, &m); err != nil {
			s.log.Error("identity store: unreadable index metadata", "composite_key", ck, "error", err)
		} else {
			st.meta = &m
		}
	}
	if raw == nil {
		return st, nil
	}
	if st.meta != nil && (st.meta.Env != envKey || st.meta.Identifier != identifier) {
		return st, fmt.Errorf("%w: composite key %q already holds identifier %q of environment %q",
			identity.ErrInvalid, ck, st.meta.Identifier, st.meta.Env)
	}
	st.raw = raw
	if hit {
		st.id = cached
		return st, nil
	}
	st.id = s.decode(ck, raw, st.meta, envKey, identifier)
	s.cache.put(ck, raw, mraw, st.meta, st.id)
	return st, nil
}

// decode reads a stored item. It never fails: a malformed item is logged
// and what could be read is returned, because a request must not fail over
// data that some other writer spoiled.
func (s *Store) decode(ck string, raw []byte, m *meta, envKey, identifier string) *identity.Identity {
	id, problems, err := identity.UnmarshalItem(raw)
	if err != nil {
		s.log.Error("identity store: unreadable identity item; using its keys only", "composite_key", ck, "error", err)
		id = &identity.Identity{}
		if m != nil {
			id.UUID, id.DashboardAlias = m.UUID, m.Alias
		}
	} else if len(problems) > 0 {
		s.log.Warn("identity store: identity item partly unreadable", "composite_key", ck, "problems", problems)
	}
	// The key is authoritative: an item that names another identity
	// inside is still this one.
	id.EnvironmentAPIKey, id.Identifier = envKey, identifier
	return id
}

// Get returns the identity, or identity.ErrNotFound.
func (s *Store) Get(ctx context.Context, envKey, identifier string) (*identity.Identity, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("getting identity %q: %w", identifier, err)
	}
	var id *identity.Identity
	err := s.db.View(func(tx *bbolt.Tx) error {
		st, err := s.load(tx, envKey, identifier)
		id = st.id
		return err
	})
	switch {
	case errors.Is(err, identity.ErrInvalid): // a composite-key collision: not this identity
		return nil, fmt.Errorf("getting identity %q: %w", identifier, identity.ErrNotFound)
	case err != nil:
		return nil, unavailable(fmt.Sprintf("getting identity %q", identifier), err)
	case id == nil:
		return nil, fmt.Errorf("getting identity %q: %w", identifier, identity.ErrNotFound)
	}
	return id, nil
}

// GetByUUID returns the identity with identity_uuid uuid, in any
// environment, or identity.ErrNotFound.
func (s *Store) GetByUUID(ctx context.Context, uuid string) (*identity.Identity, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("getting identity %s: %w", uuid, err)
	}
	var id *identity.Identity
	err := s.db.View(func(tx *bbolt.Tx) error {
		ck := tx.Bucket(bucketByUUID).Get([]byte(uuid))
		if ck == nil {
			return nil
		}
		var err error
		id, err = s.loadByKey(tx, ck)
		if id != nil && id.UUID != uuid {
			id = nil // a stale index entry
		}
		return err
	})
	if err != nil {
		return nil, unavailable("getting identity "+uuid, err)
	}
	if id == nil {
		return nil, fmt.Errorf("getting identity %s: %w", uuid, identity.ErrNotFound)
	}
	return id, nil
}

// loadByKey reads the identity an index entry points at; nil if it is gone.
func (s *Store) loadByKey(tx *bbolt.Tx, ck []byte) (*identity.Identity, error) {
	mraw := tx.Bucket(bucketMeta).Get(ck)
	if mraw == nil {
		return nil, nil
	}
	var m meta
	if err := json.Unmarshal(mraw, &m); err != nil {
		s.log.Error("identity store: unreadable index metadata", "composite_key", string(ck), "error", err)
		return nil, nil
	}
	st, err := s.load(tx, m.Env, m.Identifier)
	if errors.Is(err, identity.ErrInvalid) {
		return nil, nil
	}
	return st.id, err
}

// ---- writing ------------------------------------------------------------------

// write runs fn in a group commit. fn reports its own outcome through the
// variables it closes over and returns an error only for a bbolt failure:
// a failing batch member rolls the whole batch back to run it again, so an
// ordinary outcome (ErrSkip, ErrInvalid, the caller's error) must not look
// like one. fn may run more than once; the last run counts.
func (s *Store) write(fn func(tx *bbolt.Tx) error) error { return s.commit.write(fn) }

// Update implements identity.Store.Update.
func (s *Store) Update(ctx context.Context, env identity.Env, identifier string, fn identity.UpdateFunc) (*identity.Identity, error) {
	doing := fmt.Sprintf("updating identity %q", identifier)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", doing, err)
	}
	if err := identity.ValidateIdentifier(identifier); err != nil {
		return nil, fmt.Errorf("%s: %w", doing, err)
	}
	var (
		result    *identity.Identity
		resultErr error
	)
	err := s.write(func(tx *bbolt.Tx) error {
		result, resultErr = nil, nil
		// Waiting for the batch may have outlived the caller.
		if err := ctx.Err(); err != nil {
			resultErr = err
			return nil
		}
		st, err := s.load(tx, env.APIKey, identifier)
		if err != nil {
			resultErr = err
			return nil
		}
		next, err := fn(st.id.Clone())
		if errors.Is(err, identity.ErrSkip) {
			result = st.id
			return nil
		}
		if err != nil {
			resultErr = err
			return nil
		}
		if next == nil {
			resultErr = fmt.Errorf("%w: the update function returned no identity", identity.ErrInvalid)
			return nil
		}
		next = next.Clone()
		s.complete(next, st.id, env.APIKey, identifier)
		identity.Normalize(next)
		data, err := identity.ValidatedItem(next)
		if err != nil {
			resultErr = err
			return nil
		}
		m, mdata, err := s.put(tx, next, data, st)
		if err != nil {
			return err
		}
		// next, with its JSON values compacted as MarshalItem wrote them, is
		// what Get will decode from data: returned as is, and cached for
		// that Get (an entry is only used if these exact bytes are read, so
		// a batch that is rolled back leaves nothing wrong behind).
		result = next
		if m != nil {
			s.cache.put(identity.CompositeKey(env.APIKey, identifier), data, mdata, m, next)
		}
		return nil
	})
	if err != nil {
		return nil, unavailable(doing, err)
	}
	if resultErr != nil {
		return nil, fmt.Errorf("%s: %w", doing, resultErr)
	}
	return result, nil
}

// complete applies identity.Complete with the store's clock.
func (s *Store) complete(next, cur *identity.Identity, envKey, identifier string) {
	identity.Complete(next, cur, envKey, identifier, s.now())
}

// put writes the item and brings every index in line with it, in the
// caller's transaction.
func (s *Store) put(tx *bbolt.Tx, id *identity.Identity, data []byte, old stored) (*meta, []byte, error) {
	ck := []byte(identity.CompositeKey(id.EnvironmentAPIKey, id.Identifier))
	if old.raw != nil && bytes.Equal(old.raw, data) && old.meta != nil {
		return nil, nil, nil // unchanged, and already durable
	}
	m := meta{Env: id.EnvironmentAPIKey, Identifier: id.Identifier, UUID: id.UUID, Alias: id.DashboardAlias}
	for _, o := range id.Overrides {
		m.Features = append(m.Features, o.Feature.ID)
	}
	mdata, err := json.Marshal(&m)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding index metadata: %w", err)
	}
	env := id.EnvironmentAPIKey
	byUUID, byAlias, overrides := tx.Bucket(bucketByUUID), tx.Bucket(bucketByAlias), tx.Bucket(bucketOverrides)

	if o := old.meta; o != nil {
		if o.UUID != m.UUID {
			if err := deleteIfPointsAt(byUUID, []byte(o.UUID), ck); err != nil {
				return nil, nil, err
			}
		}
		if o.Alias != "" && (o.Alias != m.Alias || o.Env != env) {
			if err := byAlias.Delete(aliasKey(o.Env, o.Alias, o.Identifier)); err != nil {
				return nil, nil, fmt.Errorf("alias index: %w", err)
			}
		}
		for _, f := range o.Features {
			if o.UUID != m.UUID || !slices.Contains(m.Features, f) {
				if err := overrides.Delete(overrideKey(o.Env, f, o.UUID)); err != nil {
					return nil, nil, fmt.Errorf("overrides index: %w", err)
				}
			}
		}
	}
	for _, o := range id.Overrides {
		fs, err := identity.MarshalOverride(o)
		if err != nil {
			return nil, nil, fmt.Errorf("encoding override of feature %d: %w", o.Feature.ID, err)
		}
		v, err := json.Marshal(&overrideEntry{Identifier: id.Identifier, IdentityUUID: id.UUID, FeatureState: fs})
		if err != nil {
			return nil, nil, fmt.Errorf("encoding override of feature %d: %w", o.Feature.ID, err)
		}
		k := overrideKey(env, o.Feature.ID, id.UUID)
		if bytes.Equal(overrides.Get(k), v) {
			continue // keeps the pages of unchanged overrides clean
		}
		if err := overrides.Put(k, v); err != nil {
			return nil, nil, fmt.Errorf("overrides index: %w", err)
		}
	}
	type entry struct{ bucket, k, v []byte }
	puts := []entry{
		{bucketIdentities, ck, data},
		{bucketMeta, ck, mdata},
		{bucketByIdentifier, identifierKey(env, id.Identifier), ck},
		{bucketByUUID, []byte(id.UUID), ck},
	}
	if m.Alias != "" {
		puts = append(puts, entry{bucketByAlias, aliasKey(env, m.Alias, id.Identifier), ck})
	}
	for _, p := range puts {
		b := tx.Bucket(p.bucket)
		if bytes.Equal(b.Get(p.k), p.v) {
			continue
		}
		if err := b.Put(p.k, p.v); err != nil {
			return nil, nil, fmt.Errorf("writing to %s: %w", p.bucket, err)
		}
	}
	return &m, mdata, nil
}

// deleteIfPointsAt deletes k unless it now belongs to another identity.
func deleteIfPointsAt(b *bbolt.Bucket, k, ck []byte) error {
	if v := b.Get(k); v != nil && bytes.Equal(v, ck) {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("uuid index: %w", err)
		}
	}
	return nil
}

// Delete removes the identity, its index entries and its overrides.
func (s *Store) Delete(ctx context.Context, env identity.Env, identifier string) error {
	doing := fmt.Sprintf("deleting identity %q", identifier)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", doing, err)
	}
	var resultErr error
	err := s.write(func(tx *bbolt.Tx) error {
		resultErr = nil
		if err := ctx.Err(); err != nil {
			resultErr = err
			return nil
		}
		st, err := s.load(tx, env.APIKey, identifier)
		if errors.Is(err, identity.ErrInvalid) {
			return nil // the key holds another environment's identity: ours is absent
		}
		if err != nil {
			resultErr = err
			return nil
		}
		return s.remove(tx, env.APIKey, identifier, st)
	})
	if err != nil {
		return unavailable(doing, err)
	}
	if resultErr != nil {
		return fmt.Errorf("%s: %w", doing, resultErr)
	}
	return nil
}

func (s *Store) remove(tx *bbolt.Tx, envKey, identifier string, st stored) error {
	ck := []byte(identity.CompositeKey(envKey, identifier))
	m := st.meta
	if m == nil && st.id != nil {
		// No metadata (should not happen): index what the item says.
		m = &meta{Env: envKey, Identifier: identifier, UUID: st.id.UUID, Alias: st.id.DashboardAlias}
		for _, o := range st.id.Overrides {
			m.Features = append(m.Features, o.Feature.ID)
		}
	}
	if m == nil {
		return nil
	}
	for _, f := range m.Features {
		if err := tx.Bucket(bucketOverrides).Delete(overrideKey(envKey, f, m.UUID)); err != nil {
			return fmt.Errorf("overrides index: %w", err)
		}
	}
	if m.Alias != "" {
		if err := tx.Bucket(bucketByAlias).Delete(aliasKey(envKey, m.Alias, identifier)); err != nil {
			return fmt.Errorf("alias index: %w", err)
		}
	}
	if err := deleteIfPointsAt(tx.Bucket(bucketByUUID), []byte(m.UUID), ck); err != nil {
		return err
	}
	for _, d := range []struct {
		b []byte
		k []byte
	}{{bucketByIdentifier, identifierKey(envKey, identifier)}, {bucketMeta, ck}, {bucketIdentities, ck}} {
		if err := tx.Bucket(d.b).Delete(d.k); err != nil {
			return fmt.Errorf("deleting from %s: %w", d.b, err)
		}
	}
	return nil
}

// SetSystemTrait sets system_traits[key] of an existing identity (a
// KindNone value removes it), the way core's cohort writer does: without
// touching anything else. It returns identity.ErrNotFound for an absent
// identity. It implements identitytest.SystemTraitSetter.
func (s *Store) SetSystemTrait(ctx context.Context, envKey, identifier, key string, v engine.Value) error {
	doing := fmt.Sprintf("setting system trait %q of identity %q", key, identifier)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", doing, err)
	}
	if key == "" {
		return fmt.Errorf("%s: %w: empty key", doing, identity.ErrInvalid)
	}
	var resultErr error
	err := s.write(func(tx *bbolt.Tx) error {
		resultErr = nil
		if err := ctx.Err(); err != nil {
			resultErr = err
			return nil
		}
		st, err := s.load(tx, envKey, identifier)
		if err != nil || st.id == nil {
			resultErr = err
			if st.id == nil {
				resultErr = identity.ErrNotFound
			}
			return nil
		}
		id := st.id
		i := slices.IndexFunc(id.SystemTraits, func(t identity.Trait) bool { return t.Key == key })
		switch {
		case v.Kind == engine.KindNone && i >= 0:
			id.SystemTraits = slices.Delete(id.SystemTraits, i, i+1)
		case v.Kind == engine.KindNone:
			return nil
		case i >= 0:
			id.SystemTraits[i].Value = v
		default:
			id.SystemTraits = append(id.SystemTraits, identity.Trait{Key: key, Value: v})
			slices.SortFunc(id.SystemTraits, func(a, b identity.Trait) int { return strings.Compare(a.Key, b.Key) })
		}
		// Only the size: the rest of the identity is not this writer's to
		// judge, and an old item breaking a newer limit must still take
		// cohort updates.
		data, err := identity.MarshalItem(id)
		if err == nil && len(data) > identity.MaxItemBytes {
			resultErr = fmt.Errorf("%w: %d bytes", identity.ErrTooLarge, len(data))
			return nil
		}
		if err != nil {
			resultErr = fmt.Errorf("%w: %w", identity.ErrInvalid, err)
			return nil
		}
		_, _, err = s.put(tx, id, data, st)
		return err
	})
	if err != nil {
		return unavailable(doing, err)
	}
	if resultErr != nil {
		return fmt.Errorf("%s: %w", doing, resultErr)
	}
	return nil
}

// ---- listing ------------------------------------------------------------------

// maxPage is the admin API's page size limit.
const maxPage = 100

// List implements identity.Store.List with keyset pagination over the
// identifier or alias index.
func (s *Store) List(ctx context.Context, envKey string, q identity.ListQuery) (identity.Page, error) {
	doing := fmt.Sprintf("listing identities of %q", envKey)
	if err := ctx.Err(); err != nil {
		return identity.Page{}, fmt.Errorf("%s: %w", doing, err)
	}
	limit := q.Limit
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	bucket := bucketByIdentifier
	var prefix, start []byte
	if q.ByAlias {
		bucket = bucketByAlias
		prefix = appendPart(nil, envKey)
		if q.Exact {
			prefix = appendPart(prefix, q.Search)
		} else {
			prefix = appendEscaped(prefix, q.Search)
		}
		if c := q.After; c != nil {
			start = after(aliasKey(envKey, c.DashboardAlias, cursorIdentifier(envKey, c)))
		}
	} else {
		prefix = append(appendPart(nil, envKey), q.Search...)
		if c := q.After; c != nil {
			start = after(identifierKey(envKey, cursorIdentifier(envKey, c)))
		}
	}
	if bytes.Compare(start, prefix) < 0 {
		start = prefix
	}
	indexKey := func(id *identity.Identity) []byte {
		if q.ByAlias {
			return aliasKey(envKey, id.DashboardAlias, id.Identifier)
		}
		return identifierKey(envKey, id.Identifier)
	}
	var page identity.Page
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, ck := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, ck = c.Next() {
			if !q.ByAlias && q.Exact && len(k) != len(prefix) {
				break // the exact key sorts first among those it prefixes
			}
			if len(page.Identities) == limit {
				last := page.Identities[limit-1]
				page.Next = &identity.Cursor{
					CompositeKey:      identity.CompositeKey(last.EnvironmentAPIKey, last.Identifier),
					EnvironmentAPIKey: last.EnvironmentAPIKey,
				}
				if q.ByAlias {
					page.Next.DashboardAlias = last.DashboardAlias
				} else {
					page.Next.Identifier = last.Identifier
				}
				return nil
			}
			id, err := s.loadByKey(tx, ck)
			if err != nil {
				return err
			}
			// The entry must still describe the identity: indexes are
			// kept in step transactionally, so only damage leaves stale
			// ones behind.
			if id == nil || !bytes.Equal(k, indexKey(id)) {
				s.log.Warn("identity store: stale index entry skipped", "index", string(bucket), "composite_key", string(ck))
				continue
			}
			page.Identities = append(page.Identities, id)
		}
		return nil
	})
	if err != nil {
		return identity.Page{}, unavailable(doing, err)
	}
	return page, nil
}

// cursorIdentifier is the identifier a cursor stopped at. Alias cursors,
// like DynamoDB's LastEvaluatedKey for that index, carry it only inside the
// composite key.
func cursorIdentifier(envKey string, c *identity.Cursor) string {
	if c.Identifier != "" {
		return c.Identifier
	}
	return strings.TrimPrefix(c.CompositeKey, envKey+"_")
}

// Overrides implements identity.Store.Overrides: one prefix scan.
func (s *Store) Overrides(ctx context.Context, env identity.Env, featureID int64) ([]identity.OverrideItem, error) {
	doing := fmt.Sprintf("listing identity overrides of %q", env.APIKey)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", doing, err)
	}
	prefix := overridePrefix(env.APIKey, featureID)
	var items []identity.OverrideItem
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketOverrides).Cursor()
		n := 0
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			// A whole environment's overrides can be many: give up
			// early when the caller has.
			if n++; n%256 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			var e overrideEntry
			if err := json.Unmarshal(v, &e); err != nil {
				s.log.Error("identity store: unreadable override entry; skipped", "key", string(k), "error", err)
				continue
			}
			o, err := identity.UnmarshalOverride(e.FeatureState)
			if err != nil {
				s.log.Error("identity store: unreadable override entry; skipped", "key", string(k), "error", err)
				continue
			}
			items = append(items, identity.OverrideItem{Identifier: e.Identifier, IdentityUUID: e.IdentityUUID, Override: o})
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", doing, err)
		}
		return nil, unavailable(doing, err)
	}
	return items, nil
}
