// Package coreitems writes Flagsmith's environment items to DynamoDB the
// way Flagsmith's core writes them (api.md §4.2–§4.6), for tests of the
// dynamodb environment source: boto3's mapping of JSON (objects M, lists
// L, strings S, booleans BOOL, null NULL, every number N), the optional
// compression of project and feature_states (gzip of JSON with sorted
// keys and compact separators, mtime 0, with compressed: true), the v2
// _META item (api_key removed; environment_api_key, environment_id and
// document_key added) and identity_override items, and the api-key items.
package coreitems

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/internal/avjson"
)

// Tables names the environment tables written to.
type Tables struct {
	Environments, EnvironmentsV2, APIKeys string
}

// Writer puts items into the tables.
type Writer struct {
	DB     *dynamodb.Client
	Tables Tables
}

// compressedAttrs are the attributes core compresses.
var compressedAttrs = []string{"project", "feature_states"}

// Item converts a document (JSON) to an item as boto3 stores it; with
// compress, project and feature_states become gzip Binary and compressed
// is set, as core's compressed documents are.
func Item(doc []byte, compress bool) (map[string]types.AttributeValue, error) {
	av, err := avjson.FromJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("coreitems: document: %w", err)
	}
	m, ok := av.(*types.AttributeValueMemberM)
	if !ok {
		return nil, fmt.Errorf("coreitems: document is not an object")
	}
	item := m.Value
	if !compress {
		return item, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, err
	}
	for _, a := range compressedAttrs {
		raw, ok := top[a]
		if !ok {
			continue
		}
		b, err := gzipSorted(raw)
		if err != nil {
			return nil, err
		}
		item[a] = &types.AttributeValueMemberB{Value: b}
	}
	item["compressed"] = &types.AttributeValueMemberBOOL{Value: true}
	return item, nil
}

// gzipSorted is core's compression: json.dumps(sort_keys=True,
// separators=(",", ":")) gzipped with mtime 0. Go's encoder sorts map
// keys and writes no spaces.
func gzipSorted(raw json.RawMessage) ([]byte, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf) // a zero ModTime: mtime 0
	if _, err := zw.Write(bytes.TrimSpace(js.Bytes())); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// PutEnvironment writes the v1 item of doc (keyed by its api_key).
func (w *Writer) PutEnvironment(ctx context.Context, doc []byte, compress bool) error {
	item, err := Item(doc, compress)
	if err != nil {
		return err
	}
	return w.put(ctx, w.Tables.Environments, item)
}

// DeleteEnvironment deletes the v1 item of the environment.
func (w *Writer) DeleteEnvironment(ctx context.Context, clientKey string) error {
	_, err := w.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(w.Tables.Environments),
		Key:       map[string]types.AttributeValue{"api_key": s(clientKey)},
	})
	return err
}

// PutMeta writes the v2 _META item of doc: api_key removed,
// environment_api_key, environment_id (the document's id, as a string)
// and document_key added.
func (w *Writer) PutMeta(ctx context.Context, doc []byte, compress bool) error {
	item, err := Item(doc, compress)
	if err != nil {
		return err
	}
	key, _ := item["api_key"].(*types.AttributeValueMemberS)
	id, _ := item["id"].(*types.AttributeValueMemberN)
	if key == nil || id == nil {
		return fmt.Errorf("coreitems: document without api_key or id")
	}
	delete(item, "api_key")
	item["environment_api_key"] = key
	item["environment_id"] = s(id.Value)
	item["document_key"] = s("_META")
	return w.put(ctx, w.Tables.EnvironmentsV2, item)
}

// Override is one identity override as core writes it to v2.
type Override struct {
	EnvironmentID int64
	ClientKey     string
	Identifier    string
	IdentityUUID  string
	// FeatureState is the override's feature state (JSON), with its
	// feature.id.
	FeatureState []byte
}

// PutOverride writes an identity_override item.
func (w *Writer) PutOverride(ctx context.Context, o Override) error {
	var head struct {
		Feature struct {
			ID int64 `json:"id"`
		} `json:"feature"`
	}
	if err := json.Unmarshal(o.FeatureState, &head); err != nil {
		return err
	}
	fs, err := avjson.FromJSON(o.FeatureState)
	if err != nil {
		return fmt.Errorf("coreitems: feature state: %w", err)
	}
	return w.put(ctx, w.Tables.EnvironmentsV2, map[string]types.AttributeValue{
		"environment_id":      s(strconv.FormatInt(o.EnvironmentID, 10)),
		"document_key":        s("identity_override:" + strconv.FormatInt(head.Feature.ID, 10) + ":" + o.IdentityUUID),
		"environment_api_key": s(o.ClientKey),
		"identifier":          s(o.Identifier),
		"identity_uuid":       s(o.IdentityUUID),
		"created_date":        s(time.Now().UTC().Format("2006-01-02T15:04:05.000000+00:00")),
		"feature_state":       fs,
	})
}

// APIKey is a flagsmith_environment_api_key item.
type APIKey struct {
	Key, ClientKey string
	ID             int64
	Active         bool
	// ExpiresAt: nil is null (never).
	ExpiresAt *time.Time
}

// PutAPIKey writes an api-key item as core does on key save.
func (w *Writer) PutAPIKey(ctx context.Context, k APIKey) error {
	exp := types.AttributeValue(&types.AttributeValueMemberNULL{Value: true})
	if k.ExpiresAt != nil {
		exp = s(k.ExpiresAt.UTC().Format("2006-01-02T15:04:05.000000+00:00"))
	}
	return w.put(ctx, w.Tables.APIKeys, map[string]types.AttributeValue{
		"key":            s(k.Key),
		"client_api_key": s(k.ClientKey),
		"id":             &types.AttributeValueMemberN{Value: strconv.FormatInt(k.ID, 10)},
		"name":           s("key " + strconv.FormatInt(k.ID, 10)),
		"created_at":     s("2023-04-21T13:11:13.913178+00:00"),
		"expires_at":     exp,
		"active":         &types.AttributeValueMemberBOOL{Value: k.Active},
	})
}

// DeleteAPIKey deletes an api-key item, as core does on key delete.
func (w *Writer) DeleteAPIKey(ctx context.Context, key string) error {
	_, err := w.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(w.Tables.APIKeys),
		Key:       map[string]types.AttributeValue{"key": s(key)},
	})
	return err
}

func (w *Writer) put(ctx context.Context, table string, item map[string]types.AttributeValue) error {
	if _, err := w.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		return fmt.Errorf("coreitems: put into %s: %w", table, err)
	}
	return nil
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
