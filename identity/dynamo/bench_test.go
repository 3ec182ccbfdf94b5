package dynamo_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// BenchmarkStore compares the store's Get and Update with the bare
// DynamoDB calls underneath them on the same dynalite: a consistent
// GetItem, and an UpdateItem that sets identity_traits. The difference is
// the store's own cost (encoding, decoding, the read in Update); the
// absolute figures are dynalite's, not DynamoDB's.
func BenchmarkStore(b *testing.B) {
	srv := startServer(b)
	st := srv.store(b)
	ctx := ctxT(b)
	env := identity.Env{APIKey: "envBench", ID: "1"}
	seed := &identity.Identity{}
	for i := range 10 {
		seed.Traits = append(seed.Traits, identity.Trait{Key: fmt.Sprint("trait_", i), Value: engine.String("value")})
	}
	seed.Traits = append(seed.Traits, identity.Trait{Key: "age", Value: engine.Int(42)}, identity.Trait{Key: "score", Value: engine.Float(0.5)})
	for i := range 2 {
		seed.Overrides = append(seed.Overrides, identity.Override{
			Feature: identity.FeatureRef{ID: int64(i + 1), Name: fmt.Sprint("f", i), Type: "STANDARD"},
			Enabled: true, Value: json.RawMessage(`"on"`), FeatureStateUUID: identity.NewUUID(),
		})
	}
	if _, err := st.Update(ctx, env, "bench", func(*identity.Identity) (*identity.Identity, error) { return seed.Clone(), nil }); err != nil {
		b.Fatal(err)
	}
	table := aws.String(st.Tables().Identities)
	key := map[string]types.AttributeValue{"composite_key": S("envBench_bench")}

	b.Run("Get/store", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.Get(ctx, env.APIKey, "bench"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get/bare", func(b *testing.B) {
		for b.Loop() {
			out, err := st.Client().GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: key, ConsistentRead: aws.Bool(true)})
			if err != nil || out.Item == nil {
				b.Fatal(err)
			}
		}
	})
	n := 0
	b.Run("Update/store", func(b *testing.B) {
		for b.Loop() {
			n++
			_, err := st.Update(ctx, env, "bench", func(cur *identity.Identity) (*identity.Identity, error) {
				cur.Traits[0].Value = engine.Int(int64(n))
				return cur, nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Update/bare", func(b *testing.B) {
		traits := func(n int) types.AttributeValue {
			l := []types.AttributeValue{M("trait_key", S("trait_0"), "trait_value", N(fmt.Sprint(n)))}
			for _, t := range seed.Traits[1:] {
				l = append(l, M("trait_key", S(t.Key), "trait_value", S(string(identity.ValueJSON(t.Value)))))
			}
			return L(l...)
		}
		for b.Loop() {
			n++
			_, err := st.Client().UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: table, Key: key,
				UpdateExpression:          aws.String("SET identity_traits = :t"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":t": traits(n)},
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
