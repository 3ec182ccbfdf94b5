package migrate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/bolt"
	"github.com/fledge-flags/fledge/identity/dynamo"
	"github.com/fledge-flags/fledge/identity/memstore"
	"github.com/fledge-flags/fledge/internal/dynalite"
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
	files := []string{"core_schema.sql", "core_indexes.sql"}
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

func diffMaps(t testing.TB, want, got map[string]string, asValues ...bool) {
	t.Helper()
	n := 0
	for _, k := range sortedKeys(want) {
		if got[k] != want[k] && !(len(asValues) > 0 && asValues[0] && sameJSONValue(got[k], want[k])) {
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

// generate fills a database holding Core's schema with n identities over
// two environments of project 1 (genA: v1, genB: v2, alternating ids), five
// traits each (string, int, bool, float, numeric string), a live override
// of "flag" for 1% and a multivariate override of "mv" for 0.5%.
func generate(t testing.TB, dsn string, n int) {
	t.Helper()
	execSQL(t, dsn, fmt.Sprintf(`
INSERT INTO organisations_organisation (id, name, persist_trait_data) VALUES (1, 'org', true);
INSERT INTO projects_project (id, name, organisation_id, enable_dynamo_db) VALUES (1, 'p', 1, false);
INSERT INTO environments_environment (id, name, api_key, project_id, use_v2_feature_versioning) VALUES
  (1, 'a', 'genA', 1, false), (2, 'b', 'genB', 1, true);
INSERT INTO features_feature (id, name, type, project_id) VALUES (1, 'flag', 'STANDARD', 1), (2, 'mv', 'MULTIVARIATE', 1);
INSERT INTO multivariate_multivariatefeatureoption (id, uuid, feature_id, type, string_value, key, default_percentage_allocation)
  VALUES (1, gen_random_uuid(), 2, 'unicode', 'a', 'a', 50), (2, gen_random_uuid(), 2, 'unicode', 'b', 'b', 50);
INSERT INTO environments_identity (id, identifier, created_date, environment_id, system_traits)
  SELECT g, 'user-' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1.5 second', 1 + g %% 2, '{}'
  FROM generate_series(1, %[1]d) g;
INSERT INTO environments_trait (identity_id, trait_key, value_type, boolean_value, integer_value, string_value, float_value, created_date)
  SELECT g, k.key, k.vt,
    CASE WHEN k.vt = 'bool' THEN g %% 2 = 0 END,
    CASE WHEN k.vt = 'int' THEN g %% 100 END,
    CASE WHEN k.vt = 'unicode' THEN k.prefix || g END,
    CASE WHEN k.vt = 'float' THEN g / 8.0 END, now()
  FROM generate_series(1, %[1]d) g
  CROSS JOIN (VALUES ('email', 'unicode', 'user@'), ('age', 'int', NULL), ('beta', 'bool', NULL),
                     ('score', 'float', NULL), ('num', 'unicode', '')) k(key, vt, prefix);
INSERT INTO features_featurestate (id, uuid, feature_id, environment_id, identity_id, enabled, version, live_from)
  SELECT g, gen_random_uuid(), 1, 1 + g %% 2, g, g %% 3 = 0, 1, now() - interval '1 day'
  FROM generate_series(1, %[1]d) g WHERE g %% 100 = 0;
INSERT INTO features_featurestatevalue (uuid, feature_state_id, type, string_value)
  SELECT gen_random_uuid(), g, 'unicode', 'v' || g FROM generate_series(1, %[1]d) g WHERE g %% 100 = 0;
INSERT INTO features_featurestate (id, uuid, feature_id, environment_id, identity_id, enabled, version, live_from)
  SELECT %[1]d + g, gen_random_uuid(), 2, 1 + g %% 2, g, true, 1, now() - interval '1 day'
  FROM generate_series(1, %[1]d) g WHERE g %% 200 = 0;
INSERT INTO multivariate_multivariatefeaturestatevalue (uuid, feature_state_id, multivariate_feature_option_id, percentage_allocation)
  SELECT gen_random_uuid(), %[1]d + g, o, 50 FROM generate_series(1, %[1]d) g CROSS JOIN (VALUES (1), (2)) opts(o)
  WHERE g %% 200 = 0;
ANALYZE;`, n))
}

// storeKinds are the stores the end-to-end tests run against: the
// in-memory test store, the embedded bbolt store, and DynamoDB in
// Flagsmith's tables (dynalite, one per test, fresh tables).
var storeKinds = []struct {
	name string
	open func(t testing.TB) identity.Store
	// asValues: items are compared as JSON values, not bytes (DynamoDB
	// keeps map keys in no order and 30.0 as 30).
	asValues bool
}{
	{"memory", func(t testing.TB) identity.Store { return memstore.New() }, false},
	{"bolt", func(t testing.TB) identity.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "identities.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}, false},
	{"dynamodb", func(t testing.TB) identity.Store {
		st := dynamo.New(dynalite.Client(dynalite.Start(t)), dynamo.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := st.CreateTables(ctx); err != nil {
			t.Fatalf("CreateTables: %v", err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}, true},
}

// sameJSONValue reports whether two JSON texts hold the same value (numbers
// compared as float64, object keys in any order).
func sameJSONValue(a, b string) bool {
	var va, vb any
	return json.Unmarshal([]byte(a), &va) == nil && json.Unmarshal([]byte(b), &vb) == nil && reflect.DeepEqual(va, vb)
}
