package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/memstore"
	"github.com/fledge-flags/fledge/migrate"
)

var restNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func restSource(t testing.TB, url string, mod func(*migrate.RESTConfig)) *migrate.REST {
	t.Helper()
	cfg := migrate.RESTConfig{BaseURL: url, Token: "org.secret", ProjectID: 1, Concurrency: 4,
		RetryBase: time.Millisecond, Now: func() time.Time { return restNow }}
	if mod != nil {
		mod(&cfg)
	}
	src, err := migrate.NewREST(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}

// wantREST: the database items, with the two fields REST cannot give:
// created_date (earliest trait, else the migration time) and
// mv_fs_value_uuid (derived).
func wantREST(t *testing.T) map[string]string {
	w := wantCompact(t)
	mvUUID := func(fs, mv int) string { return migrate.DerivedUUID(fmt.Sprintf("%s:%d", fsUUID(int64(fs)), mv)) }
	w["envV1_alice"] = strings.NewReplacer(
		`"created_date":"2024-03-19T09:41:22+00:00"`, `"created_date":"2024-03-19T09:41:22.123456+00:00"`,
		"b0000000-0000-4000-8000-000000000199", mvUUID(104, 199),
		"b0000000-0000-4000-8000-000000000201", mvUUID(104, 201),
		"b0000000-0000-4000-8000-000000000202", mvUUID(104, 202),
	).Replace(w["envV1_alice"])
	w["envV1_carol"] = strings.Replace(w["envV1_carol"], `"created_date":"2023-12-31T23:59:59.000001+00:00"`, `"created_date":"2026-05-01T12:00:00+00:00"`, 1)
	w["envV2_dave"] = strings.Replace(w["envV2_dave"], `"created_date":"2024-01-02T03:04:05.500000+00:00"`, `"created_date":"2026-05-01T12:00:00+00:00"`, 1)
	delete(w, "envV1_bob")
	return w
}

// checkGenerated checks the generated identities user-0000… field by field.
func checkGenerated(t *testing.T, s identity.Store, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		id, err := s.Get(ctx, "envV1", fmt.Sprintf("user-%04d", i))
		if err != nil {
			t.Fatalf("user-%04d: %v", i, err)
		}
		if id.DjangoID == nil || *id.DjangoID != int64(1000+i) || !uuidV4.MatchString(id.UUID) {
			t.Errorf("user-%04d: django_id %v uuid %q", i, id.DjangoID, id.UUID)
		}
		if len(id.Traits) != i%25 {
			t.Errorf("user-%04d: %d traits, want %d", i, len(id.Traits), i%25)
		}
		for j, tr := range id.Traits {
			want := engine.Int(int64(i * j))
			if j%2 == 1 {
				want = engine.String(strconv.Itoa(i*j) + "x")
			}
			if tr.Key != fmt.Sprintf("k%02d", j) || string(identity.ValueJSON(tr.Value)) != string(identity.ValueJSON(want)) {
				t.Errorf("user-%04d trait %d: %s=%s", i, j, tr.Key, identity.ValueJSON(tr.Value))
			}
		}
		if i%25 > 0 {
			if want := "2024-03-19T09:" + created(i)[14:19] + "+00:00"; id.CreatedDate != want {
				t.Errorf("user-%04d: created_date %s, want %s", i, id.CreatedDate, want)
			}
		}
		if wantOv := i%5 == 0; wantOv != (len(id.Overrides) == 1) {
			t.Errorf("user-%04d: overrides %+v", i, id.Overrides)
		} else if wantOv {
			o := id.Overrides[0]
			if o.Feature != (identity.FeatureRef{ID: 1, Name: "std", Type: "STANDARD"}) || o.Enabled != (i%2 == 0) ||
				string(o.Value) != strconv.Itoa(i) || *o.DjangoID != int64(5000+i) || o.FeatureStateUUID != fsUUID(int64(5000+i)) {
				t.Errorf("user-%04d: override %+v", i, o)
			}
		}
	}
}

