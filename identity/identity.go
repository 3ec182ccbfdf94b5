// Package identity is the Edge API's stored identity: the model, in
// Flagsmith's edge data model (the flagsmith_identities item), the Store
// interface every backend implements, and the rules shared by all stores
// (limits, typing of trait values, the composite key).
//
// Data flows one way: the edge role's identify step loads an Identity from a
// Store, merges the request's traits, saves it through Store.Update, and
// hands the engine the traits and overrides to evaluate.
package identity

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/fledge-flags/fledge/engine"
)

// Limits every store enforces, so that moving from one store to another
// never turns a stored identity into one that cannot be written.
const (
	// MaxIdentifierBytes is DynamoDB's limit on a GSI sort key, which the
	// identifier is in Flagsmith's table layout (UTF-8 bytes, not characters).
	MaxIdentifierBytes = 1024
	// MaxItemBytes is DynamoDB's item size limit, measured by EncodedSize.
	MaxItemBytes = 400 * 1024
	// MaxTraitKeyChars and MaxTraitValueChars are core's validation limits
	// (characters, i.e. code points).
	MaxTraitKeyChars   = 200
	MaxTraitValueChars = 2000
	// MaxAliasChars is core's limit on dashboard_alias.
	MaxAliasChars = 100
)

// Errors returned by stores. Callers test them with errors.Is; stores wrap
// them with what was being done.
var (
	// ErrNotFound: no such identity.
	ErrNotFound = errors.New("identity not found")
	// ErrInvalid: the identity breaks a limit (identifier too long, a trait
	// key or value too long, ...). Nothing was written.
	ErrInvalid = errors.New("invalid identity")
	// ErrTooLarge: the encoded identity exceeds MaxItemBytes. Nothing was
	// written.
	ErrTooLarge = errors.New("identity larger than the 400 KB item limit")
	// ErrUnavailable: the store could not be reached or refused the call
	// (throttled, timed out, closed); the caller answers 503.
	ErrUnavailable = errors.New("identity store unavailable")
	// ErrSkip is returned by an Update function to leave the identity as it
	// is: Update then writes nothing and returns the current identity (nil
	// if none) with a nil error.
	ErrSkip = errors.New("no change")
)

// Env names the environment an identity belongs to.
type Env struct {
	// APIKey is the environment's client-side key (environment_api_key).
	APIKey string
	// ID is Flagsmith's numeric environment id as a string (the document's
	// "id"); DynamoDB keeps identity overrides under it
	// (flagsmith_environments_v2). May be empty when unknown.
	ID string
}

// Identity is a stored identity, as Flagsmith's edge stores it.
type Identity struct {
	EnvironmentAPIKey string
	Identifier        string
	// UUID is identity_uuid: random at creation, stable afterwards; the
	// admin API addresses identities by it.
	UUID string
	// CreatedDate is ISO-8601 with an offset, as Flagsmith writes it.
	CreatedDate string
	// DjangoID is core's primary key for identities migrated from core;
	// nil otherwise. With use_identity_composite_key_for_hashing off it is
	// the key percentage splits hash.
	DjangoID *int64
	// Traits in stored order; values are never KindNone (null deletes).
	Traits []Trait
	// Overrides are identity_features: at most one per feature id.
	Overrides []Override
	// DashboardAlias is lower-cased; "" means none.
	DashboardAlias string
	// SystemTraits are written by other writers (core's cohorts). Fledge
	// reads them into evaluation, where they win over traits, and never
	// writes them: a store's Update keeps the stored ones whatever the
	// function returns.
	SystemTraits []Trait
}

// Trait is one stored trait.
type Trait struct {
	Key   string
	Value engine.Value
}

// FeatureRef names a feature as Flagsmith's items do.
type FeatureRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// Override is an identity override (an identity_features entry).
type Override struct {
	Feature FeatureRef
	Enabled bool
	// Value is feature_state_value as compact JSON; nil means null.
	Value json.RawMessage
	// FeatureStateUUID is featurestate_uuid, the admin API's handle.
	FeatureStateUUID string
	DjangoID         *int64
	// MultivariateValues is multivariate_feature_state_values as stored
	// (a JSON list; nil for none). The engine ignores it for identity
	// overrides; it is kept for the dashboard.
	MultivariateValues json.RawMessage
}

