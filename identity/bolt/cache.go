package bolt

import (
	"bytes"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/fledge-flags/fledge/identity"
)

// DefaultCacheEntries is how many decoded identities a store keeps.
const DefaultCacheEntries = 4096

// decoded caches identities already decoded from their item JSON, which is
// most of a read's cost (an identity with 15 traits: ~40 µs decoding, ~2 µs
// checking the cache). An entry is used only when the bytes read in the
// transaction are exactly the bytes it was decoded from, so the cache can
// never serve a stale identity, whatever the order of concurrent reads and
// writes: there is nothing to invalidate.
type decoded struct {
	lru *lru.Cache[string, *decodedEntry]
}

type decodedEntry struct {
	raw, metaRaw []byte // copies of the item and its metadata as decoded
	meta         *meta
	id           *identity.Identity
}

func newDecoded(entries int) *decoded {
	if entries <= 0 {
		return nil
	}
	c, err := lru.New[string, *decodedEntry](entries)
	if err != nil {
		return nil
	}
	return &decoded{lru: c}
}

// get returns a copy of the identity, and the metadata, decoded from
// exactly raw and metaRaw.
func (d *decoded) get(ck string, raw, metaRaw []byte) (*identity.Identity, *meta, bool) {
	if d == nil {
		return nil, nil, false
	}
	e, ok := d.lru.Get(ck)
	if !ok || !bytes.Equal(e.raw, raw) || !bytes.Equal(e.metaRaw, metaRaw) {
		return nil, nil, false
	}
	return e.id.Clone(), e.meta, true
}

// put remembers id and m as decoded from raw and metaRaw (bbolt's slices are only
// valid inside their transaction, so both are copied). The caller keeps id
// and must not modify it afterwards.
func (d *decoded) put(ck string, raw, metaRaw []byte, m *meta, id *identity.Identity) {
	if d == nil {
		return
	}
	d.lru.Add(ck, &decodedEntry{raw: bytes.Clone(raw), metaRaw: bytes.Clone(metaRaw), meta: m, id: id.Clone()})
}
