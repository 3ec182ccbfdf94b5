// Command fillstore fills an embedded identity store (identity/bolt) with
// synthetic identities for bench/api-run, through the store's public API:
// every identity is one Store.Update, exactly as the identify path writes
// it (item, metadata, identifier, UUID and override indexes), from many
// goroutines so that the store's group commit batches them. Nothing is
// written behind the store's back.
//
//	fillstore -store DIR -doc P2.json -env-key KEY -n 1000000
//	fillstore -store DIR -evict      # drop the file from the page cache, then exit
//	fillstore -store DIR -stats      # where the file's bytes go (B-tree pages, free pages)
//
// Identity i (0 ≤ i < n) is "user-" followed by i zero-padded to the width
// of n-1 (user-000000 … user-999999 for a million), so that a load
// generator can address a uniformly random one (bench/cmd/load -template
// with {{rand}}). Each has 5 traits (plan, age, country, beta, score) and
// one in ten also has 1–3 identity overrides of features of the document.
// They are written in a shuffled order (see order). A larger -batch-size
// than the store's default (1000) only makes the fill take fewer commits;
// what is stored is the same. It prints one JSON line: identities,
// seconds, and the file's size.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/bolt"
)

// dbFile is the database file inside a store directory (app.embeddedFile).
const dbFile = "identities.db"

type options struct {
	store      string
	doc        string
	envKey     string
	n          int
	workers    int
	batchSize  int
	evict      bool
	stats      bool
	progress   time.Duration
	cpuProfile string
}

func main() {
	var o options
	flag.StringVar(&o.store, "store", "", "store directory (store.path); the file is DIR/"+dbFile)
	flag.StringVar(&o.doc, "doc", "", "environment document whose features the overrides name")
	flag.StringVar(&o.envKey, "env-key", "", "environment (client-side) key the identities belong to")
	flag.IntVar(&o.n, "n", 1_000_000, "identities to write")
	flag.IntVar(&o.workers, "workers", 4000, "concurrent writers (goroutines), each one Store.Update at a time")
	flag.IntVar(&o.batchSize, "batch-size", 0, "the store's MaxBatchSize (0: its default)")
	flag.BoolVar(&o.evict, "evict", false, "only drop the store's file from the page cache (posix_fadvise DONTNEED)")
	flag.BoolVar(&o.stats, "stats", false, "only print where the file's bytes go (opens it read-only with bbolt)")
	flag.DurationVar(&o.progress, "progress", 10*time.Second, "report progress on stderr this often (0: never)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the fill to this file")
	flag.Parse()
	if err := run(o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fillstore:", err)
		os.Exit(1)
	}
}

