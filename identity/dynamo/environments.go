package dynamo

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/internal/redact"
)

// Environment documents and server-side keys as Flagsmith's core writes
// them (api.md §4.3, §4.4, §4.6), for serving environments straight from
// the tables (environment_source dynamodb).

// ErrNoDocument: the environment has no document in the tables (neither a
// flagsmith_environments item nor a _META item).
var ErrNoDocument = errors.New("no environment document")

// Attribute names of the environment tables.
const (
	attrAPIKey       = "api_key"
	attrCompressed   = "compressed"
	attrKey          = "key"
	attrClientAPIKey = "client_api_key"
	attrActive       = "active"
	attrExpiresAt    = "expires_at"
	metaDocumentKey  = "_META"
	maxDocumentBytes = 32 << 20 // one decompressed attribute
	gzipMagic0       = 0x1f
	gzipMagic1       = 0x8b
)

// APIKey is one flagsmith_environment_api_key item: a server-side key of
// the environment whose client-side key is ClientKey.
type APIKey struct {
	Key, ClientKey string
	Active         bool
	// ExpiresAt is when the key stops working; zero: never.
	ExpiresAt time.Time
}

// EnvironmentItem is one flagsmith_environments item read by a scan: the
// document as JSON, or why it could not be read.
type EnvironmentItem struct {
	ClientKey string
	JSON      []byte
	Err       error
}

// APIKeys scans flagsmith_environment_api_key. An item without key or
// client_api_key is skipped with a warning; an expires_at that cannot be
// read makes the key expired (a key is never honoured past a date that
// cannot be told), as does a missing active.
func (s *Store) APIKeys(ctx context.Context) ([]APIKey, error) {
	if err := s.check(ctx, "api keys"); err != nil {
		return nil, err
	}
	in := &dynamodb.ScanInput{
		TableName:                &s.opts.Tables.APIKeys,
		ProjectionExpression:     aws.String("#k, #c, #a, #e"),
		ExpressionAttributeNames: map[string]string{"#k": attrKey, "#c": attrClientAPIKey, "#a": attrActive, "#e": attrExpiresAt},
	}
	var keys []APIKey
	p := dynamodb.NewScanPaginator(s.db, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify("scanning "+s.opts.Tables.APIKeys, err)
		}
		for _, item := range out.Items {
			k, ok := s.decodeAPIKey(item)
			if ok {
				keys = append(keys, k)
			}
		}
	}
	return keys, nil
}

func (s *Store) decodeAPIKey(item map[string]types.AttributeValue) (APIKey, bool) {
	var k APIKey
	key, _ := item[attrKey].(*types.AttributeValueMemberS)
	client, _ := item[attrClientAPIKey].(*types.AttributeValueMemberS)
	if key == nil || client == nil || key.Value == "" || client.Value == "" {
		s.log.Warn("dynamo: api key item without key or client_api_key skipped", "table", s.opts.Tables.APIKeys)
		return k, false
	}
	k.Key, k.ClientKey = key.Value, client.Value
	if a, ok := item[attrActive].(*types.AttributeValueMemberBOOL); ok {
		k.Active = a.Value
	}
	switch e := item[attrExpiresAt].(type) {
	case nil, *types.AttributeValueMemberNULL:
	case *types.AttributeValueMemberS:
		t, err := parseTime(e.Value)
		if err != nil {
			s.log.Warn("dynamo: api key with an unreadable expires_at treated as expired", "client_key", redact.Key(k.ClientKey))
			t = time.Unix(0, 0)
		}
		k.ExpiresAt = t
	default:
		s.log.Warn("dynamo: api key with an unreadable expires_at treated as expired", "client_key", redact.Key(k.ClientKey))
		k.ExpiresAt = time.Unix(0, 0)
	}
	return k, true
}

// parseTime reads core's ISO-8601 timestamps (with an offset; naive ones
// are UTC).
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not an ISO-8601 timestamp")
}

