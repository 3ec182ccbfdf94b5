// Package dynamo is the identity.Store on DynamoDB, in Flagsmith's own
// tables and item shapes (api.md §4), so that Fledge can serve identities
// that Flagsmith's core writes and core can read the ones Fledge writes.
//
// # Items
//
// An identity is one flagsmith_identities item keyed by composite_key, with
// the attributes core writes (environment_api_key, identifier,
// identity_uuid, created_date, django_id, identity_traits,
// identity_features, dashboard_alias when set, system_traits when set) plus
// two of Fledge's own, which core ignores when it reads and drops when it
// re-puts an item:
//
//   - fledge_version (N): bumped by every Fledge write; the condition of the
//     next write. An item without it (written by core) is version 0.
//   - fledge_float_traits (SS): the keys of traits whose value is a float
//     with an integral value. DynamoDB normalises numbers (4.0 is stored as
//     4), so without it such a float would read back as the integer 4. Only
//     Fledge writes it; an item written by core has none, and there 4.0
//     reads back as 4, as Flagsmith's own Edge API reads it.
//
// # Writes
//
// Update is a consistent GetItem, the caller's function, then an UpdateItem
// that SETs only the attributes Fledge owns, conditional on fledge_version
// being what was read; a lost race reads again and retries with jittered
// backoff, up to Options.MaxAttempts times. It never puts the whole item,
// so system_traits, which core's cohort jobs write with UpdateItem on
// system_traits.<key>, survive every Fledge write. (Core's own admin edits
// re-put the whole item unconditionally; a Fledge write that read an item
// without fledge_version can still overwrite such a put made in between.)
//
// Overrides are also kept, as core keeps them, as identity_override items in
// flagsmith_environments_v2 under the environment's id: written after the
// identity item whenever an Update changes them, deleted on Delete. That is
// where Overrides reads them. When Env.ID is empty the store writes no v2
// items and Overrides falls back to querying the environment's identities
// (environment_api_key-identifier-index, filtered on identity_features).
//
// # Reads
//
// Get is a strongly consistent GetItem. List and GetByUUID use global
// secondary indexes, which DynamoDB keeps eventually consistent: an
// identity written a moment ago may be missing from a listing or from
// GetByUUID. GetByUUID re-reads the item it finds consistently, so what it
// returns is current.
package dynamo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/internal/avjson"
)

// Attribute and index names.
const (
	attrCompositeKey   = "composite_key"
	attrEnvKey         = "environment_api_key"
	attrIdentifier     = "identifier"
	attrUUID           = "identity_uuid"
	attrCreatedDate    = "created_date"
	attrDjangoID       = "django_id"
	attrTraits         = "identity_traits"
	attrFeatures       = "identity_features"
	attrAlias          = "dashboard_alias"
	attrSystemTraits   = "system_traits"
	attrVersion        = "fledge_version"
	attrFloatTraits    = "fledge_float_traits"
	attrEnvironmentID  = "environment_id"
	attrDocumentKey    = "document_key"
	attrFeatureState   = "feature_state"
	indexIdentifier    = "environment_api_key-identifier-index"
	indexUUID          = "identity_uuid-index"
	indexAlias         = "environment_api_key-dashboard_alias-index-v2"
	indexV2EnvKey      = "environment_api_key-index"
	overrideKeyPrefix  = "identity_override:"
	batchWriteMaxItems = 25
)

// Store is an identity.Store on DynamoDB. It is safe for concurrent use.
type Store struct {
	db     *dynamodb.Client
	opts   Options
	log    *slog.Logger
	closed atomic.Bool
}

var _ identity.Store = (*Store)(nil)

// New returns a Store using client. Build the client with NewClient, or
// with dynamodb.New for full control.
func New(client *dynamodb.Client, opts Options) *Store {
	opts.withDefaults()
	return &Store{db: client, opts: opts, log: opts.Logger}
}

// Client returns the DynamoDB client the store uses.
func (s *Store) Client() *dynamodb.Client { return s.db }

// Tables returns the table names the store uses.
func (s *Store) Tables() Tables { return s.opts.Tables }

// Close marks the store closed; later calls fail with ErrUnavailable. The
// client holds no resources that need releasing.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

