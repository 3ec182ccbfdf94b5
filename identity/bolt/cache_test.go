package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// TestDecodedCacheNeverStale: reads served from the cache of decoded
// identities always see the latest write, under concurrent reads and
// writes, and a caller modifying what it got does not change the cache.
func TestDecodedCacheNeverStale(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ids.db"), Options{CacheEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	env := identity.Env{APIKey: "env"}
	set := func(identifier string, n int) {
		t.Helper()
		_, err := s.Update(ctx, env, identifier, func(cur *identity.Identity) (*identity.Identity, error) {
			if cur == nil {
				cur = &identity.Identity{}
			}
			cur.Traits = []identity.Trait{{Key: "n", Value: engine.Int(int64(n))}}
			return cur, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	read := func(identifier string) int64 {
		id, err := s.Get(ctx, env.APIKey, identifier)
		if err != nil {
			t.Error(err)
			return -1
		}
		v, _ := id.Trait("n")
		id.Traits[0].Value = engine.Int(-99) // must not reach the cache
		return v.Int
	}
	set("a", 1)
	if got := read("a"); got != 1 {
		t.Fatalf("first read: %d", got)
	}
	for range 2 {
		if got := read("a"); got != 1 {
			t.Fatalf("a cached read saw a caller's modification: %d", got)
		}
	}
	set("a", 2)
	if got := read("a"); got != 2 {
		t.Fatalf("after a write the cache served %d", got)
	}
	// More identities than entries, read and written concurrently: every
	// read sees a value at least as new as the last write it follows.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			id := fmt.Sprintf("w%d", w)
			for n := 1; n <= 30; n++ {
				set(id, n)
				if got := read(id); got != int64(n) {
					t.Errorf("%s: wrote %d, read %d", id, n, got)
					return
				}
			}
		})
	}
	wg.Wait()
}
