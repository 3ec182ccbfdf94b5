package metrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/memstore"
)

type storeRecorder struct {
	Nop
	ops     []string
	written int
}

func (r *storeRecorder) StoreOp(op string, err error, _ time.Duration) {
	s := op
	if err != nil {
		s += ":error"
	}
	r.ops = append(r.ops, s)
}

func (r *storeRecorder) IdentitiesWritten(n int) { r.written += n }

func TestInstrumentStore(t *testing.T) {
	if s := memstore.New(); InstrumentStore(s, Nop{}) != identity.Store(s) {
		t.Error("with metrics off the store must not be wrapped")
	}
	raw := memstore.New()
	rec := &storeRecorder{}
	s := InstrumentStore(raw, rec)
	ctx := context.Background()
	env := identity.Env{APIKey: "env"}
	write := func(v int64) func(*identity.Identity) (*identity.Identity, error) {
		return func(cur *identity.Identity) (*identity.Identity, error) {
			if cur != nil {
				if got, _ := cur.Trait("k"); got.Int == v {
					return nil, identity.ErrSkip
				}
			} else {
				cur = &identity.Identity{}
			}
			cur.Traits = []identity.Trait{{Key: "k", Value: engine.Int(v)}}
			return cur, nil
		}
	}
	if _, err := s.Get(ctx, "env", "u"); !errors.Is(err, identity.ErrNotFound) {
		t.Fatal(err)
	}
	mustUpdate := func(v int64) {
		t.Helper()
		if _, err := s.Update(ctx, env, "u", write(v)); err != nil {
			t.Fatal(err)
		}
	}
	mustUpdate(1)
	mustUpdate(1) // unchanged: skipped, not written
	mustUpdate(2)
	raw.SetFailure(errors.New("down"))
	if _, err := s.Update(ctx, env, "u", write(3)); err == nil {
		t.Fatal("a failing store succeeded")
	}
	want := []string{"get", "put", "put", "put", "put:error"}
	if len(rec.ops) != len(want) {
		t.Fatalf("ops %q, want %q", rec.ops, want)
	}
	for i := range want {
		if rec.ops[i] != want[i] {
			t.Fatalf("ops %q, want %q (a missing identity is not a store error)", rec.ops, want)
		}
	}
	if rec.written != 2 {
		t.Errorf("identities written = %d, want 2 (the skipped update wrote nothing)", rec.written)
	}
}
