package dynamo_test

import (
	"context"
	"fmt"
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
	return &server{endpoint: ep, client: dynalite.Client(ep)}
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