// check refuses calls on a closed store or with a dead context before any
// request is made.
func (s *Store) check(ctx context.Context, op string) error {
	if s.closed.Load() {
		return fmt.Errorf("dynamo: %s: %w: store closed", op, identity.ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dynamo: %s: %w: %w", op, identity.ErrUnavailable, err)
	}
	return nil
}

func keyOf(envKey, identifier string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrCompositeKey: sv(identity.CompositeKey(envKey, identifier))}
}

func sv(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func nv(i int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(i, 10)}
}

// Get returns the identity, read consistently.
func (s *Store) Get(ctx context.Context, envKey, identifier string) (*identity.Identity, error) {
	if err := s.check(ctx, "get"); err != nil {
		return nil, err
	}
	if len(identifier) > identity.MaxIdentifierBytes || identifier == "" || envKey == "" {
		return nil, fmt.Errorf("dynamo: get %q: %w", identifier, identity.ErrNotFound)
	}
	id, _, err := s.read(ctx, envKey, identifier)
	if err != nil {
		return nil, err
	}
	if id == nil {
		return nil, fmt.Errorf("dynamo: get %q: %w", identifier, identity.ErrNotFound)
	}
	return id, nil
}

// read does a consistent GetItem; a missing item is (nil, 0, nil).
func (s *Store) read(ctx context.Context, envKey, identifier string) (*identity.Identity, int64, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.opts.Tables.Identities,
		Key:            keyOf(envKey, identifier),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, 0, classify(fmt.Sprintf("reading identity %q", identifier), err)
	}
	if out.Item == nil {
		return nil, 0, nil
	}
	return s.decode(out.Item)
}

// decode reads an identity item, tolerantly, as identity.UnmarshalItem
// reads its JSON (decodeItem): what cannot be read is logged and skipped.
// It returns the item's version.
func (s *Store) decode(item map[string]types.AttributeValue) (*identity.Identity, int64, error) {
	id, version, problems, err := decodeItem(item)
	if err != nil {
		return nil, 0, err
	}
	if len(problems) > 0 {
		s.log.Warn("dynamo: unreadable parts of a stored identity skipped",
			"composite_key", itemKey(item), "problems", problems)
	}
	return id, version, nil
}

func intAsFloat(v engine.Value) float64 {
	if v.Big != nil {
		f, _ := new(big.Float).SetInt(v.Big).Float64()
		return f
	}
	return float64(v.Int)
}

// integralFloat reports whether v is a float DynamoDB would store as an
// integer.
func integralFloat(v engine.Value) bool {
	return v.Kind == engine.KindFloat && v.Float == math.Trunc(v.Float) && !math.IsInf(v.Float, 0)
}

func itemKey(item map[string]types.AttributeValue) string {
	if k, ok := item[attrCompositeKey].(*types.AttributeValueMemberS); ok {
		return k.Value
	}
	return "?"
}

// Update reads, applies fn and writes conditionally, retrying on a lost
// race (see the package documentation).
func (s *Store) Update(ctx context.Context, env identity.Env, identifier string, fn identity.UpdateFunc) (*identity.Identity, error) {
	if err := s.check(ctx, "update"); err != nil {
		return nil, err
	}
	if err := identity.ValidateIdentifier(identifier); err != nil {
		return nil, fmt.Errorf("dynamo: update: %w", err)
	}
	if env.APIKey == "" {
		return nil, fmt.Errorf("dynamo: update %q: %w: environment_api_key is empty", identifier, identity.ErrInvalid)
	}
	for attempt := 1; ; attempt++ {
		cur, version, err := s.read(ctx, env.APIKey, identifier)
		if err != nil {
			return nil, err
		}
		next, err := fn(cur.Clone())
		if errors.Is(err, identity.ErrSkip) {
			return cur, nil
		}
		if err != nil {
			return nil, err
		}
		if next == nil {
			return nil, fmt.Errorf("dynamo: update %q: %w: the update function returned no identity", identifier, identity.ErrInvalid)
		}
		s.complete(next, cur, env.APIKey, identifier)
		identity.Normalize(next)
		data, err := identity.ValidatedItem(next)
		if err != nil {
			return nil, fmt.Errorf("dynamo: update %q: %w", identifier, err)
		}
		if err := validateNumbers(next); err != nil {
			return nil, fmt.Errorf("dynamo: update %q: %w", identifier, err)
		}
		in, err := s.updateInput(next, cur, data, version)
		if err != nil {
			return nil, err
		}
		_, err = s.db.UpdateItem(ctx, in)
		if err != nil {
			var ccf *types.ConditionalCheckFailedException
			if !errors.As(err, &ccf) {
				return nil, classify(fmt.Sprintf("writing identity %q", identifier), err)
			}
			if attempt >= s.opts.MaxAttempts {
				return nil, fmt.Errorf("dynamo: update %q: %w: still conflicting after %d attempts", identifier, identity.ErrUnavailable, attempt)
			}
			if err := s.backoff(ctx, attempt); err != nil {
				return nil, fmt.Errorf("dynamo: update %q: %w: %w", identifier, identity.ErrUnavailable, err)
			}
			continue
		}
		// next is what was written (the item is not sent back: on a trait
		// write that would double what DynamoDB reads and returns).
		stored := next
		if env.ID != "" {
			var before []identity.Override
			uuid := stored.UUID
			if cur != nil {
				before, uuid = cur.Overrides, cur.UUID
			}
			if err := s.syncOverrides(ctx, env, stored, uuid, before); err != nil {
				return nil, err
			}
		}
		return stored, nil
	}
}