// EnvironmentDocument returns the document of the environment with
// clientKey as JSON: its flagsmith_environments item, or, when there is
// none, its _META item in flagsmith_environments_v2 (found through the
// environment_api_key-index) with api_key put back and the storage
// attributes removed. Compressed attributes are decompressed. It wraps
// ErrNoDocument when neither item exists.
func (s *Store) EnvironmentDocument(ctx context.Context, clientKey string) ([]byte, error) {
	if err := s.check(ctx, "environment document"); err != nil {
		return nil, err
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.opts.Tables.Environments,
		Key:       map[string]types.AttributeValue{attrAPIKey: sv(clientKey)},
	})
	if err != nil {
		return nil, classify("reading "+s.opts.Tables.Environments, err)
	}
	if out.Item != nil {
		return documentJSON(out.Item)
	}
	meta, err := s.metaItem(ctx, clientKey)
	if err != nil {
		return nil, err
	}
	if meta == nil {
		return nil, fmt.Errorf("dynamo: %w in %s or %s", ErrNoDocument, s.opts.Tables.Environments, s.opts.Tables.EnvironmentsV2)
	}
	for _, a := range []string{attrEnvKey, attrEnvironmentID, attrDocumentKey} {
		delete(meta, a)
	}
	meta[attrAPIKey] = sv(clientKey)
	return documentJSON(meta)
}

// metaItem finds the environment's _META item through the
// environment_api_key-index (whose partition also holds the override
// items; DynamoDB filters them out after reading them). nil: none.
func (s *Store) metaItem(ctx context.Context, clientKey string) (map[string]types.AttributeValue, error) {
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:                 &s.opts.Tables.EnvironmentsV2,
		IndexName:                 aws.String(indexV2EnvKey),
		KeyConditionExpression:    aws.String("#e = :e"),
		FilterExpression:          aws.String("#d = :meta"),
		ExpressionAttributeNames:  map[string]string{"#e": attrEnvKey, "#d": attrDocumentKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": sv(clientKey), ":meta": sv(metaDocumentKey)},
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify("querying "+s.opts.Tables.EnvironmentsV2+" for _META", err)
		}
		if len(out.Items) > 0 {
			return maps.Clone(out.Items[0]), nil
		}
	}
	return nil, nil
}

// EnvironmentDocuments scans flagsmith_environments: every environment's
// document, as EnvironmentDocument reads one. An item that cannot be read
// is returned with its error; a failed scan returns nothing.
func (s *Store) EnvironmentDocuments(ctx context.Context) ([]EnvironmentItem, error) {
	if err := s.check(ctx, "environment documents"); err != nil {
		return nil, err
	}
	var items []EnvironmentItem
	p := dynamodb.NewScanPaginator(s.db, &dynamodb.ScanInput{TableName: &s.opts.Tables.Environments})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify("scanning "+s.opts.Tables.Environments, err)
		}
		for _, item := range out.Items {
			k, _ := item[attrAPIKey].(*types.AttributeValueMemberS)
			if k == nil || k.Value == "" {
				s.log.Warn("dynamo: environment item without api_key skipped", "table", s.opts.Tables.Environments)
				continue
			}
			doc, err := documentJSON(item)
			items = append(items, EnvironmentItem{ClientKey: k.Value, JSON: doc, Err: err})
		}
	}
	return items, nil
}

// documentJSON encodes an environment item as one JSON object with its
// keys in order, so that an unchanged item gives the same bytes. Binary
// attributes are gzip-compressed JSON (core compresses project and
// feature_states, setting compressed: true); they are decompressed in
// place and compressed is dropped, since the JSON no longer is.
func documentJSON(item map[string]types.AttributeValue) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	buf = append(buf, '{')
	n := 0
	for _, k := range slices.Sorted(maps.Keys(item)) {
		if k == attrCompressed {
			continue
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		buf = engine.AppendJSONString(buf, k)
		buf = append(buf, ':')
		var err error
		if b, ok := item[k].(*types.AttributeValueMemberB); ok {
			buf, err = appendGunzipped(buf, b.Value)
			if err != nil {
				return nil, fmt.Errorf("dynamo: environment attribute %s: %w", k, err)
			}
			continue
		}
		if buf, err = appendAVJSONSorted(buf, item[k]); err != nil {
			return nil, fmt.Errorf("dynamo: environment attribute %s: %w", k, err)
		}
	}
	return append(buf, '}'), nil
}

