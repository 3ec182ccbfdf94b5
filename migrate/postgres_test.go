package migrate_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/memstore"
	"github.com/fledge-flags/fledge/internal/pgtest"
	"github.com/fledge-flags/fledge/migrate"
)

// The items Core's migrator writes for the fixtures (identity_uuid aside).
var wantItems = map[string]string{
	"envV1_alice": `{"composite_key":"envV1_alice","environment_api_key":"envV1","identifier":"alice","identity_uuid":"",
	 "created_date":"2024-03-19T09:41:22+00:00","django_id":10,
	 "identity_traits":[
	  {"trait_key":"first","trait_value":"by id"},
	  {"trait_key":"num_str","trait_value":7},
	  {"trait_key":"float_str","trait_value":1.5},
	  {"trait_key":"exp_str","trait_value":"1e5"},
	  {"trait_key":"int","trait_value":42},
	  {"trait_key":"bool","trait_value":true},
	  {"trait_key":"float","trait_value":2.5},
	  {"trait_key":"null_type","trait_value":""},
	  {"trait_key":"str","trait_value":"hello"},
	  {"trait_key":"neg_zero","trait_value":0},
	  {"trait_key":"plus","trait_value":"+1"},
	  {"trait_key":"whole_float","trait_value":3.0},
	  {"trait_key":"false","trait_value":false},
	  {"trait_key":"empty","trait_value":""}],
	 "identity_features":[
	  {"feature":{"id":1,"name":"std","type":"STANDARD"},"enabled":true,"feature_state_value":"123","django_id":100,
	   "featurestate_uuid":"f0000000-0000-4000-8000-000000000100","feature_segment":null,"multivariate_feature_state_values":[]},
	  {"feature":{"id":2,"name":"mv","type":"MULTIVARIATE"},"enabled":false,"feature_state_value":"control","django_id":104,
	   "featurestate_uuid":"f0000000-0000-4000-8000-000000000104","feature_segment":null,"multivariate_feature_state_values":[
	    {"id":199,"multivariate_feature_option":{"id":3,"key":null,"value":7},"mv_fs_value_uuid":"b0000000-0000-4000-8000-000000000199","percentage_allocation":12.5},
	    {"id":201,"multivariate_feature_option":{"id":1,"key":"a","value":"variant-a"},"mv_fs_value_uuid":"b0000000-0000-4000-8000-000000000201","percentage_allocation":30.0},
	    {"id":202,"multivariate_feature_option":{"id":2,"key":"b","value":"variant-b"},"mv_fs_value_uuid":"b0000000-0000-4000-8000-000000000202","percentage_allocation":20.0}]},
	  {"feature":{"id":4,"name":"no_value","type":"STANDARD"},"enabled":true,"feature_state_value":null,"django_id":106,
	   "featurestate_uuid":"f0000000-0000-4000-8000-000000000106","feature_segment":null,"multivariate_feature_state_values":[]}]}`,
	"envV1_bob": `{"composite_key":"envV1_bob","environment_api_key":"envV1","identifier":"bob","identity_uuid":"",
	 "created_date":"2024-03-19T09:41:22.123456+00:00","django_id":11,
	 "identity_traits":[
	  {"trait_key":"big","trait_value":12345678901234567890123},
	  {"trait_key":"int_null","trait_value":""},
	  {"trait_key":"tiny","trait_value":0.1},
	  {"trait_key":"huge","trait_value":1e+16}],
	 "identity_features":[
	  {"feature":{"id":1,"name":"std","type":"STANDARD"},"enabled":true,"feature_state_value":5,"django_id":555,
	   "featurestate_uuid":"f0000000-0000-4000-8000-000000000110","feature_segment":null,"multivariate_feature_state_values":[]}]}`,
	"envV1_carol": `{"composite_key":"envV1_carol","environment_api_key":"envV1","identifier":"carol","identity_uuid":"",
	 "created_date":"2023-12-31T23:59:59.000001+00:00","django_id":15,"identity_traits":[],"identity_features":[]}`,
	"envV2_dave": `{"composite_key":"envV2_dave","environment_api_key":"envV2","identifier":"dave","identity_uuid":"",
	 "created_date":"2024-01-02T03:04:05.500000+00:00","django_id":20,"identity_traits":[],
	 "identity_features":[
	  {"feature":{"id":1,"name":"std","type":"STANDARD"},"enabled":true,"feature_state_value":true,"django_id":120,
	   "featurestate_uuid":"f0000000-0000-4000-8000-000000000120","feature_segment":null,"multivariate_feature_state_values":[]}]}`,
	"envV2_alice": `{"composite_key":"envV2_alice","environment_api_key":"envV2","identifier":"alice","identity_uuid":"",
	 "created_date":"2024-01-02T03:04:05+00:00","django_id":21,
	 "identity_traits":[{"trait_key":"plan","trait_value":"gold"}],"identity_features":[]}`,
}

func wantCompact(t *testing.T) map[string]string {
	out := map[string]string{}
	for k, v := range wantItems {
		out[k] = compactJSON(t, v)
	}
	return out
}