// complete applies identity.Complete with the store's clock.
func (s *Store) complete(next, cur *identity.Identity, envKey, identifier string) {
	identity.Complete(next, cur, envKey, identifier, s.opts.Now())
}

// updateInput builds the conditional UpdateItem that writes next, whose
// item JSON is data, over cur (nil for a new item) read at version. Only
// the attributes that changed are set: a trait write sends the traits and
// the version, not the whole identity.
func (s *Store) updateInput(next, cur *identity.Identity, data []byte, version int64) (*dynamodb.UpdateItemInput, error) {
	exists := cur != nil
	// The item's other attributes come from its JSON, converted only when
	// one of them changed: a trait write needs just the traits.
	var item map[string]types.AttributeValue
	attr := func(name string) (types.AttributeValue, bool, error) {
		if name == attrTraits {
			return traitsAV(next.Traits), true, nil
		}
		if item == nil {
			av, err := avjson.FromJSON(data)
			if err != nil {
				return nil, false, fmt.Errorf("dynamo: encoding identity %q: %w", next.Identifier, err)
			}
			item = av.(*types.AttributeValueMemberM).Value
		}
		v, ok := item[name]
		return v, ok, nil
	}
	names := map[string]string{}
	values := map[string]types.AttributeValue{}
	var set, remove []string
	n := 0
	setAttr := func(name string, v types.AttributeValue) {
		n++
		ph := "#a" + strconv.Itoa(n)
		vp := ":v" + strconv.Itoa(n)
		names[ph] = name
		values[vp] = v
		set = append(set, ph+" = "+vp)
	}
	removeAttr := func(name string) {
		n++
		ph := "#a" + strconv.Itoa(n)
		names[ph] = name
		remove = append(remove, ph)
	}
	unchanged := attributesUnchanged(next, cur)
	for _, name := range []string{attrEnvKey, attrIdentifier, attrUUID, attrCreatedDate, attrDjangoID, attrTraits, attrFeatures} {
		if unchanged[name] {
			continue
		}
		v, ok, err := attr(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			v = &types.AttributeValueMemberNULL{Value: true}
		}
		setAttr(name, v)
	}
	if !unchanged[attrAlias] {
		v, ok, err := attr(attrAlias)
		switch {
		case err != nil:
			return nil, err
		case ok:
			setAttr(attrAlias, v)
		case exists:
			removeAttr(attrAlias)
		}
	}
	floats := floatTraits(next)
	switch {
	case exists && slices.Equal(floats, floatTraits(cur)):
	case len(floats) > 0:
		setAttr(attrFloatTraits, &types.AttributeValueMemberSS{Value: floats})
	case exists:
		removeAttr(attrFloatTraits)
	}
	setAttr(attrVersion, nv(version+1))

	var cond string
	switch {
	case !exists:
		names["#ck"] = attrCompositeKey
		cond = "attribute_not_exists(#ck)"
	case version == 0:
		names["#ck"] = attrCompositeKey
		names["#ver"] = attrVersion
		cond = "attribute_exists(#ck) AND attribute_not_exists(#ver)"
	default:
		names["#ver"] = attrVersion
		values[":ver"] = nv(version)
		cond = "#ver = :ver"
	}
	var expr bytes.Buffer
	expr.WriteString("SET ")
	for i, e := range set {
		if i > 0 {
			expr.WriteString(", ")
		}
		expr.WriteString(e)
	}
	if len(remove) > 0 {
		expr.WriteString(" REMOVE ")
		for i, e := range remove {
			if i > 0 {
				expr.WriteString(", ")
			}
			expr.WriteString(e)
		}
	}
	return &dynamodb.UpdateItemInput{
		TableName:                 &s.opts.Tables.Identities,
		Key:                       keyOf(next.EnvironmentAPIKey, next.Identifier),
		UpdateExpression:          aws.String(expr.String()),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}, nil
}

