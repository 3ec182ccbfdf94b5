package server

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestIdentityCacheBoundedByBytes: 128 POSTs of ~1 MB bodies (whose
// responses echo the traits) once pinned ~250 MiB; the cache now holds at
// most IdentityCacheMaxBytes whatever cache_max_size says.
func TestIdentityCacheBoundedByBytes(t *testing.T) {
	h, _ := newTestHandler(t, func(o *Options) {
		o.IdentityCacheSize = 128
		o.MaxBodyBytes = 2 << 20
	})
	for i := range 128 {
		// 400 traits of 1990 characters (values are limited to 2000):
		// about 800 KB per body, echoed in the response.
		var b strings.Builder
		fmt.Fprintf(&b, `{"identifier":"big-%d","traits":[`, i)
		for j := range 400 {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"trait_key":"t%d","trait_value":"%s"}`, j, strings.Repeat("x", 1990))
		}
		b.WriteString("]}")
		rec := do(h, "POST", "/api/v1/identities/", b.String(), "X-Environment-Key", serverKey)
		if rec.Code != 200 {
			t.Fatalf("POST %d: %d %.200s", i, rec.Code, rec.Body)
		}
	}
	n, bytes := h.cache.stats()
	if bytes > IdentityCacheMaxBytes {
		t.Fatalf("cache holds %d bytes in %d entries, limit %d", bytes, n, IdentityCacheMaxBytes)
	}
	if n == 0 {
		t.Fatal("nothing cached: the test no longer exercises the byte bound")
	}
	t.Logf("%d entries, %.1f MiB", n, float64(bytes)/(1<<20))
}

func TestIdentityCacheEntriesAndReplacement(t *testing.T) {
	c := newIdentityCache(3)
	k := func(i int) cacheKey { return identityCacheKey("key", []byte{byte(i)}) }
	for i := range 5 {
		c.put(k(i), nil, make([]byte, 10))
	}
	if n, b := c.stats(); n != 3 || b != 3*(10+entryOverhead) {
		t.Fatalf("%d entries, %d bytes; want 3 and %d", n, b, 3*(10+entryOverhead))
	}
	c.put(k(4), nil, make([]byte, 20)) // replacing releases the old bytes
	if n, b := c.stats(); n != 3 || b != 2*(10+entryOverhead)+20+entryOverhead {
		t.Fatalf("after replacing: %d entries, %d bytes", n, b)
	}
	if _, ok := c.get(k(0), nil); ok {
		t.Error("the oldest entry survived")
	}
	c.put(k(9), nil, make([]byte, maxEntryBytes)) // too big for one entry
	if _, ok := c.get(k(9), nil); ok {
		t.Error("cached an entry over maxEntryBytes")
	}
}

// TestIdentityCacheAllocatesLazily: cache_max_size 1,000,000 (the largest
// accepted) costs nothing until responses are cached; 1e8 once
// pre-allocated 3.5 GB before listening.
func TestIdentityCacheAllocatesLazily(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h, _ := newTestHandler(t, func(o *Options) { o.IdentityCacheSize = 1_000_000 })
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Fatalf("building the handler allocated %d bytes", grew)
	}
	if h.cache == nil {
		t.Fatal("no cache")
	}
}