func run(o options, out, logw io.Writer) error {
	if o.store == "" {
		return errors.New("-store is required")
	}
	path := filepath.Join(o.store, dbFile)
	if o.evict {
		return evict(path)
	}
	if o.stats {
		return fileStats(path, out)
	}
	switch {
	case o.doc == "" || o.envKey == "":
		return errors.New("-doc and -env-key are required")
	case o.n < 1 || o.n > 100_000_000:
		return errors.New("-n must be between 1 and 10⁸")
	case o.workers < 1 || o.workers > 100_000:
		return errors.New("-workers must be between 1 and 100000")
	}
	features, envID, err := readDocument(o.doc)
	if err != nil {
		return err
	}
	s, err := bolt.Open(path, bolt.Options{MaxBatchSize: o.batchSize})
	if err != nil {
		return err
	}
	env := identity.Env{APIKey: o.envKey, ID: envID}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	written, err := fill(context.Background(), s, env, features, o, logw)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return err
	}
	b, err := json.Marshal(map[string]any{
		"kind": "fill", "identities": o.n, "written": written, "seconds": secs,
		"file_bytes": fi.Size(), "disk_bytes": st.Blocks * 512, "workers": o.workers,
		"gomaxprocs": runtime.GOMAXPROCS(0),
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

// fill writes identities 0..n-1 (those already stored are left alone) and
// returns how many it wrote.
func fill(ctx context.Context, s identity.Store, env identity.Env, features []identity.FeatureRef, o options, logw io.Writer) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next, done, written atomic.Int64
	var firstErr error
	var once sync.Once
	width := len(strconv.Itoa(o.n - 1))
	ids := order(o.n)
	var wg sync.WaitGroup
	for range min(o.workers, o.n) {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= o.n || ctx.Err() != nil {
					return
				}
				id := synthetic(int(ids[k]), width, features)
				_, err := s.Update(ctx, env, id.Identifier, func(cur *identity.Identity) (*identity.Identity, error) {
					if cur != nil {
						return nil, identity.ErrSkip
					}
					return id.Clone(), nil
				})
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("identity %s: %w", id.Identifier, err); cancel() })
					return
				}
				written.Add(1) // an upper bound when re-filling: skipped ones count too
				done.Add(1)
			}
		})
	}
	stop := make(chan struct{})
	if o.progress > 0 {
		go func() {
			t := time.NewTicker(o.progress)
			defer t.Stop()
			start := time.Now()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					d := done.Load()
					fmt.Fprintf(logw, "fillstore: %d/%d identities, %.0f/s\n", d, o.n, float64(d)/time.Since(start).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	return written.Load(), firstErr
}

// order is the order to write identities 0..n-1 in: shuffled (the same
// shuffle every run), as sign-ups arrive in no particular order of
// identifier. In-order inserts would leave bbolt's pages half full (it splits
// them at its 50% fill), and so would a low-discrepancy order such as k·n/φ
// mod n, which spreads successive identities evenly; a random order leaves
// them about 70% full, as the random identity UUIDs leave the UUID index.
func order(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	rng := rand.New(rand.NewPCG(0x5eed, uint64(n)))
	rng.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

var (
	plans     = []string{"free", "free", "free", "startup", "scale-up", "enterprise"}
	countries = []string{"GB", "US", "DE", "FR", "ES", "IT", "NL", "SE", "PL", "BR", "IN", "JP"}
)

// identifierOf is identity i's identifier for n identities of width digits.
func identifierOf(i, width int) string {
	s := strconv.Itoa(i)
	for len(s) < width {
		s = "0" + s
	}
	return "user-" + s
}

// synthetic is identity i: 5 traits of every type, and for one in ten 1–3
// overrides of the document's features. Values vary with i so that items
// do not compress into each other; the store assigns UUIDs and dates.
func synthetic(i, width int, features []identity.FeatureRef) *identity.Identity {
	id := &identity.Identity{
		Identifier: identifierOf(i, width),
		Traits: []identity.Trait{
			{Key: "plan", Value: engine.String(plans[i%len(plans)])},
			{Key: "age", Value: engine.Int(int64(18 + i%63))},
			{Key: "country", Value: engine.String(countries[(i/7)%len(countries)])},
			{Key: "beta", Value: engine.Bool(i%9 == 0)},
			{Key: "score", Value: engine.Float(float64(i%10007) / 100)},
		},
	}
	if i%10 == 3 && len(features) > 0 {
		for k := range 1 + (i/10)%3 {
			f := features[(i/10+7*k)%len(features)]
			id.Overrides = append(id.Overrides, identity.Override{
				Feature:          f,
				Enabled:          (i+k)%2 == 0,
				Value:            json.RawMessage(strconv.Quote(fmt.Sprintf("override-%d-%d", i, k))),
				FeatureStateUUID: identity.NewUUID(),
			})
		}
	}
	return id
}

// readDocument returns the features of an environment document (distinct,
// in order) and its numeric id.
func readDocument(path string) ([]identity.FeatureRef, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	var doc struct {
		ID            json.Number `json:"id"`
		FeatureStates []struct {
			Feature identity.FeatureRef `json:"feature"`
		} `json:"feature_states"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	var out []identity.FeatureRef
	seen := map[int64]bool{}
	for _, fs := range doc.FeatureStates {
		if f := fs.Feature; f.ID != 0 && !seen[f.ID] {
			seen[f.ID] = true
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, "", fmt.Errorf("%s: no features", path)
	}
	return out, doc.ID.String(), nil
}

// evict drops the file's pages from the page cache, so that the next open
// reads from the disk: a cold start without dropping the whole machine's
// caches.
func evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// fileStats prints the file's size, its size on disk, and how much of it is
// B-tree pages (and how full they are), free pages, and in use at all (the
// rest is room bbolt allocated ahead), from bbolt's own accounting.
func fileStats(path string, out io.Writer) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return err
	}
	// Read-write, or bbolt would not load the freelist; nothing is written.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	var tree, used int
	var hwm int64
	err = db.View(func(tx *bbolt.Tx) error {
		hwm = tx.Size()
		return tx.ForEach(func(_ []byte, b *bbolt.Bucket) error {
			bs := b.Stats()
			tree += bs.BranchAlloc + bs.LeafAlloc
			used += bs.BranchInuse + bs.LeafInuse
			return nil
		})
	})
	if err != nil {
		return err
	}
	ds := db.Stats()
	b, err := json.Marshal(map[string]any{
		"kind": "file", "file_bytes": fi.Size(), "disk_bytes": st.Blocks * 512,
		"tree_bytes": tree, "tree_used_bytes": used, "used_file_bytes": hwm,
		"free_bytes": (ds.FreePageN + ds.PendingPageN) * db.Info().PageSize,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}