func TestPostgresEndToEnd(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := coreDB(t, srv, "core", true)
	ctx := context.Background()

	src := pgSource(t, migrate.PostgresConfig{DSN: dsn, ProjectID: 1, BatchSize: 2})
	want := migrate.Report{Source: src.Describe(), Environments: 2, Read: 8, Created: 5, Traits: 19, Overrides: 5,
		SkippedByReason: map[string]int64{migrate.ReasonTooLongChars: 1, migrate.ReasonTooLongBytes: 1, migrate.ReasonNonFinite: 1}}
	for _, sk := range storeKinds {
		t.Run("store="+sk.name, func(t *testing.T) {
			store := sk.open(t)
			rep, err := migrate.Run(ctx, migrate.Options{Source: src, Store: store, Workers: 3})
			if err != nil {
				t.Fatal(err)
			}
			items, uuids := dump(t, store, "envV1", "envV2", "envOther", "envDeleted")
			diffMaps(t, wantCompact(t), items, sk.asValues)
			for k, u := range uuids {
				if !uuidV4.MatchString(u) {
					t.Errorf("%s: identity_uuid %q is not a lowercase v4 UUID", k, u)
				}
			}
			// Field by field, through the model, for what the JSON hides.
			alice, err := store.Get(ctx, "envV1", "alice")
			if err != nil {
				t.Fatal(err)
			}
			if alice.DjangoID == nil || *alice.DjangoID != 10 || len(alice.SystemTraits) != 0 || alice.DashboardAlias != "" {
				t.Errorf("alice: django_id %v, system traits %v, alias %q", alice.DjangoID, alice.SystemTraits, alice.DashboardAlias)
			}
			kinds := map[string]engine.Kind{"num_str": engine.KindInt, "float_str": engine.KindFloat, "whole_float": engine.KindFloat,
				"bool": engine.KindBool, "exp_str": engine.KindString, "int": engine.KindInt, "null_type": engine.KindString}
			for k, want := range kinds {
				if v, ok := alice.Trait(k); !ok || v.Kind != want {
					t.Errorf("alice trait %s: %+v, want kind %v", k, v, want)
				}
			}
			checkReport(t, rep, want)
			if len(rep.Skipped) != 3 {
				t.Errorf("skipped: %+v", rep.Skipped)
			}
			for _, s := range rep.Skipped {
				if s.Environment != "envV1" || len(s.Identifier) > 100 {
					t.Errorf("skip entry %+v", s)
				}
			}

			// A re-run changes nothing and keeps the UUIDs.
			rep, err = migrate.Run(ctx, migrate.Options{Source: src, Store: store})
			if err != nil {
				t.Fatal(err)
			}
			checkReport(t, rep, migrate.Report{Source: src.Describe(), Environments: 2, Read: 8, Unchanged: 5,
				SkippedByReason: want.SkippedByReason})
			items2, uuids2 := dump(t, store, "envV1", "envV2")
			diffMaps(t, items, items2, sk.asValues)
			diffMaps(t, uuids, uuids2)
		})
	}

	t.Run("memory store item JSON", func(t *testing.T) {
		store := memstore.New()
		if _, err := migrate.Run(ctx, migrate.Options{Source: src, Store: store}); err != nil {
			t.Fatal(err)
		}
		raw := store.Items()["envV1_alice"]
		if strings.Contains(string(raw), "system_traits") || strings.Contains(string(raw), "dashboard_alias") {
			t.Errorf("item carries system_traits or dashboard_alias: %s", raw)
		}
		before := store.Writes()
		if _, err := migrate.Run(ctx, migrate.Options{Source: src, Store: store}); err != nil {
			t.Fatal(err)
		}
		if store.Writes() != before {
			t.Errorf("re-run wrote %d items", store.Writes()-before)
		}
	})

	t.Run("environment keys", func(t *testing.T) {
		store := memstore.New()
		src := pgSource(t, migrate.PostgresConfig{DSN: dsn, EnvironmentKeys: []string{"envV2"}})
		if _, err := migrate.Run(ctx, migrate.Options{Source: src, Store: store}); err != nil {
			t.Fatal(err)
		}
		items, _ := dump(t, store, "envV1", "envV2")
		want := wantCompact(t)
		diffMaps(t, map[string]string{"envV2_dave": want["envV2_dave"], "envV2_alice": want["envV2_alice"]}, items)
	})

	t.Run("unknown or deleted environment key", func(t *testing.T) {
		for _, key := range []string{"nope", "envDeleted"} {
			src := pgSource(t, migrate.PostgresConfig{DSN: dsn, EnvironmentKeys: []string{"envV1", key}})
			if _, err := migrate.Run(ctx, migrate.Options{Source: src, Store: memstore.New()}); err == nil || !strings.Contains(err.Error(), key) {
				t.Errorf("key %s: err %v", key, err)
			}
		}
	})

	t.Run("dry run writes nothing", func(t *testing.T) {
		store := memstore.New()
		cp := filepath.Join(t.TempDir(), "cp.json")
		rep, err := migrate.Run(ctx, migrate.Options{Source: src, Store: store, DryRun: true, CheckpointPath: cp})
		if err != nil {
			t.Fatal(err)
		}
		if store.Writes() != 0 || len(store.Items()) != 0 {
			t.Errorf("dry run wrote %d items", store.Writes())
		}
		if fileExists(cp) {
			t.Errorf("dry run wrote the checkpoint")
		}
		w := want
		w.DryRun = true
		checkReport(t, rep, w)
		// Without a store at all.
		rep, err = migrate.Run(ctx, migrate.Options{Source: src, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		checkReport(t, rep, w)
	})

	t.Run("old schema without salt and option key columns", func(t *testing.T) {
		dsn := coreDB(t, srv, "core_old", true)
		execSQL(t, dsn, `ALTER TABLE features_featurestate DROP COLUMN mv_hashing_salt;
			ALTER TABLE multivariate_multivariatefeatureoption DROP COLUMN key;
			ALTER TABLE environments_identity DROP COLUMN system_traits`)
		store := memstore.New()
		src := pgSource(t, migrate.PostgresConfig{DSN: dsn, ProjectID: 1})
		if _, err := migrate.Run(ctx, migrate.Options{Source: src, Store: store}); err != nil {
			t.Fatal(err)
		}
		items, _ := dump(t, store, "envV1", "envV2")
		want := wantCompact(t)
		want["envV1_bob"] = strings.Replace(want["envV1_bob"], `"django_id":555`, `"django_id":110`, 1)
		want["envV1_alice"] = strings.NewReplacer(`"key":"a"`, `"key":null`, `"key":"b"`, `"key":null`).Replace(want["envV1_alice"])
		diffMaps(t, want, items)
	})
}

// TestLiveTrafficWins: identities the SDK wrote before the migration
// reached them keep everything they have; the migration only adds.
func TestLiveTrafficWins(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := coreDB(t, srv, "core", true)
	ctx := context.Background()
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			store := sk.open(t)
			env := identity.Env{APIKey: "envV1", ID: "1"}
			const uuid = "11111111-2222-4333-8444-555555555555"
			_, err := store.Update(ctx, env, "alice", func(*identity.Identity) (*identity.Identity, error) {
				return &identity.Identity{
					UUID: uuid, CreatedDate: "2026-01-01T00:00:00.000000+00:00",
					Traits: []identity.Trait{{Key: "str", Value: engine.String("from sdk")}, {Key: "sdk_only", Value: engine.Int(1)}},
					Overrides: []identity.Override{{Feature: identity.FeatureRef{ID: 1, Name: "std", Type: "STANDARD"}, Enabled: false,
						Value: json.RawMessage(`"edge"`), FeatureStateUUID: "c0000000-0000-4000-8000-000000000001"}},
				}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			src := pgSource(t, migrate.PostgresConfig{DSN: dsn, ProjectID: 1})
			rep, err := migrate.Run(ctx, migrate.Options{Source: src, Store: store})
			if err != nil {
				t.Fatal(err)
			}
			got, err := store.Get(ctx, "envV1", "alice")
			if err != nil {
				t.Fatal(err)
			}
			if got.UUID != uuid || got.CreatedDate != "2026-01-01T00:00:00.000000+00:00" || got.DjangoID == nil || *got.DjangoID != 10 {
				t.Errorf("uuid %s, created %s, django_id %v", got.UUID, got.CreatedDate, got.DjangoID)
			}
			var keys []string
			for _, tr := range got.Traits {
				keys = append(keys, tr.Key)
			}
			wantKeys := "str sdk_only first num_str float_str exp_str int bool float null_type neg_zero plus whole_float false empty"
			if strings.Join(keys, " ") != wantKeys {
				t.Errorf("trait keys %v\nwant %s", keys, wantKeys)
			}
			if v, _ := got.Trait("str"); v.Str != "from sdk" {
				t.Errorf("str = %+v, want the SDK's value", v)
			}
			if len(got.Overrides) != 3 || string(got.Overrides[0].Value) != `"edge"` || got.Overrides[1].Feature.ID != 2 || got.Overrides[2].Feature.ID != 4 {
				t.Errorf("overrides: %+v", got.Overrides)
			}
			if rep.Created != 4 || rep.Updated != 1 || rep.TraitsKept != 1 || rep.OverridesKept != 1 {
				t.Errorf("report %+v", rep)
			}
		})
	}
}

func checkReport(t *testing.T, got, want migrate.Report) {
	t.Helper()
	g := got
	g.Duration, g.Skipped = 0, nil
	if len(g.SkippedByReason) == 0 {
		g.SkippedByReason = nil
	}
	if len(want.SkippedByReason) == 0 {
		want.SkippedByReason = nil
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Errorf("report\n got %s\nwant %s", gb, wb)
	}
	if got.Duration <= 0 {
		t.Errorf("report without a duration")
	}
}

func fileExists(p string) bool {
	m, _ := filepath.Glob(p)
	return len(m) > 0
}