func TestRESTEndToEnd(t *testing.T) {
	const gen = 120
	api := standIn(gen)
	srv := api.start(t)
	ctx := context.Background()
	store := memstore.New()
	src := restSource(t, srv.URL, func(c *migrate.RESTConfig) { c.BatchSize = 50 })
	rep, err := migrate.Run(ctx, migrate.Options{Source: src, Store: store, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	items, _ := dump(t, store, "envV1", "envV2", "envOther")
	for k := range items {
		if strings.HasPrefix(k, "envV1_user-") {
			delete(items, k)
		}
	}
	diffMaps(t, wantREST(t), items)
	checkGenerated(t, store, gen)

	if rep.Environments != 22 || rep.Read != int64(gen+6) || rep.Created != int64(gen+4) ||
		rep.SkippedByReason[migrate.ReasonTooLongChars] != 1 || rep.SkippedByReason[migrate.ReasonTooLongBytes] != 1 {
		t.Errorf("report %+v", rep)
	}
	// Request counts follow migrate.md §3.4.
	// alice (14 traits: two pages), carol, dave, alice in envV2; the two
	// identifiers that are too long are skipped before their traits are read.
	wantTraitReqs := int64(2 + 1 + 1 + 1)
	for i := 0; i < gen; i++ {
		wantTraitReqs += int64(max(1, (i%25+9)/10))
	}
	if got := api.count("traits"); got != wantTraitReqs {
		t.Errorf("%d trait requests, want %d", got, wantTraitReqs)
	}
	if got := api.count("environments"); got != 3 {
		t.Errorf("%d environment list requests, want 3 (22 environments, 10 a page)", got)
	}
	if got := api.count("features"); got != 1 {
		t.Errorf("%d feature list requests, want 1", got)
	}

	t.Run("retries 429 and 503", func(t *testing.T) {
		api := standIn(gen)
		api.failEvery = 7
		srv := api.start(t)
		store2 := memstore.New()
		if _, err := migrate.Run(ctx, migrate.Options{Source: restSource(t, srv.URL, nil), Store: store2}); err != nil {
			t.Fatal(err)
		}
		if api.failures.Load() == 0 {
			t.Fatal("no failure was injected")
		}
		got, _ := dump(t, store2, "envV1", "envV2")
		want, _ := dump(t, store, "envV1", "envV2")
		diffMaps(t, want, got)
	})

	t.Run("gives up after MaxRetries", func(t *testing.T) {
		api := standIn(gen)
		api.failEvery = 1
		srv := api.start(t)
		_, err := migrate.Run(ctx, migrate.Options{Source: restSource(t, srv.URL, func(c *migrate.RESTConfig) { c.MaxRetries = 2 }), Store: memstore.New()})
		if err == nil || !strings.Contains(err.Error(), "HTTP 429") && !strings.Contains(err.Error(), "HTTP 503") {
			t.Errorf("err %v", err)
		}
		if n := api.requests.Load(); n != 3 {
			t.Errorf("%d requests, want 3 (one try and two retries)", n)
		}
	})

	t.Run("bad token", func(t *testing.T) {
		_, err := migrate.Run(ctx, migrate.Options{Source: restSource(t, srv.URL, func(c *migrate.RESTConfig) { c.Token = "org.wrong" }), Store: memstore.New()})
		if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "token") {
			t.Errorf("err %v", err)
		}
	})

	t.Run("environment keys", func(t *testing.T) {
		s := memstore.New()
		if _, err := migrate.Run(ctx, migrate.Options{Source: restSource(t, srv.URL, func(c *migrate.RESTConfig) { c.EnvironmentKeys = []string{"envV2"} }), Store: s}); err != nil {
			t.Fatal(err)
		}
		got, _ := dump(t, s, "envV1", "envV2")
		w := wantREST(t)
		diffMaps(t, map[string]string{"envV2_dave": w["envV2_dave"], "envV2_alice": w["envV2_alice"]}, got)
		_, err := migrate.Run(ctx, migrate.Options{Source: restSource(t, srv.URL, func(c *migrate.RESTConfig) { c.EnvironmentKeys = []string{"envOther"} }), Store: s})
		if err == nil || !strings.Contains(err.Error(), "envOther") {
			t.Errorf("an environment of another project: err %v", err)
		}
	})

	t.Run("identity deleted during the run", func(t *testing.T) {
		api := standIn(gen)
		srv := api.start(t)
		src := restSource(t, srv.URL, nil)
		envs, err := src.Environments(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Count(ctx, envs[0], 0); err != nil { // lists the identities
			t.Fatal(err)
		}
		api.mu.Lock()
		api.idents["envV1"] = api.idents["envV1"][1:] // alice goes
		api.mu.Unlock()
		var skipped []migrate.Record
		err = src.Identities(ctx, envs[0], 0, func(b []migrate.Record) error {
			for _, r := range b {
				if r.Skip == migrate.ReasonGone {
					skipped = append(skipped, r)
				}
			}
			return nil
		})
		if err != nil || len(skipped) != 1 || skipped[0].ID != 10 {
			t.Errorf("err %v, skipped %+v", err, skipped)
		}
	})
}

// TestRESTListingShifts: identities sharing a created_date change order
// between requests, so one crawl of the OFFSET-paged listing misses one;
// the source crawls again and gets them all.
func TestRESTListingShifts(t *testing.T) {
	const gen = 2500 // 2504 identities in envV1: three pages of 999
	api := standIn(gen)
	api.flipTies = true
	srv := api.start(t)
	store := memstore.New()
	rep, err := migrate.Run(context.Background(), migrate.Options{Source: restSource(t, srv.URL, func(c *migrate.RESTConfig) { c.Concurrency = 16 }), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created != gen+4 {
		t.Errorf("created %d, want %d", rep.Created, gen+4)
	}
	if got := api.count("identities"); got < 3+3 {
		t.Errorf("%d identity listing requests: the listing was not crawled again", got)
	}
	checkGenerated(t, store, gen)
}

func TestRESTResumeAfterCancel(t *testing.T) {
	const gen = 600
	api := standIn(gen)
	srv := api.start(t)
	ctx := context.Background()
	mod := func(c *migrate.RESTConfig) { c.BatchSize = 100 }
	clean := memstore.New()
	if _, err := migrate.Run(ctx, migrate.Options{Source: restSource(t, srv.URL, mod), Store: clean}); err != nil {
		t.Fatal(err)
	}
	want, _ := dump(t, clean, "envV1", "envV2")
	for _, k := range []int64{1, 100, 333, 590} {
		t.Run("after "+itoa(k)+" writes", func(t *testing.T) {
			store := memstore.New()
			cp := filepath.Join(t.TempDir(), "cp.json")
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			_, err := migrate.Run(runCtx, migrate.Options{Source: restSource(t, srv.URL, mod),
				Store: &cancellingStore{Store: store, n: k, cancel: cancel}, CheckpointPath: cp})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted run: %v", err)
			}
			_, before := dump(t, store, "envV1", "envV2")
			rep, err := migrate.Run(ctx, migrate.Options{Source: restSource(t, srv.URL, mod), Store: store, CheckpointPath: cp})
			if err != nil {
				t.Fatal(err)
			}
			if k >= 300 && rep.Read >= gen {
				t.Errorf("re-run read %d: not resumed", rep.Read)
			}
			got, uuids := dump(t, store, "envV1", "envV2")
			diffMaps(t, want, got)
			for key, u := range before {
				if uuids[key] != u {
					t.Errorf("%s: identity_uuid changed", key)
				}
			}
		})
	}
}
