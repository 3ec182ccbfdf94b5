package dynamo

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/internal/avjson"
)

// systemTraitAttempts is core's bound on a system trait write's races.
const systemTraitAttempts = 3

// SetSystemTrait writes system_traits.<key> = value the way Flagsmith's
// core does (identity_wrapper.set_system_trait): a consistent read, then
//   - system_traits is a map: UpdateItem SET system_traits.#k = :v,
//     conditional on system_traits existing;
//   - no system_traits: UpdateItem SET system_traits =
//     if_not_exists(system_traits, {k: v}), conditional on the item
//     existing, and a check on the returned item that the value landed;
//
// retrying a lost race up to 3 times. It touches no other attribute. A
// KindNone value removes the key as core's unset_system_trait does. Unlike
// core, which puts a bare identity holding the trait when there is none,
// it returns identity.ErrNotFound for an absent identity (the contract of
// identitytest.SystemTraitSetter). Fledge itself never calls it: it lets
// tests play core's cohort writer.
func (s *Store) SetSystemTrait(ctx context.Context, envKey, identifier, key string, value engine.Value) error {
	if err := identity.ValidateIdentifier(identifier); err != nil {
		return fmt.Errorf("dynamo: set system trait: %w", err)
	}
	if value.Kind == engine.KindNone {
		return s.UnsetSystemTrait(ctx, envKey, identifier, key)
	}
	av, err := avjson.FromJSON(identity.ValueJSON(value))
	if err != nil {
		return fmt.Errorf("dynamo: set system trait %q: %w", key, err)
	}
	matches := func(id *identity.Identity) bool {
		if id == nil {
			return false
		}
		for _, t := range id.SystemTraits {
			if t.Key == key {
				return string(identity.ValueJSON(t.Value)) == string(identity.ValueJSON(value)) ||
					(t.Value.Kind == engine.KindInt && integralFloat(value) && intAsFloat(t.Value) == value.Float)
			}
		}
		return false
	}
	ck := identity.CompositeKey(envKey, identifier)
	for range systemTraitAttempts {
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: &s.opts.Tables.Identities, Key: keyOf(envKey, identifier), ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return classify("reading identity for a system trait", err)
		}
		var cur *identity.Identity
		if out.Item != nil {
			if cur, _, err = s.decode(out.Item); err != nil {
				return err
			}
		}
		if matches(cur) {
			return nil
		}
		_, hasMap := out.Item[attrSystemTraits].(*types.AttributeValueMemberM)
		switch {
		case out.Item == nil:
			return fmt.Errorf("dynamo: set system trait %q: %s: %w", key, ck, identity.ErrNotFound)
		case hasMap:
			_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: &s.opts.Tables.Identities, Key: keyOf(envKey, identifier),
				UpdateExpression:          aws.String("SET system_traits.#tk = :value"),
				ConditionExpression:       aws.String("attribute_exists(system_traits)"),
				ExpressionAttributeNames:  map[string]string{"#tk": key},
				ExpressionAttributeValues: map[string]types.AttributeValue{":value": av},
			})
		default:
			var uo *dynamodb.UpdateItemOutput
			uo, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: &s.opts.Tables.Identities, Key: keyOf(envKey, identifier),
				UpdateExpression:    aws.String("SET system_traits = if_not_exists(system_traits, :init)"),
				ConditionExpression: aws.String("attribute_exists(composite_key)"),
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":init": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{key: av}},
				},
				ReturnValues: types.ReturnValueAllNew,
			})
			if err == nil {
				written, _, derr := s.decode(uo.Attributes)
				if derr != nil {
					return derr
				}
				if matches(written) {
					return nil
				}
				continue
			}
		}
		var ccf *types.ConditionalCheckFailedException
		if err == nil {
			return nil
		}
		if !errors.As(err, &ccf) {
			return classify("writing a system trait", err)
		}
	}
	return fmt.Errorf("dynamo: system trait %q of %s: %w: lost the race %d times", key, ck, identity.ErrUnavailable, systemTraitAttempts)
}

// UnsetSystemTrait removes system_traits.<key> as core does: one UpdateItem
// REMOVE conditional on the trait existing; an absent trait or map is not
// an error, an absent identity is identity.ErrNotFound.
func (s *Store) UnsetSystemTrait(ctx context.Context, envKey, identifier, key string) error {
	if err := identity.ValidateIdentifier(identifier); err != nil {
		return fmt.Errorf("dynamo: unset system trait: %w", err)
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.opts.Tables.Identities, Key: keyOf(envKey, identifier),
		UpdateExpression:         aws.String("REMOVE system_traits.#tk"),
		ConditionExpression:      aws.String("attribute_exists(system_traits.#tk)"),
		ExpressionAttributeNames: map[string]string{"#tk": key},
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &ccf):
		return classify("removing a system trait", err)
	}
	id, _, err := s.read(ctx, envKey, identifier)
	if err != nil {
		return err
	}
	if id == nil {
		return fmt.Errorf("dynamo: unset system trait %q: %s: %w", key, identity.CompositeKey(envKey, identifier), identity.ErrNotFound)
	}
	return nil
}
