package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/identity"
)

// GetByUUID finds the identity through identity_uuid-index (eventually
// consistent: a just-created identity may not be found yet), then re-reads
// its item consistently.
func (s *Store) GetByUUID(ctx context.Context, uuid string) (*identity.Identity, error) {
	if err := s.check(ctx, "get by uuid"); err != nil {
		return nil, err
	}
	notFound := fmt.Errorf("dynamo: identity_uuid %q: %w", uuid, identity.ErrNotFound)
	if uuid == "" || len(uuid) > identity.MaxIdentifierBytes {
		return nil, notFound
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 &s.opts.Tables.Identities,
		IndexName:                 aws.String(indexUUID),
		KeyConditionExpression:    aws.String("#u = :u"),
		ExpressionAttributeNames:  map[string]string{"#u": attrUUID, "#e": attrEnvKey, "#i": attrIdentifier},
		ExpressionAttributeValues: map[string]types.AttributeValue{":u": sv(uuid)},
		ProjectionExpression:      aws.String("#e, #i"),
		Limit:                     aws.Int32(1),
	})
	if err != nil {
		return nil, classify(fmt.Sprintf("querying identity_uuid %q", uuid), err)
	}
	if len(out.Items) == 0 {
		return nil, notFound
	}
	env, _ := out.Items[0][attrEnvKey].(*types.AttributeValueMemberS)
	ident, _ := out.Items[0][attrIdentifier].(*types.AttributeValueMemberS)
	if env == nil || ident == nil {
		return nil, notFound
	}
	id, _, err := s.read(ctx, env.Value, ident.Value)
	if err != nil {
		return nil, err
	}
	if id == nil || id.UUID != uuid {
		return nil, notFound // deleted, or re-created, since the index saw it
	}
	return id, nil
}

// List pages through the environment's identities with
// environment_api_key-identifier-index, or the alias index for ByAlias. It
// asks for one item more than the page, so that Next is nil exactly when
// nothing follows; Next holds the last returned item's index key, the
// LastEvaluatedKey DynamoDB would have given for the page.
func (s *Store) List(ctx context.Context, envKey string, q identity.ListQuery) (identity.Page, error) {
	if err := s.check(ctx, "list"); err != nil {
		return identity.Page{}, err
	}
	if q.Limit < 1 || q.Limit > 100 {
		return identity.Page{}, fmt.Errorf("dynamo: list: %w: limit %d outside 1–100", identity.ErrInvalid, q.Limit)
	}
	if envKey == "" || (q.Exact && q.Search == "") {
		return identity.Page{}, nil
	}
	index, sortAttr := indexIdentifier, attrIdentifier
	if q.ByAlias {
		index, sortAttr = indexAlias, attrAlias
	}
	names := map[string]string{"#e": attrEnvKey}
	values := map[string]types.AttributeValue{":e": sv(envKey)}
	cond := "#e = :e"
	switch {
	case q.Exact:
		cond += " AND #s = :s"
	case q.Search != "":
		cond += " AND begins_with(#s, :s)"
	}
	if q.Search != "" {
		names["#s"] = sortAttr
		values[":s"] = sv(q.Search)
	}
	in := &dynamodb.QueryInput{
		TableName:                 &s.opts.Tables.Identities,
		IndexName:                 aws.String(index),
		KeyConditionExpression:    aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		Limit:                     aws.Int32(int32(q.Limit + 1)),
	}
	if c := q.After; c != nil {
		if c.EnvironmentAPIKey != envKey || c.CompositeKey == "" {
			return identity.Page{}, fmt.Errorf("dynamo: list: %w: cursor from another listing", identity.ErrInvalid)
		}
		start := map[string]types.AttributeValue{attrCompositeKey: sv(c.CompositeKey), attrEnvKey: sv(c.EnvironmentAPIKey)}
		sortVal := c.Identifier
		if q.ByAlias {
			sortVal = c.DashboardAlias
		}
		if sortVal == "" {
			return identity.Page{}, fmt.Errorf("dynamo: list: %w: cursor without %s", identity.ErrInvalid, sortAttr)
		}
		start[sortAttr] = sv(sortVal)
		in.ExclusiveStartKey = start
	}
	out, err := s.db.Query(ctx, in)
	if err != nil {
		return identity.Page{}, classify("listing identities", err)
	}
	items := out.Items
	var page identity.Page
	more := out.LastEvaluatedKey != nil
	if len(items) > q.Limit {
		items, more = items[:q.Limit], true
	}
	full := items
	if q.ByAlias {
		if full, err = s.fillProjected(ctx, items); err != nil {
			return identity.Page{}, err
		}
	}
	for _, item := range full {
		id, _, err := s.decode(item)
		if err != nil {
			s.log.Warn("dynamo: unreadable identity skipped in a listing", "error", err)
			continue
		}
		page.Identities = append(page.Identities, id)
	}
	if more {
		switch {
		case len(items) > 0:
			last := items[len(items)-1]
			page.Next = &identity.Cursor{
				CompositeKey:      strAttr(last, attrCompositeKey),
				EnvironmentAPIKey: strAttr(last, attrEnvKey),
			}
			if q.ByAlias {
				page.Next.DashboardAlias = strAttr(last, attrAlias)
			} else {
				page.Next.Identifier = strAttr(last, attrIdentifier)
			}
		default:
			page.Next = cursorOf(out.LastEvaluatedKey)
		}
	}
	return page, nil
}

func strAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func cursorOf(key map[string]types.AttributeValue) *identity.Cursor {
	return &identity.Cursor{
		CompositeKey:      strAttr(key, attrCompositeKey),
		EnvironmentAPIKey: strAttr(key, attrEnvKey),
		Identifier:        strAttr(key, attrIdentifier),
		DashboardAlias:    strAttr(key, attrAlias),
	}
}

// fillProjected reads whole items for alias-index results that lack
// attributes: core's own alias index projects only identifier, so on tables
// that core created the index gives keys, not identities.
func (s *Store) fillProjected(ctx context.Context, items []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	partial := false
	for _, it := range items {
		_, hasUUID := it[attrUUID]
		_, hasTraits := it[attrTraits]
		if !hasUUID || !hasTraits {
			partial = true
			break
		}
	}
	if !partial {
		return items, nil
	}
	keys := make([]map[string]types.AttributeValue, 0, len(items))
	for _, it := range items {
		keys = append(keys, map[string]types.AttributeValue{attrCompositeKey: it[attrCompositeKey]})
	}
	got := make(map[string]map[string]types.AttributeValue, len(items))
	table := s.opts.Tables.Identities
	for attempt := 1; len(keys) > 0; attempt++ {
		chunk := keys[:min(len(keys), 100)]
		out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			table: {Keys: chunk, ConsistentRead: aws.Bool(true)},
		}})
		if err != nil {
			return nil, classify("reading listed identities", err)
		}
		for _, it := range out.Responses[table] {
			got[itemKey(it)] = it
		}
		keys = keys[len(chunk):]
		if un, ok := out.UnprocessedKeys[table]; ok && len(un.Keys) > 0 {
			if attempt >= s.opts.MaxAttempts {
				return nil, fmt.Errorf("dynamo: reading listed identities: %w: %d keys left unprocessed", identity.ErrUnavailable, len(un.Keys))
			}
			keys = append(un.Keys, keys...)
			if err := s.backoff(ctx, attempt); err != nil {
				return nil, fmt.Errorf("dynamo: reading listed identities: %w: %w", identity.ErrUnavailable, err)
			}
		}
	}
	full := make([]map[string]types.AttributeValue, 0, len(items))
	for _, it := range items {
		if f, ok := got[itemKey(it)]; ok {
			full = append(full, f)
		}
	}
	return full, nil
}

// AliasTiesUnordered declares (identitytest.AliasTiesUnordered) that alias
// listings order identities sharing an alias as the index returns them,
// not by identifier: the alias index's sort key is dashboard_alias alone.
func (s *Store) AliasTiesUnordered() {}
