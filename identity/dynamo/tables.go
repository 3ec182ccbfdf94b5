package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func keyAttr(name string, kt types.KeyType) types.KeySchemaElement {
	return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: kt}
}

func strDef(names ...string) []types.AttributeDefinition {
	defs := make([]types.AttributeDefinition, 0, len(names))
	for _, n := range names {
		defs = append(defs, types.AttributeDefinition{AttributeName: aws.String(n), AttributeType: types.ScalarAttributeTypeS})
	}
	return defs
}

func gsi(name string, keys ...types.KeySchemaElement) types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName:  aws.String(name),
		KeySchema:  keys,
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
	}
}

// tableInputs are Flagsmith's four edge tables with their indexes, all
// on-demand. Every index projects ALL (core's test fixtures project only
// identifier on the alias index; List copes with either).
func (s *Store) tableInputs() []*dynamodb.CreateTableInput {
	t := s.opts.Tables
	hash, rng := types.KeyTypeHash, types.KeyTypeRange
	return []*dynamodb.CreateTableInput{
		{
			TableName:            aws.String(t.Identities),
			AttributeDefinitions: strDef(attrCompositeKey, attrEnvKey, attrIdentifier, attrUUID, attrAlias),
			KeySchema:            []types.KeySchemaElement{keyAttr(attrCompositeKey, hash)},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
				gsi(indexIdentifier, keyAttr(attrEnvKey, hash), keyAttr(attrIdentifier, rng)),
				gsi(indexUUID, keyAttr(attrUUID, hash)),
				gsi(indexAlias, keyAttr(attrEnvKey, hash), keyAttr(attrAlias, rng)),
			},
			BillingMode: types.BillingModePayPerRequest,
		},
		{
			TableName:            aws.String(t.EnvironmentsV2),
			AttributeDefinitions: strDef(attrEnvironmentID, attrDocumentKey, attrEnvKey),
			KeySchema:            []types.KeySchemaElement{keyAttr(attrEnvironmentID, hash), keyAttr(attrDocumentKey, rng)},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
				gsi(indexV2EnvKey, keyAttr(attrEnvKey, hash)),
			},
			BillingMode: types.BillingModePayPerRequest,
		},
		{
			TableName:            aws.String(t.Environments),
			AttributeDefinitions: strDef("api_key"),
			KeySchema:            []types.KeySchemaElement{keyAttr("api_key", hash)},
			BillingMode:          types.BillingModePayPerRequest,
		},
		{
			TableName:            aws.String(t.APIKeys),
			AttributeDefinitions: strDef("key"),
			KeySchema:            []types.KeySchemaElement{keyAttr("key", hash)},
			BillingMode:          types.BillingModePayPerRequest,
		},
	}
}

// CreateTables creates every table the store's names refer to, with its
// indexes, on-demand, and waits until they are active. A table that exists
// already is left as it is (its indexes are not checked), so CreateTables
// is safe to run at every start.
func (s *Store) CreateTables(ctx context.Context) error {
	for _, in := range s.tableInputs() {
		_, err := s.db.CreateTable(ctx, in)
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return classify(fmt.Sprintf("creating table %s", *in.TableName), err)
		}
	}
	for _, in := range s.tableInputs() {
		if err := s.waitActive(ctx, *in.TableName); err != nil {
			return err
		}
	}
	return nil
}

// waitActive polls DescribeTable until the table and its indexes are
// ACTIVE.
func (s *Store) waitActive(ctx context.Context, table string) error {
	delay := 50 * time.Millisecond
	for {
		out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		var nf *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			return classify(fmt.Sprintf("describing table %s", table), err)
		}
		if err == nil && active(out.Table) {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("dynamo: waiting for table %s: %w", table, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func active(t *types.TableDescription) bool {
	if t == nil || t.TableStatus != types.TableStatusActive {
		return false
	}
	for _, g := range t.GlobalSecondaryIndexes {
		if g.IndexStatus != types.IndexStatusActive {
			return false
		}
	}
	return true
}
