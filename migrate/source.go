package migrate

import (
	"context"

	"github.com/fledge-flags/fledge/identity"
)

// Source reads a Core deployment's identities. Two implementations:
// Postgres (Core's database; faithful) and REST (Core's admin API; no
// identity created_date and no mv_fs_value_uuid, see migrate.md §3.3).
type Source interface {
	// Describe names what is read (no secrets); the checkpoint records it
	// so that a checkpoint is never applied to another source.
	Describe() string
	// Environments lists the environments in scope, in id order.
	Environments(ctx context.Context) ([]Environment, error)
	// Count estimates how many identities of env have an id above after
	// (for progress); -1 when unknown.
	Count(ctx context.Context, env Environment, after int64) (int64, error)
	// Identities streams env's identities with a Core id above after, in
	// ascending id, in batches. fn owns each batch; an error from fn stops
	// the stream and is returned.
	Identities(ctx context.Context, env Environment, after int64, fn func([]Record) error) error
	// Close releases the source.
	Close() error
}

// Environment is a Core environment in scope.
type Environment struct {
	ID     int64
	APIKey string // the client-side key
	Name   string
	// V2 is use_v2_feature_versioning.
	V2 bool
}

// Record is one Core identity, mapped to the stored model.
type Record struct {
	// ID is Core's identity primary key (the checkpoint position).
	ID int64
	// Identity is the item Core's migrator would write, without
	// identity_uuid. Nil when Skip is set.
	Identity *identity.Identity
	// Skip, when set, says why the identity cannot be migrated.
	Skip string
	// Identifier is the identifier, also for skipped records.
	Identifier string
}