// floatTraits lists the traits holding whole-number floats, which DynamoDB
// would read back as integers without the hint.
func floatTraits(id *identity.Identity) []string {
	var floats []string
	for _, t := range id.Traits {
		if integralFloat(t.Value) && !slices.Contains(floats, t.Key) {
			floats = append(floats, t.Key)
		}
	}
	return floats
}

// attributesUnchanged reports which of Fledge's attributes hold the same
// value in next as in cur (none when cur is nil: a new item is written
// whole).
func attributesUnchanged(next, cur *identity.Identity) map[string]bool {
	if cur == nil {
		return nil
	}
	same := func(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return map[string]bool{
		attrEnvKey:      true, // the key: equal by construction
		attrIdentifier:  true,
		attrUUID:        next.UUID == cur.UUID,
		attrCreatedDate: next.CreatedDate == cur.CreatedDate,
		attrDjangoID:    same(next.DjangoID, cur.DjangoID),
		attrTraits:      slices.EqualFunc(next.Traits, cur.Traits, sameTrait),
		attrFeatures:    slices.EqualFunc(next.Overrides, cur.Overrides, sameOverride),
		attrAlias:       next.DashboardAlias == cur.DashboardAlias,
	}
}

func sameTrait(a, b identity.Trait) bool {
	return a.Key == b.Key && bytes.Equal(identity.ValueJSON(a.Value), identity.ValueJSON(b.Value)) &&
		(a.Value.Kind == engine.KindFloat) == (b.Value.Kind == engine.KindFloat)
}

func sameOverride(a, b identity.Override) bool {
	return a.Feature == b.Feature && a.Enabled == b.Enabled && bytes.Equal(a.Value, b.Value) &&
		a.FeatureStateUUID == b.FeatureStateUUID && bytes.Equal(a.MultivariateValues, b.MultivariateValues) &&
		((a.DjangoID == nil) == (b.DjangoID == nil) && (a.DjangoID == nil || *a.DjangoID == *b.DjangoID))
}

// backoff sleeps before attempt+1: full jitter over an exponential ceiling.
func (s *Store) backoff(ctx context.Context, attempt int) error {
	ceil := s.opts.RetryBase << min(attempt-1, 20)
	if ceil > s.opts.RetryMax || ceil <= 0 {
		ceil = s.opts.RetryMax
	}
	d := time.Duration(rand.Int64N(int64(ceil)) + 1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Delete removes the identity and, when env.ID is set, its override items.
func (s *Store) Delete(ctx context.Context, env identity.Env, identifier string) error {
	if err := s.check(ctx, "delete"); err != nil {
		return err
	}
	if len(identifier) > identity.MaxIdentifierBytes || identifier == "" || env.APIKey == "" {
		return nil // no such identity can be stored
	}
	out, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:    &s.opts.Tables.Identities,
		Key:          keyOf(env.APIKey, identifier),
		ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return classify(fmt.Sprintf("deleting identity %q", identifier), err)
	}
	if env.ID == "" || out.Attributes == nil {
		return nil
	}
	old, _, err := s.decode(out.Attributes)
	if err != nil {
		return err
	}
	var reqs []types.WriteRequest
	for _, o := range old.Overrides {
		reqs = append(reqs, s.deleteOverrideRequest(env.ID, identity.OverrideDocumentKey(o.Feature.ID, old.UUID)))
	}
	return s.batchWrite(ctx, reqs)
}
