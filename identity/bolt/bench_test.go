package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// benchWriters is the number of concurrent identify requests in the group
// commit benchmark.
const benchWriters = 25

// runWriters spreads b.N operations over benchWriters goroutines.
func runWriters(b *testing.B, op func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchWriters)
	b.ResetTimer()
	for range benchWriters {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if err := op(int(i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

func updateOp(b *testing.B, s *Store) func(i int) error {
	return func(i int) error {
		identifier := fmt.Sprintf("user-%d", i%1000)
		_, err := s.Update(b.Context(), testEnv, identifier, func(cur *identity.Identity) (*identity.Identity, error) {
			if cur == nil {
				cur = &identity.Identity{Traits: []identity.Trait{{Key: "plan", Value: engine.String("gold")}}}
			}
			cur.Traits = append(cur.Traits[:1], identity.Trait{Key: "n", Value: engine.Int(int64(i))})
			return cur, nil
		})
		return err
	}
}

// BenchmarkUpdateConcurrent: 25 writers through Update, group-committed
// (one fsync per batch).
func BenchmarkUpdateConcurrent(b *testing.B) {
	s := openTest(b, Options{})
	runWriters(b, updateOp(b, s))
}

// BenchmarkUpdateSerial: one writer through Update: the latency of a lone
// identify write (the batch delay plus one fsync).
func BenchmarkUpdateSerial(b *testing.B) {
	s := openTest(b, Options{})
	op := updateOp(b, s)
	b.ResetTimer()
	for i := range b.N {
		if err := op(i); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkRawFsyncConcurrent is the baseline without group commit: the
// same 25 writers, each write its own bbolt transaction and fsync.
func BenchmarkRawFsyncConcurrent(b *testing.B) {
	s := openTest(b, Options{})
	value := make([]byte, 300) // about an identity item's size
	runWriters(b, func(i int) error {
		return s.db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketIdentities).Put(fmt.Appendf(nil, "envkey_user-%d", i%1000), value)
		})
	})
}

// BenchmarkGet reads one identity with 15 traits and an override, the
// api role's GET /identities/ path.
func BenchmarkGet(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "ids.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	env := identity.Env{APIKey: "benchEnv", ID: "1"}
	_, err = s.Update(ctx, env, "reader", func(*identity.Identity) (*identity.Identity, error) {
		id := &identity.Identity{}
		for i := range 15 {
			id.Traits = append(id.Traits, identity.Trait{Key: fmt.Sprintf("trait_%02d", i), Value: engine.String(fmt.Sprintf("value-%d", i))})
		}
		id.Overrides = []identity.Override{{Feature: identity.FeatureRef{ID: 1, Name: "f"}, Enabled: true, Value: []byte(`"x"`)}}
		return id, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, env.APIKey, "reader"); err != nil {
			b.Fatal(err)
		}
	}
}
