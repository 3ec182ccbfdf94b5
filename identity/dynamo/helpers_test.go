package dynamo_test

import (
	"context"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/identity/dynamo"
	"github.com/fledge-flags/fledge/internal/dynalite"
)

// server is one dynalite for a top-level test; each store gets its own
// tables under a fresh prefix.
type server struct {
	endpoint string
	client   *dynamodb.Client
	n        atomic.Int64
}

func startServer(t testing.TB) *server {
	t.Helper()
	ep := dynalite.Start(t)
	return &server{endpoint: ep, client: dynalite.Client(ep, dynamo.ConfigureClient)}
}

// store returns a store on fresh tables, created with CreateTables.
func (s *server) store(t testing.TB) *dynamo.Store {
	t.Helper()
	prefix := fmt.Sprintf("t%d_", s.n.Add(1))
	st := dynamo.New(s.client, dynamo.Options{Tables: dynamo.DefaultTables().WithPrefix(prefix)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.CreateTables(ctx); err != nil {
		t.Fatalf("CreateTables: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawItem reads an identity item as DynamoDB holds it.
func rawItem(t testing.TB, st *dynamo.Store, compositeKey string) map[string]types.AttributeValue {
	t.Helper()
	out, err := st.Client().GetItem(ctxT(t), &dynamodb.GetItemInput{
		TableName:      aws.String(st.Tables().Identities),
		Key:            map[string]types.AttributeValue{"composite_key": &types.AttributeValueMemberS{Value: compositeKey}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("GetItem %s: %v", compositeKey, err)
	}
	return out.Item
}

// Attribute value constructors, so that test items read as DynamoDB holds
// them.
func S(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func N(n string) types.AttributeValue { return &types.AttributeValueMemberN{Value: n} }
func B(b bool) types.AttributeValue   { return &types.AttributeValueMemberBOOL{Value: b} }
func NULL() types.AttributeValue      { return &types.AttributeValueMemberNULL{Value: true} }
func L(v ...types.AttributeValue) types.AttributeValue {
	if v == nil {
		v = []types.AttributeValue{}
	}
	return &types.AttributeValueMemberL{Value: v}
}
func M(kv ...any) types.AttributeValue {
	m := map[string]types.AttributeValue{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(types.AttributeValue)
	}
	return &types.AttributeValueMemberM{Value: m}
}

// putRaw writes an item as another writer (core) would, with PutItem.
func putRaw(t testing.TB, st *dynamo.Store, table string, item types.AttributeValue) {
	t.Helper()
	_, err := st.Client().PutItem(ctxT(t), &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item:      item.(*types.AttributeValueMemberM).Value,
	})
	if err != nil {
		t.Fatalf("PutItem: %v", err)
	}
}

// avText spells out an attribute value with its DynamoDB types and sorted
// map keys, so two values compare as text.
func avText(av types.AttributeValue) string {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return fmt.Sprintf("S:%q", v.Value)
	case *types.AttributeValueMemberN:
		return "N:" + v.Value
	case *types.AttributeValueMemberBOOL:
		return fmt.Sprintf("BOOL:%t", v.Value)
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberSS:
		ss := slices.Clone(v.Value)
		slices.Sort(ss)
		return fmt.Sprintf("SS:%q", ss)
	case *types.AttributeValueMemberL:
		parts := make([]string, len(v.Value))
		for i, e := range v.Value {
			parts[i] = avText(e)
		}
		return "L[" + strings.Join(parts, ", ") + "]"
	case *types.AttributeValueMemberM:
		return "M{" + mapText(v.Value) + "}"
	}
	return fmt.Sprintf("%T", av)
}

func mapText(m map[string]types.AttributeValue) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + avText(m[k])
	}
	return strings.Join(parts, ", ")
}

func mustBig(s string) *big.Int {
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic("bad big int " + s)
	}
	return b
}
