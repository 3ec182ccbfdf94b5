package bolt

import (
	"bytes"
	"strconv"

	"github.com/fledge-flags/fledge/identity"
)

// Bucket names. The layout follows api.md §4.10: items keyed by
// composite_key, and secondary indexes that turn every query into a point
// read or a prefix scan.
var (
	// bucketIdentities: composite_key → the flagsmith_identities item JSON.
	bucketIdentities = []byte("identities")
	// bucketMeta: composite_key → meta JSON, what this store indexed the
	// identity under, so index entries can be removed even when the item
	// itself has become unreadable.
	bucketMeta = []byte("identity_meta")
	// bucketByIdentifier: part(env) + identifier → composite_key.
	bucketByIdentifier = []byte("identifier_index")
	// bucketByUUID: identity_uuid → composite_key.
	bucketByUUID = []byte("uuid_index")
	// bucketByAlias: part(env) + part(alias) + identifier → composite_key;
	// only identities with an alias, like DynamoDB's sparse alias GSI.
	bucketByAlias = []byte("alias_index")
	// bucketOverrides: part(env) + document_key → override item JSON, so
	// that Overrides is one prefix scan in DocumentKey order.
	bucketOverrides = []byte("overrides")

	allBuckets = [][]byte{bucketIdentities, bucketMeta, bucketByIdentifier, bucketByUUID, bucketByAlias, bucketOverrides}
)

// appendPart appends s as one component of a composite index key, so that
// keys sort by their components in order and no component can run into the
// next: 0x00 is escaped as 0x00 0xFF and the component ends with 0x00 0x01.
// An environment key that extends another therefore never shares its
// prefix, and "qa" sorts before "qa account" as it does alone.
func appendPart(dst []byte, s string) []byte {
	dst = appendEscaped(dst, s)
	return append(dst, 0x00, 0x01)
}

// appendEscaped appends s escaped but unterminated: the prefix of every
// part that starts with s.
func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0x00 {
			dst = append(dst, 0x00, 0xFF)
			continue
		}
		dst = append(dst, s[i])
	}
	return dst
}

func identifierKey(envKey, identifier string) []byte {
	return append(appendPart(nil, envKey), identifier...)
}

func aliasKey(envKey, alias, identifier string) []byte {
	return append(appendPart(appendPart(nil, envKey), alias), identifier...)
}

func overrideKey(envKey string, featureID int64, identityUUID string) []byte {
	return append(appendPart(nil, envKey), identity.OverrideDocumentKey(featureID, identityUUID)...)
}

// overridePrefix selects an environment's override entries, for one feature
// or (featureID 0) all of them. The trailing ':' keeps feature 1 from
// matching feature 10.
func overridePrefix(envKey string, featureID int64) []byte {
	p := append(appendPart(nil, envKey), "identity_override:"...)
	if featureID != 0 {
		p = strconv.AppendInt(p, featureID, 10)
		p = append(p, ':')
	}
	return p
}

// after returns the smallest key that sorts after k (k followed by a zero
// byte): where a listing resumes, past the cursor's own entry.
func after(k []byte) []byte { return append(bytes.Clone(k), 0x00) }
