package dynamo

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/internal/avjson"
)

// syncOverrides brings env's v2 identity_override items of one identity
// from before (stored under oldUUID) to stored.Overrides: puts for new or
// changed overrides, deletes for removed ones. Unchanged overrides are not
// rewritten.
func (s *Store) syncOverrides(ctx context.Context, env identity.Env, stored *identity.Identity, oldUUID string, before []identity.Override) error {
	old := make(map[string][]byte, len(before))
	for _, o := range before {
		b, err := identity.MarshalOverride(o)
		if err != nil {
			return fmt.Errorf("dynamo: encoding override of feature %d: %w", o.Feature.ID, err)
		}
		old[identity.OverrideDocumentKey(o.Feature.ID, oldUUID)] = b
	}
	var reqs []types.WriteRequest
	keep := make(map[string]bool, len(stored.Overrides))
	for _, o := range stored.Overrides {
		key := identity.OverrideDocumentKey(o.Feature.ID, stored.UUID)
		keep[key] = true
		b, err := identity.MarshalOverride(o)
		if err != nil {
			return fmt.Errorf("dynamo: encoding override of feature %d: %w", o.Feature.ID, err)
		}
		if prev, ok := old[key]; ok && bytes.Equal(prev, b) {
			continue
		}
		fs, err := avjson.FromJSON(b)
		if err != nil {
			return fmt.Errorf("dynamo: encoding override of feature %d: %w", o.Feature.ID, err)
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			attrEnvironmentID: sv(env.ID),
			attrDocumentKey:   sv(key),
			attrEnvKey:        sv(stored.EnvironmentAPIKey),
			attrIdentifier:    sv(stored.Identifier),
			attrUUID:          sv(stored.UUID),
			attrCreatedDate:   sv(identity.Now(s.opts.Now())),
			attrFeatureState:  fs,
		}}})
	}
	for key := range old {
		if !keep[key] {
			reqs = append(reqs, s.deleteOverrideRequest(env.ID, key))
		}
	}
	if err := s.batchWrite(ctx, reqs); err != nil {
		return fmt.Errorf("dynamo: identity %q saved, but not its override items: %w", stored.Identifier, err)
	}
	return nil
}

func (s *Store) deleteOverrideRequest(envID, documentKey string) types.WriteRequest {
	return types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: map[string]types.AttributeValue{
		attrEnvironmentID: sv(envID),
		attrDocumentKey:   sv(documentKey),
	}}}
}

// batchWrite writes reqs to the v2 table, 25 a call, resending what
// DynamoDB leaves unprocessed (with backoff, at most MaxAttempts rounds).
func (s *Store) batchWrite(ctx context.Context, reqs []types.WriteRequest) error {
	table := s.opts.Tables.EnvironmentsV2
	for len(reqs) > 0 {
		chunk := reqs[:min(len(reqs), batchWriteMaxItems)]
		reqs = reqs[len(chunk):]
		for attempt := 1; len(chunk) > 0; attempt++ {
			out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{table: chunk},
			})
			if err != nil {
				return classify("writing override items", err)
			}
			chunk = out.UnprocessedItems[table]
			if len(chunk) == 0 {
				break
			}
			if attempt >= s.opts.MaxAttempts {
				return fmt.Errorf("dynamo: writing override items: %w: %d left unprocessed", identity.ErrUnavailable, len(chunk))
			}
			if err := s.backoff(ctx, attempt); err != nil {
				return fmt.Errorf("dynamo: writing override items: %w: %w", identity.ErrUnavailable, err)
			}
		}
	}
	return nil
}

// Overrides lists env's identity overrides for featureID (0: all), ordered
// by document key: from the v2 table when env.ID is set, otherwise from the
// identities themselves.
func (s *Store) Overrides(ctx context.Context, env identity.Env, featureID int64) ([]identity.OverrideItem, error) {
	if err := s.check(ctx, "overrides"); err != nil {
		return nil, err
	}
	if env.ID == "" {
		return s.overridesFromIdentities(ctx, env.APIKey, featureID)
	}
	prefix := overrideKeyPrefix
	if featureID != 0 {
		prefix += strconv.FormatInt(featureID, 10) + ":"
	}
	in := &dynamodb.QueryInput{
		TableName:              &s.opts.Tables.EnvironmentsV2,
		KeyConditionExpression: aws.String("#e = :e AND begins_with(#d, :p)"),
		ExpressionAttributeNames: map[string]string{
			"#e": attrEnvironmentID, "#d": attrDocumentKey,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": sv(env.ID), ":p": sv(prefix)},
		ConsistentRead:            aws.Bool(true),
	}
	var res []identity.OverrideItem
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify("querying override items", err)
		}
		for _, item := range out.Items {
			if oi, ok := s.decodeOverrideItem(item); ok {
				res = append(res, oi)
			}
		}
	}
	return res, nil
}

func (s *Store) decodeOverrideItem(item map[string]types.AttributeValue) (identity.OverrideItem, bool) {
	key := ""
	if k, ok := item[attrDocumentKey].(*types.AttributeValueMemberS); ok {
		key = k.Value
	}
	var oi identity.OverrideItem
	if v, ok := item[attrIdentifier].(*types.AttributeValueMemberS); ok {
		oi.Identifier = v.Value
	}
	if v, ok := item[attrUUID].(*types.AttributeValueMemberS); ok {
		oi.IdentityUUID = v.Value
	}
	fs, ok := item[attrFeatureState]
	if !ok {
		s.log.Warn("dynamo: override item without feature_state skipped", "document_key", key)
		return oi, false
	}
	var err error
	if oi.Override, err = decodeOverride(fs); err != nil {
		s.log.Warn("dynamo: unreadable override item skipped", "document_key", key, "error", err)
		return oi, false
	}
	return oi, true
}

// overridesFromIdentities serves Overrides without an environment id: it
// pages through the environment's identities that have overrides.
func (s *Store) overridesFromIdentities(ctx context.Context, envKey string, featureID int64) ([]identity.OverrideItem, error) {
	if envKey == "" {
		return nil, nil
	}
	in := &dynamodb.QueryInput{
		TableName:              &s.opts.Tables.Identities,
		IndexName:              aws.String(indexIdentifier),
		KeyConditionExpression: aws.String("#e = :e"),
		FilterExpression:       aws.String("size(#f) > :zero"),
		ExpressionAttributeNames: map[string]string{
			"#e": attrEnvKey, "#f": attrFeatures,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": sv(envKey), ":zero": nv(0)},
	}
	var res []identity.OverrideItem
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify("querying identities with overrides", err)
		}
		for _, item := range out.Items {
			id, _, err := s.decode(item)
			if err != nil {
				s.log.Warn("dynamo: unreadable identity skipped", "error", err)
				continue
			}
			for _, o := range id.Overrides {
				if featureID == 0 || o.Feature.ID == featureID {
					res = append(res, identity.OverrideItem{Identifier: id.Identifier, IdentityUUID: id.UUID, Override: o})
				}
			}
		}
	}
	slices.SortFunc(res, func(a, b identity.OverrideItem) int { return strings.Compare(a.DocumentKey(), b.DocumentKey()) })
	return res, nil
}
