package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"path/filepath"
	"reflect"
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

// TestUpdateResultIsWhatGetReads: the identity Update returns (and caches)
// is exactly what decoding the stored item gives.
func TestUpdateResultIsWhatGetReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ids.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	env := identity.Env{APIKey: "env", ID: "3"}
	huge, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	django := int64(77)
	result, err := s.Update(ctx, env, "x", func(*identity.Identity) (*identity.Identity, error) {
		return &identity.Identity{
			DjangoID:       &django,
			DashboardAlias: "qa",
			Traits: []identity.Trait{{Key: "s", Value: engine.String("<a&b>")}, {Key: "f", Value: engine.Float(4)},
				{Key: "i", Value: engine.Int(-3)}, {Key: "big", Value: engine.Value{Kind: engine.KindInt, Big: huge}}, {Key: "b", Value: engine.Bool(false)}},
			Overrides: []identity.Override{
				{Feature: identity.FeatureRef{ID: 1, Name: "a", Type: "STANDARD"}, Enabled: true, Value: json.RawMessage(` { "k" : [1, 2] } `), FeatureStateUUID: "u1"},
				{Feature: identity.FeatureRef{ID: 2, Name: "b"}, Value: json.RawMessage(`null`), MultivariateValues: json.RawMessage(`[ ]`)},
				{Feature: identity.FeatureRef{ID: 3, Name: "c"}, Value: json.RawMessage(`"v"`), MultivariateValues: json.RawMessage(`[{"multivariate_feature_option": {"id": 1, "value": "x"}, "percentage_allocation": 50}]`)},
			},
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, Options{CacheEntries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	read, err := s.Get(ctx, env.APIKey, "x")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(result, read) {
		t.Errorf("Update returned\n%+v\nGet decodes\n%+v", result, read)
	}
}
