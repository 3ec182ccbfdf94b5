package migrate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/internal/pgtest"
	"github.com/fledge-flags/fledge/migrate"
)

// loadSQL runs SQL files from testdata (simple protocol: many statements).
func loadSQL(t testing.TB, dsn string, files ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(b)); err != nil {
			t.Fatalf("loading %s: %v", f, err)
		}
	}
}

// execSQL runs one statement.
func execSQL(t testing.TB, dsn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// coreDB starts PostgreSQL and returns the DSN of a database holding
// Core's schema and, with fixtures, the fixtures.
func coreDB(t testing.TB, srv *pgtest.Server, name string, fixtures bool) string {
	t.Helper()
	dsn := srv.CreateDB(t, name)
	files := []string{"core_schema.sql"}
	if fixtures {
		files = append(files, "core_fixtures.sql")
	}
	loadSQL(t, dsn, files...)
	return dsn
}

func pgSource(t testing.TB, cfg migrate.PostgresConfig) *migrate.Postgres {
	t.Helper()
	src, err := migrate.NewPostgres(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// dump lists every identity of the environments through the Store
// interface: item JSON with identity_uuid blanked by composite key, and the
// UUIDs apart.
func dump(t testing.TB, s identity.Store, envKeys ...string) (items, uuids map[string]string) {
	t.Helper()
	items, uuids = map[string]string{}, map[string]string{}
	ctx := context.Background()
	for _, env := range envKeys {
		q := identity.ListQuery{Limit: 100}
		for {
			p, err := s.List(ctx, env, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range p.Identities {
				// List may return a summary; read the whole item.
				full, err := s.Get(ctx, env, id.Identifier)
				if err != nil {
					t.Fatal(err)
				}
				key := identity.CompositeKey(env, full.Identifier)
				uuids[key] = full.UUID
				full.UUID = ""
				b, err := identity.MarshalItem(full)
				if err != nil {
					t.Fatal(err)
				}
				items[key] = string(b)
			}
			if p.Next == nil {
				break
			}
			q.After = p.Next
		}
	}
	return items, uuids
}

// itemJSON re-encodes a store identity as item JSON without its UUID.
func itemJSON(t testing.TB, id *identity.Identity) string {
	t.Helper()
	c := id.Clone()
	c.UUID = ""
	b, err := identity.MarshalItem(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// compactJSON normalises expected JSON written by hand.
func compactJSON(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("bad expected JSON: %v\n%s", err, s)
	}
	return b.String()
}

// cancellingStore cancels a context after n acknowledged writes: a kill at
// that point, as far as the migration can tell.
type cancellingStore struct {
	identity.Store
	n      int64
	writes atomic.Int64
	cancel context.CancelFunc
}

func (s *cancellingStore) Update(ctx context.Context, env identity.Env, identifier string, fn identity.UpdateFunc) (*identity.Identity, error) {
	id, err := s.Store.Update(ctx, env, identifier, fn)
	if err == nil && s.writes.Add(1) == s.n {
		s.cancel()
	}
	return id, err
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func diffMaps(t testing.TB, want, got map[string]string) {
	t.Helper()
	n := 0
	for _, k := range sortedKeys(want) {
		if got[k] != want[k] {
			if n++; n <= 5 {
				t.Errorf("%s:\n got %s\nwant %s", k, got[k], want[k])
			}
		}
	}
	for _, k := range sortedKeys(got) {
		if _, ok := want[k]; !ok {
			if n++; n <= 5 {
				t.Errorf("%s: unexpected item %s", k, got[k])
			}
		}
	}
	if n > 5 {
		t.Errorf("... %d differences in all", n)
	}
}
