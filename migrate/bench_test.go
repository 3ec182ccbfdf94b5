package migrate_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/identity/bolt"
	"github.com/fledge-flags/fledge/internal/pgtest"
	"github.com/fledge-flags/fledge/migrate"
)

var (
	benchN       = flag.Int("migrate.bench", 0, "run TestMigrateScale with this many identities (e.g. 100000)")
	benchRest    = flag.Int("migrate.benchrest", 0, "run TestRESTRate with this many identities (e.g. 20000)")
	benchWorkers = flag.Int("migrate.workers", 0, "Options.Workers for TestMigrateScale (0: the default)")
)

// peakRSS is the process's peak resident set (Linux reports KiB).
func peakRSS() string {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.1f MiB", float64(ru.Maxrss)/1024)
}

// TestMigrateScale migrates N identities (5 traits each, 1% with an
// override, 0.5% with a multivariate one) from PostgreSQL into the bolt
// store and reports the duration and the peak RSS. The data is generated
// inside PostgreSQL, so the test process's peak is the migration's.
//
//	go test ./migrate -run TestMigrateScale -migrate.bench=100000 -v
func TestMigrateScale(t *testing.T) {
	if *benchN == 0 {
		t.Skip("set -migrate.bench=N")
	}
	n := *benchN
	srv := pgtest.Start(t)
	dsn := coreDB(t, srv, "scale", false)
	start := time.Now()
	generate(t, dsn, n)
	t.Logf("generated %d identities in PostgreSQL in %v", n, time.Since(start).Round(time.Millisecond))
	runtime.GC()
	rssBefore := peakRSS()

	dbPath := filepath.Join(t.TempDir(), "identities.db")
	store, err := bolt.Open(dbPath, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	src := pgSource(t, migrate.PostgresConfig{DSN: dsn, ProjectID: 1})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rep, err := migrate.Run(context.Background(), migrate.Options{Source: src, Store: store, Progress: os.Stderr, Workers: *benchWorkers,
		Logger: log, LogEvery: 5 * time.Second, CheckpointPath: filepath.Join(t.TempDir(), "checkpoint.json")})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created != int64(n) || rep.Traits != int64(5*n) {
		t.Fatalf("report %+v", rep)
	}
	fi, _ := os.Stat(dbPath)
	size := int64(0)
	if fi != nil {
		size = fi.Size()
	}
	t.Logf("migrated %d identities (%d traits, %d overrides) in %v: %.0f identities/s; peak RSS %s (before the run %s); store file %.1f MiB",
		rep.Created, rep.Traits, rep.Overrides, rep.Duration.Round(time.Millisecond),
		float64(rep.Created)/rep.Duration.Seconds(), peakRSS(), rssBefore, float64(size)/(1<<20))

	// A re-run from scratch (no checkpoint) reads everything and writes nothing.
	rep, err = migrate.Run(context.Background(), migrate.Options{Source: src, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unchanged != int64(n) {
		t.Fatalf("re-run: %+v", rep)
	}
	t.Logf("re-run without a checkpoint (all unchanged) in %v", rep.Duration.Round(time.Millisecond))
}

// TestRESTRate reports the REST source's rate against the stand-in (one
// trait request per identity, as for identities with ≤ 10 traits).
//
//	go test ./migrate -run TestRESTRate -migrate.benchrest=20000 -v
func TestRESTRate(t *testing.T) {
	if *benchRest == 0 {
		t.Skip("set -migrate.benchrest=N")
	}
	api := standIn(*benchRest)
	srv := api.start(t)
	store, err := bolt.Open(filepath.Join(t.TempDir(), "identities.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	rep, err := migrate.Run(context.Background(), migrate.Options{Source: restSource(t, srv.URL, func(c *migrate.RESTConfig) { c.Concurrency = 16 }), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("REST: %d identities, %d requests in %v: %.0f identities/s, %.0f requests/s; peak RSS %s",
		rep.Created, api.requests.Load(), rep.Duration.Round(time.Millisecond),
		float64(rep.Created)/rep.Duration.Seconds(), float64(api.requests.Load())/rep.Duration.Seconds(), peakRSS())
}
