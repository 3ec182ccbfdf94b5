package migrate_test

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/identity/memstore"
	"github.com/fledge-flags/fledge/internal/pgtest"
	"github.com/fledge-flags/fledge/migrate"
)

// corePercentage is Core's get_hashed_percentage_for_object_ids, written
// out independently of the engine: MD5 of the comma-joined ids as a
// big-endian integer, modulo 9999, divided by 9998, times 100; a result of
// 100 re-hashes with the ids repeated.
func corePercentage(ids ...string) float64 {
	for n := 1; ; n++ {
		var parts []string
		for i := 0; i < n; i++ {
			parts = append(parts, ids...)
		}
		sum := md5.Sum([]byte(strings.Join(parts, ",")))
		v := new(big.Int).SetBytes(sum[:])
		v.Mod(v, big.NewInt(9999))
		p := float64(v.Int64()) / 9998 * 100
		if p != 100 {
			return p
		}
	}
}

type variant struct {
	id    int
	value string
	pct   float64
}

// coreVariant is FeatureState.get_multivariate_feature_state_value for an
// identity Core hashes by its primary key (hash key str(identity.id)):
// variants in id order, each owning [start, start+percentage).
func coreVariant(featureStateID, identityID int64, vs []variant, control string) string {
	p := corePercentage(strconv.FormatInt(featureStateID, 10), strconv.FormatInt(identityID, 10))
	start := 0.0
	for _, v := range vs {
		if start <= p && p < start+v.pct {
			return v.value
		}
		start += v.pct
	}
	return control
}

func TestCorePercentageVectors(t *testing.T) {
	// Computed with Python: (int(md5(",".join(ids)).hexdigest(), 16) % 9999) / 9998 * 100.
	for _, c := range []struct {
		ids  []string
		want float64
	}{
		{[]string{"77", "1"}, 64.65293058611722},
		{[]string{"77", "123"}, 50.57011402280456},
		{[]string{"77", "99999"}, 14.912982596519303},
		{[]string{"104", "envA_alice"}, 67.94358871774355},
	} {
		if got := corePercentage(c.ids...); got != c.want {
			t.Errorf("%v: %v, want %v", c.ids, got, c.want)
		}
	}
}

// TestMigratedIdentitiesKeepTheirVariants: for every migrated identity of
// an environment, the engine evaluating a percentage-split feature with
// the identity key str(django_id) picks the variant Core picks for the
// Core identity with that primary key (read from the database, not from
// the store).
func TestMigratedIdentitiesKeepTheirVariants(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := coreDB(t, srv, "variants", false)
	generate(t, dsn, 800) // 400 identities in genA
	ctx := context.Background()
	store := memstore.New()
	if _, err := migrate.Run(ctx, migrate.Options{Source: pgSource(t, migrate.PostgresConfig{DSN: dsn, ProjectID: 1}), Store: store}); err != nil {
		t.Fatal(err)
	}

	const fsID = 77
	variants := []variant{{101, "red", 30}, {102, "green", 20}, {103, "blue", 10.5}}
	var mvs []string
	for _, v := range variants {
		mvs = append(mvs, `{"id":`+strconv.Itoa(v.id)+`,"mv_fs_value_uuid":"d0000000-0000-4000-8000-000000000`+strconv.Itoa(v.id)+
			`","percentage_allocation":`+strconv.FormatFloat(v.pct, 'f', -1, 64)+
			`,"multivariate_feature_option":{"id":`+strconv.Itoa(v.id)+`,"value":"`+v.value+`"}}`)
	}
	doc := `{"id":1,"api_key":"genA","name":"a","project":{"id":1,"name":"p","hide_disabled_flags":false,
		"organisation":{"id":1,"name":"org","feature_analytics":false,"stop_serving_flags":false,"persist_trait_data":true},"segments":[]},
		"feature_states":[{"feature":{"id":3,"name":"split","type":"MULTIVARIATE"},"enabled":true,"feature_state_value":"control",
		"django_id":` + strconv.Itoa(fsID) + `,"featurestate_uuid":"d0000000-0000-4000-8000-000000000077","feature_segment":null,
		"multivariate_feature_state_values":[` + strings.Join(mvs, ",") + `]}]}`
	parsed, err := environment.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := environment.Compile(parsed, nil)
	if err != nil {
		t.Fatal(err)
	}
	evaluate := func(id *engine.Identity) string {
		var flags []struct {
			Feature struct {
				Name string `json:"name"`
			} `json:"feature"`
			Value json.RawMessage `json:"feature_state_value"`
		}
		if err := json.Unmarshal(snap.AppendIdentityFlags(nil, environment.ServerKey, id), &flags); err != nil {
			t.Fatal(err)
		}
		for _, f := range flags {
			if f.Feature.Name == "split" {
				var s string
				_ = json.Unmarshal(f.Value, &s)
				return s
			}
		}
		t.Fatal("no split flag")
		return ""
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	rows, err := conn.Query(ctx, `SELECT id, identifier FROM environments_identity WHERE environment_id = 1 ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type coreIdentity struct {
		id         int64
		identifier string
	}
	core, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (coreIdentity, error) {
		var c coreIdentity
		return c, r.Scan(&c.id, &c.identifier)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(core) < 300 {
		t.Fatalf("only %d identities", len(core))
	}
	seen := map[string]int{}
	differsByCompositeKey := 0
	for _, c := range core {
		id, err := store.Get(ctx, "genA", c.identifier)
		if err != nil {
			t.Fatal(err)
		}
		if id.DjangoID == nil {
			t.Fatalf("%s: no django_id", c.identifier)
		}
		var traits []engine.Trait
		for _, tr := range id.Traits {
			traits = append(traits, engine.Trait{Name: tr.Key, Value: tr.Value})
		}
		got := evaluate(&engine.Identity{Identifier: id.Identifier, Key: strconv.FormatInt(*id.DjangoID, 10), Traits: traits})
		want := coreVariant(fsID, c.id, variants, "control")
		if got != want {
			t.Errorf("%s (core id %d, django_id %d): engine %q, core %q", c.identifier, c.id, *id.DjangoID, got, want)
		}
		seen[got]++
		if evaluate(&engine.Identity{Identifier: id.Identifier, Traits: traits}) != got {
			differsByCompositeKey++
		}
	}
	// The check can fail: every variant is reached, and hashing by the
	// composite key would have moved many identities.
	for _, v := range []string{"red", "green", "blue", "control"} {
		if seen[v] == 0 {
			t.Errorf("no identity got %q: %v", v, seen)
		}
	}
	if differsByCompositeKey < len(core)/4 {
		t.Errorf("only %d of %d identities would change variant under composite-key hashing", differsByCompositeKey, len(core))
	}
	t.Logf("%d identities: variants %v; %d would differ if hashed by composite key", len(core), seen, differsByCompositeKey)
}
