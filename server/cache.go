package server

import (
	"crypto/sha256"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/fledge-flags/fledge/environment"
)

// IdentityCacheMaxBytes bounds what the identity cache holds, whatever
// endpoint_caches.identities.cache_max_size says: responses echo their
// traits, so 128 entries of 1 MiB requests would otherwise pin 128 MiB.
const IdentityCacheMaxBytes = 32 << 20

// entryOverhead approximates what an entry costs beyond its body (key,
// list element, map slot), so that many tiny entries count too.
const entryOverhead = 128

// maxEntryBytes keeps one response from flushing most of the cache.
const maxEntryBytes = IdentityCacheMaxBytes / 16

// identityCache is the edge proxy's optional LRU of identity responses
// (endpoint_caches.identities), bounded by entries and by bytes. It is
// keyed by a SHA-256 of the environment key and the request body, so a
// large request costs 32 bytes of key rather than a copy of itself.
// Entries remember the snapshot they were computed from, so a new document
// version invalidates them without a sweep: that is the "clear the caches
// when a document changes" rule. Nothing is allocated until the first put,
// so a large cache_max_size costs nothing at start-up.
type identityCache struct {
	mu         sync.Mutex
	maxEntries int
	maxBytes   int64
	bytes      int64
	lru        *simplelru.LRU[cacheKey, cacheEntry] // nil until the first put
}

type cacheKey [sha256.Size]byte

type cacheEntry struct {
	snap *environment.Snapshot
	body []byte
}

func (e cacheEntry) size() int64 { return int64(len(e.body)) + entryOverhead }

func newIdentityCache(maxEntries int) *identityCache {
	return &identityCache{maxEntries: maxEntries, maxBytes: IdentityCacheMaxBytes}
}

// identityCacheKey identifies a request: the key it came with (client and
// server keys see different flags) and its exact body.
func identityCacheKey(envKey string, body []byte) cacheKey {
	h := sha256.New()
	h.Write([]byte(envKey))
	h.Write([]byte{0})
	h.Write(body)
	var k cacheKey
	h.Sum(k[:0])
	return k
}

func (c *identityCache) get(key cacheKey, snap *environment.Snapshot) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru == nil {
		return nil, false
	}
	e, ok := c.lru.Get(key)
	if !ok {
		return nil, false
	}
	if e.snap != snap {
		c.lru.Remove(key) // computed from an older document version
		return nil, false
	}
	return e.body, true
}

func (c *identityCache) put(key cacheKey, snap *environment.Snapshot, body []byte) {
	e := cacheEntry{snap: snap, body: body}
	if e.size() > maxEntryBytes || e.size() > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru == nil {
		// NewLRU fails only for a size below 1, which the caller rules out;
		// and it allocates no room up front.
		lru, err := simplelru.NewLRU(c.maxEntries, func(_ cacheKey, old cacheEntry) { c.bytes -= old.size() })
		if err != nil {
			return
		}
		c.lru = lru
	}
	c.lru.Remove(key) // a replaced entry's bytes are released by the callback
	c.lru.Add(key, e)
	c.bytes += e.size()
	for c.bytes > c.maxBytes {
		c.lru.RemoveOldest()
	}
}

// stats reports the cache's entries and bytes, for tests.
func (c *identityCache) stats() (entries int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru != nil {
		entries = c.lru.Len()
	}
	return entries, c.bytes
}