// OverrideItem is one identity override with the identity it belongs to:
// the content of a flagsmith_environments_v2 identity_override item.
type OverrideItem struct {
	Identifier   string
	IdentityUUID string
	Override     Override
}

// DocumentKey is the v2 item's sort key, identity_override:{feature}:{uuid};
// override listings are ordered by it.
func (o *OverrideItem) DocumentKey() string {
	return OverrideDocumentKey(o.Override.Feature.ID, o.IdentityUUID)
}

// ListQuery selects identities of one environment for the admin list.
type ListQuery struct {
	// Search is an identifier prefix ("" lists all), or with Exact the
	// whole identifier. With ByAlias it applies to dashboard_alias instead.
	Search  string
	Exact   bool
	ByAlias bool
	// Limit is the page size, 1–100.
	Limit int
	// After continues from a previous page's Next; nil starts at the top.
	After *Cursor
}

// Cursor is where a listing stopped: the fields of DynamoDB's
// LastEvaluatedKey for the index used, which the admin API serves as
// base64 of its JSON.
type Cursor struct {
	CompositeKey      string `json:"composite_key"`
	EnvironmentAPIKey string `json:"environment_api_key"`
	Identifier        string `json:"identifier,omitempty"`
	DashboardAlias    string `json:"dashboard_alias,omitempty"`
}

// Page is one page of a listing, sorted by identifier (by alias, then
// identifier, for alias searches). Next is nil on the last page; a page may
// be short and still have a Next. Listed identities carry at least
// EnvironmentAPIKey, Identifier, UUID and DashboardAlias (what an index
// projects); a store may return them whole.
type Page struct {
	Identities []*Identity
	Next       *Cursor
}

// UpdateFunc computes the identity to write from the stored one (nil when
// there is none). It gets a private copy it may modify and return. It may
// be called more than once (on a conflict, or when a group commit is
// retried), so it must have no side effects. Returning ErrSkip writes
// nothing; any other error aborts the update and is returned.
type UpdateFunc func(cur *Identity) (*Identity, error)

// Store persists identities. Implementations are safe for concurrent use.
// Every method honours ctx; a backend failure wraps ErrUnavailable.
type Store interface {
	// Get returns the identity, or ErrNotFound. A Get that starts after an
	// Update returned sees that update (read-your-writes).
	Get(ctx context.Context, envKey, identifier string) (*Identity, error)
	// GetByUUID returns the identity with identity_uuid uuid in any
	// environment (the caller checks it belongs where it is asked for), or
	// ErrNotFound.
	GetByUUID(ctx context.Context, uuid string) (*Identity, error)
	// Update reads the identity, applies fn and writes the result
	// atomically: no other writer's change is lost in between (two
	// concurrent Updates of one identity both take effect, in some order).
	// The store fills UUID and CreatedDate when fn leaves them empty: the
	// stored ones, or for a new identity a fresh UUID and the time now.
	// The store writes fn's result under env.APIKey and identifier (it
	// sets those fields) and keeps the stored SystemTraits. The result is
	// checked with Validate before anything is written. It returns the
	// identity as stored, or, when fn returns ErrSkip, the current one (nil
	// if none) and a nil error. An acknowledged Update is durable.
	Update(ctx context.Context, env Env, identifier string, fn UpdateFunc) (*Identity, error)
	// Delete removes the identity and its overrides; deleting an absent
	// identity is not an error.
	Delete(ctx context.Context, env Env, identifier string) error
	// List pages through an environment's identities.
	List(ctx context.Context, envKey string, q ListQuery) (Page, error)
	// Overrides lists the environment's identity overrides for featureID
	// (0: every feature), ordered by DocumentKey.
	Overrides(ctx context.Context, env Env, featureID int64) ([]OverrideItem, error)
	// Close releases the store.
	Close() error
}
