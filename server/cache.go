package server

import (
	"container/list"
	"sync"

	"github.com/fledge-flags/fledge/environment"
)

// identityCache is the edge proxy's optional LRU of identity responses
// (endpoint_caches.identities). Entries remember the snapshot they were
// computed from, so a new document version invalidates them without a
// sweep: that is the "clear the caches when a document changes" rule.
type identityCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[string]*list.Element
}

type cacheEntry struct {
	key  string
	snap *environment.Snapshot
	body []byte
}

func newIdentityCache(max int) *identityCache {
	return &identityCache{max: max, ll: list.New(), items: make(map[string]*list.Element, max)}
}

func (c *identityCache) get(key string, snap *environment.Snapshot) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if e.snap != snap {
		c.ll.Remove(el)
		delete(c.items, key)
		return nil, false
	}
	c.ll.MoveToFront(el)
	return e.body, true
}

func (c *identityCache) put(key string, snap *environment.Snapshot, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*cacheEntry)
		e.snap, e.body = snap, body
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, snap: snap, body: body})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}