// appendGunzipped appends the JSON that b, gzip-compressed, holds.
func appendGunzipped(dst, b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != gzipMagic0 || b[1] != gzipMagic1 {
		return nil, errors.New("binary but not gzip-compressed")
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	if len(data) > maxDocumentBytes {
		return nil, fmt.Errorf("more than %d bytes decompressed", maxDocumentBytes)
	}
	data = bytes.TrimSpace(data)
	if !json.Valid(data) {
		return nil, errors.New("decompressed but not JSON")
	}
	return append(dst, data...), nil
}

// overrideEntry is one identity_overrides entry of a document.
type overrideEntry struct {
	Identifier        string            `json:"identifier"`
	IdentityUUID      string            `json:"identity_uuid"`
	EnvironmentAPIKey string            `json:"environment_api_key"`
	IdentityFeatures  []json.RawMessage `json:"identity_features"`
}

// OverrideEntries reads the environment's identity_override items from
// flagsmith_environments_v2 (partition envID, in document_key order) as
// the document's identity_overrides entries: one per identity, holding
// its feature states as stored. Items without a feature_state are
// skipped.
func (s *Store) OverrideEntries(ctx context.Context, envID, clientKey string) ([]json.RawMessage, error) {
	if err := s.check(ctx, "override entries"); err != nil {
		return nil, err
	}
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:                 &s.opts.Tables.EnvironmentsV2,
		KeyConditionExpression:    aws.String("#e = :e AND begins_with(#d, :p)"),
		ExpressionAttributeNames:  map[string]string{"#e": attrEnvironmentID, "#d": attrDocumentKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": sv(envID), ":p": sv(overrideKeyPrefix)},
	})
	var entries []*overrideEntry
	byUUID := map[string]*overrideEntry{}
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify("querying "+s.opts.Tables.EnvironmentsV2+" for identity overrides", err)
		}
		for _, item := range out.Items {
			fs, ok := item[attrFeatureState]
			if !ok {
				continue
			}
			raw, err := appendAVJSONSorted(nil, fs)
			if err != nil {
				s.log.Warn("dynamo: unreadable override item skipped", "error", err.Error())
				continue
			}
			var id, uuid string
			if v, ok := item[attrIdentifier].(*types.AttributeValueMemberS); ok {
				id = v.Value
			}
			if v, ok := item[attrUUID].(*types.AttributeValueMemberS); ok {
				uuid = v.Value
			}
			e := byUUID[uuid]
			if e == nil {
				e = &overrideEntry{Identifier: id, IdentityUUID: uuid, EnvironmentAPIKey: clientKey}
				byUUID[uuid] = e
				entries = append(entries, e)
			}
			e.IdentityFeatures = append(e.IdentityFeatures, raw)
		}
	}
	res := make([]json.RawMessage, 0, len(entries))
	for _, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("dynamo: encoding identity overrides: %w", err)
		}
		res = append(res, b)
	}
	return res, nil
}

// APIKeys is Store.APIKeys in the region in use, failing over as every
// call does.
func (r *Regions) APIKeys(ctx context.Context) (keys []APIKey, err error) {
	err = r.do(ctx, "api keys", func(ctx context.Context, s *Store) error {
		keys, err = s.APIKeys(ctx)
		return err
	})
	return keys, err
}

// EnvironmentDocument is Store.EnvironmentDocument in the region in use.
func (r *Regions) EnvironmentDocument(ctx context.Context, clientKey string) (doc []byte, err error) {
	err = r.do(ctx, "environment document", func(ctx context.Context, s *Store) error {
		doc, err = s.EnvironmentDocument(ctx, clientKey)
		return err
	})
	return doc, err
}

// EnvironmentDocuments is Store.EnvironmentDocuments in the region in use.
func (r *Regions) EnvironmentDocuments(ctx context.Context) (items []EnvironmentItem, err error) {
	err = r.do(ctx, "environment documents", func(ctx context.Context, s *Store) error {
		items, err = s.EnvironmentDocuments(ctx)
		return err
	})
	return items, err
}

// OverrideEntries is Store.OverrideEntries in the region in use.
func (r *Regions) OverrideEntries(ctx context.Context, envID, clientKey string) (entries []json.RawMessage, err error) {
	err = r.do(ctx, "override entries", func(ctx context.Context, s *Store) error {
		entries, err = s.OverrideEntries(ctx, envID, clientKey)
		return err
	})
	return entries, err
}
