package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/fledge-flags/fledge/identity"
)

// InstrumentStore reports every call of s to rec: its kind, error and
// latency (StoreOp), and each identity an Update really wrote
// (IdentitiesWritten). With Nop it returns s itself, so metrics cost nothing
// when off.
func InstrumentStore(s identity.Store, rec Recorder) identity.Store {
	if _, off := rec.(Nop); off || rec == nil {
		return s
	}
	return &instrumented{Store: s, rec: rec}
}

type instrumented struct {
	identity.Store
	rec Recorder
}

// observed is what counts as a failure in the store's metrics: not a
// missing identity, nor a caller's own error such as a limit.
func (i *instrumented) observe(op string, start time.Time, err error) {
	if errors.Is(err, identity.ErrNotFound) || errors.Is(err, identity.ErrInvalid) || errors.Is(err, identity.ErrTooLarge) {
		err = nil
	}
	i.rec.StoreOp(op, err, time.Since(start))
}

func (i *instrumented) Get(ctx context.Context, envKey, identifier string) (*identity.Identity, error) {
	start := time.Now()
	id, err := i.Store.Get(ctx, envKey, identifier)
	i.observe(StoreGet, start, err)
	return id, err
}

func (i *instrumented) GetByUUID(ctx context.Context, uuid string) (*identity.Identity, error) {
	start := time.Now()
	id, err := i.Store.GetByUUID(ctx, uuid)
	i.observe(StoreGet, start, err)
	return id, err
}

func (i *instrumented) Update(ctx context.Context, env identity.Env, identifier string, fn identity.UpdateFunc) (*identity.Identity, error) {
	start := time.Now()
	// The function's last run decides whether anything was written (a
	// store may run it more than once).
	var skipped bool
	id, err := i.Store.Update(ctx, env, identifier, func(cur *identity.Identity) (*identity.Identity, error) {
		next, err := fn(cur)
		skipped = errors.Is(err, identity.ErrSkip)
		return next, err
	})
	i.observe(StorePut, start, err)
	if err == nil && !skipped {
		i.rec.IdentitiesWritten(1)
	}
	return id, err
}

func (i *instrumented) Delete(ctx context.Context, env identity.Env, identifier string) error {
	start := time.Now()
	err := i.Store.Delete(ctx, env, identifier)
	i.observe(StoreDelete, start, err)
	return err
}

func (i *instrumented) List(ctx context.Context, envKey string, q identity.ListQuery) (identity.Page, error) {
	start := time.Now()
	p, err := i.Store.List(ctx, envKey, q)
	i.observe(StoreQuery, start, err)
	return p, err
}

func (i *instrumented) Overrides(ctx context.Context, env identity.Env, featureID int64) ([]identity.OverrideItem, error) {
	start := time.Now()
	o, err := i.Store.Overrides(ctx, env, featureID)
	i.observe(StoreQuery, start, err)
	return o, err
}
