package migrate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/memstore"
	"github.com/fledge-flags/fledge/internal/pgtest"
	"github.com/fledge-flags/fledge/migrate"
)

// TestResumeAfterCancel kills a migration (cancels its context) after k
// acknowledged writes, re-runs it with the same checkpoint, and compares
// the store with an uninterrupted run's, item by item.
func TestResumeAfterCancel(t *testing.T) {
	const n = 3000
	srv := pgtest.Start(t)
	dsn := coreDB(t, srv, "gen", false)
	generate(t, dsn, n)
	ctx := context.Background()
	cfg := migrate.PostgresConfig{DSN: dsn, ProjectID: 1, BatchSize: 200}

	clean := memstore.New()
	rep, err := migrate.Run(ctx, migrate.Options{Source: pgSource(t, cfg), Store: clean, Workers: 8,
		CheckpointPath: filepath.Join(t.TempDir(), "clean.json")})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created != n || rep.Traits != 5*n || rep.Overrides != n/100+n/200 {
		t.Fatalf("clean run: %+v", rep)
	}
	want, _ := dump(t, clean, "genA", "genB")

	for _, k := range []int64{1, 199, 200, 1234, 2900} {
		t.Run("bolt store, killed after "+itoa(k)+" writes", func(t *testing.T) {
			store := storeKinds[1].open(t)
			cp := filepath.Join(t.TempDir(), "checkpoint.json")
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			cs := &cancellingStore{Store: store, n: k, cancel: cancel}
			_, err := migrate.Run(runCtx, migrate.Options{Source: pgSource(t, cfg), Store: cs, Workers: 8, CheckpointPath: cp})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted run: err %v", err)
			}
			_, uuidsBefore := dump(t, store, "genA", "genB")
			if int64(len(uuidsBefore)) < k {
				t.Fatalf("only %d identities after %d writes", len(uuidsBefore), k)
			}
			rep, err := migrate.Run(ctx, migrate.Options{Source: pgSource(t, cfg), Store: store, Workers: 8, CheckpointPath: cp})
			if err != nil {
				t.Fatal(err)
			}
			if k >= 400 && rep.Read >= n {
				t.Errorf("the re-run read %d identities: it did not resume", rep.Read)
			}
			got, uuids := dump(t, store, "genA", "genB")
			diffMaps(t, want, got)
			for key, u := range uuidsBefore {
				if uuids[key] != u {
					t.Errorf("%s: identity_uuid changed from %s to %s", key, u, uuids[key])
				}
			}
			// Finished: a third run has nothing left to read.
			rep, err = migrate.Run(ctx, migrate.Options{Source: pgSource(t, cfg), Store: store, CheckpointPath: cp})
			if err != nil || rep.Read != 0 {
				t.Errorf("third run: read %d, err %v", rep.Read, err)
			}
		})
	}

	t.Run("store failure stops the run and keeps the checkpoint consistent", func(t *testing.T) {
		store := memstore.New()
		store.FailAfter(700)
		cp := filepath.Join(t.TempDir(), "checkpoint.json")
		_, err := migrate.Run(ctx, migrate.Options{Source: pgSource(t, cfg), Store: store, Workers: 8, CheckpointPath: cp})
		if err == nil || !strings.Contains(err.Error(), "injected") {
			t.Fatalf("err %v", err)
		}
		store.FailAfter(0)
		if _, err := migrate.Run(ctx, migrate.Options{Source: pgSource(t, cfg), Store: store, Workers: 8, CheckpointPath: cp}); err != nil {
			t.Fatal(err)
		}
		got, _ := dump(t, store, "genA", "genB")
		diffMaps(t, want, got)
	})

	t.Run("concurrent SDK writes win", func(t *testing.T) {
		store := storeKinds[1].open(t)
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		sdkDone := make(chan error, 1)
		go func() { // an SDK identify for every tenth identity, racing the migration
			for i := 10; i <= n; i += 10 {
				env := identity.Env{APIKey: "genA", ID: "1"}
				if i%2 == 1 {
					env = identity.Env{APIKey: "genB", ID: "2"}
				}
				_, err := store.Update(runCtx, env, "user-"+itoa(int64(i)), func(cur *identity.Identity) (*identity.Identity, error) {
					if cur == nil {
						cur = &identity.Identity{}
					}
					set := func(k string, v engine.Value) {
						for j := range cur.Traits {
							if cur.Traits[j].Key == k {
								cur.Traits[j].Value = v
								return
							}
						}
						cur.Traits = append(cur.Traits, identity.Trait{Key: k, Value: v})
					}
					set("email", engine.String("sdk"))
					set("sdk", engine.Bool(true))
					return cur, nil
				})
				if err != nil {
					sdkDone <- err
					return
				}
			}
			sdkDone <- nil
		}()
		if _, err := migrate.Run(ctx, migrate.Options{Source: pgSource(t, cfg), Store: store, Workers: 8}); err != nil {
			t.Fatal(err)
		}
		if err := <-sdkDone; err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= n; i++ {
			env := "genA"
			if i%2 == 1 {
				env = "genB"
			}
			id, err := store.Get(ctx, env, "user-"+itoa(int64(i)))
			if err != nil {
				t.Fatal(err)
			}
			email, _ := id.Trait("email")
			_, sdk := id.Trait("sdk")
			wantEmail, wantTraits := "user@"+itoa(int64(i)), 5
			if i%10 == 0 {
				wantEmail, wantTraits = "sdk", 6
			}
			if email.Str != wantEmail || sdk != (i%10 == 0) || len(id.Traits) != wantTraits || id.DjangoID == nil || *id.DjangoID != int64(i) {
				t.Fatalf("user-%d: %+v", i, id)
			}
		}
	})

	t.Run("checkpoint of another source", func(t *testing.T) {
		cp := filepath.Join(t.TempDir(), "checkpoint.json")
		if err := os.WriteFile(cp, []byte(`{"version":1,"source":"postgres elsewhere","environments":{}}`), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := migrate.Run(ctx, migrate.Options{Source: pgSource(t, cfg), Store: memstore.New(), CheckpointPath: cp})
		if err == nil || !strings.Contains(err.Error(), "written for") {
			t.Errorf("err %v", err)
		}
		rep, err := migrate.Run(ctx, migrate.Options{Source: pgSource(t, cfg), Store: memstore.New(), CheckpointPath: cp, Restart: true})
		if err != nil || rep.Read != n {
			t.Errorf("restart: read %d, err %v", rep.Read, err)
		}
	})
}

func itoa(i int64) string {
	var b [20]byte
	p := len(b)
	for {
		p--
		b[p] = byte('0' + i%10)
		if i /= 10; i == 0 {
			return string(b[p:])
		}
	}
}
