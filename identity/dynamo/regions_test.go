package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/dynamo"
	"github.com/fledge-flags/fledge/identity/identitytest"
	"github.com/fledge-flags/fledge/internal/dynalite"
)

var (
	_ identitytest.SystemTraitSetter  = (*dynamo.Regions)(nil)
	_ identitytest.NumberRanger       = (*dynamo.Regions)(nil)
	_ identitytest.AliasTiesUnordered = (*dynamo.Regions)(nil)
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newRegions(t testing.TB, opts dynamo.RegionsOptions, regions ...dynamo.Region) *dynamo.Regions {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	r, err := dynamo.NewRegions(regions, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// deadEndpoint is a loopback address nothing listens on.
func deadEndpoint(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestContractRegions runs the identity.Store contract over Regions: with
// both regions up (every call in the first), and with the first region
// unreachable from the start (every call fails over to the second).
func TestContractRegions(t *testing.T) {
	a, b := startServer(t), startServer(t)
	// dynalite takes hundreds of milliseconds per write with 50 writers on
	// one item (DynamoDB takes milliseconds): the budget leaves it room, so
	// that no call fails over while both regions are up.
	opts := dynamo.RegionsOptions{RequestTimeout: 20 * time.Second, FailoverBudget: 5 * time.Second, HealthInterval: time.Hour}
	t.Run("BothUp", func(t *testing.T) {
		identitytest.Run(t, func(t *testing.T) identity.Store {
			return newRegions(t, opts, dynamo.Region{Name: "a", Store: a.store(t)}, dynamo.Region{Name: "b", Store: b.store(t)})
		})
	})
	t.Run("FirstDown", func(t *testing.T) {
		dead := deadEndpoint(t)
		identitytest.Run(t, func(t *testing.T) identity.Store {
			down := dynamo.New(clientFor(dead), dynamo.Options{})
			return newRegions(t, opts, dynamo.Region{Name: "a", Store: down}, dynamo.Region{Name: "b", Store: b.store(t)})
		})
	})
}

// TestRegionsFailover stops the first region's DynamoDB in the middle of
// writes and starts it again: calls move to the second region within the
// failover budget and fail none, the probe brings the node back to the
// first, and what the first region held before the outage is still there.
func TestRegionsFailover(t *testing.T) {
	first := dynalite.StartServer(t, dynalite.Options{Persist: true})
	second := dynalite.StartServer(t, dynalite.Options{})
	tables := dynamo.DefaultTables()
	storeOn := func(s *dynalite.Server) *dynamo.Store {
		st := dynamo.New(s.Client(), dynamo.Options{Tables: tables, Logger: quiet()})
		if err := st.CreateTables(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		return st
	}
	const budget = 300 * time.Millisecond
	r := newRegions(t, dynamo.RegionsOptions{RequestTimeout: 5 * time.Second, FailoverBudget: budget, HealthInterval: 100 * time.Millisecond},
		dynamo.Region{Name: "eu-west-2", Store: storeOn(first)}, dynamo.Region{Name: "us-east-1", Store: storeOn(second)})
	env := identity.Env{APIKey: "envA", ID: "1"}
	ctx := ctxT(t)
	write := func(identifier string, v int64) error {
		_, err := r.Update(ctx, env, identifier, func(cur *identity.Identity) (*identity.Identity, error) {
			if cur == nil {
				cur = &identity.Identity{}
			}
			cur.Traits = []identity.Trait{{Key: "n", Value: engine.Int(v)}}
			return cur, nil
		})
		return err
	}
	if err := write("before", 1); err != nil {
		t.Fatal(err)
	}
	if got := r.Active(); got != "eu-west-2" {
		t.Fatalf("in use at start: %s", got)
	}

	first.Stop()
	var slowest time.Duration
	for i := range 20 {
		start := time.Now()
		if err := write(fmt.Sprint("during-", i), int64(i)); err != nil {
			t.Fatalf("write %d during the outage: %v", i, err)
		}
		slowest = max(slowest, time.Since(start))
	}
	if got := r.Active(); got != "us-east-1" {
		t.Fatalf("in use during the outage: %s", got)
	}
	// One call waits out the budget in the failing region, then answers
	// from the next: allow it the budget plus a second for dynalite.
	if slowest > budget+time.Second {
		t.Errorf("slowest call during the outage took %v; budget %v", slowest, budget)
	}
	if _, err := r.Get(ctx, env.APIKey, "during-3"); err != nil {
		t.Errorf("reading back a write made during the outage: %v", err)
	}

	first.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for r.Active() != "eu-west-2" {
		if time.Now().After(deadline) {
			t.Fatalf("still in %s 10s after the first region came back: %+v", r.Active(), r.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := r.Get(ctx, env.APIKey, "before"); err != nil {
		t.Errorf("identity written before the outage, after the return: %v", err)
	}
	// Without replication (no global table here) the outage's writes stay
	// in the second region.
	if _, err := r.Get(ctx, env.APIKey, "during-3"); !errors.Is(err, identity.ErrNotFound) {
		t.Errorf("an outage write in the first region without replication: %v", err)
	}
	for _, s := range r.Status().Regions {
		if !s.Healthy {
			t.Errorf("region %s unhealthy after recovery", s.Region)
		}
	}
}

// fake is a DynamoDB endpoint whose behaviour a test switches: it answers
// every call with an empty item (GetItem: not found), throttles, fails
// with 500, or hangs until the client gives up. It counts the requests.
type fake struct {
	mode  atomic.Int32
	calls atomic.Int64
	srv   *httptest.Server
}

const (
	fakeOK = iota
	fakeThrottle
	fakeServerError
	fakeHang
	fakeMalformed
)

func newFake(t testing.TB) *fake {
	f := &fake{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		f.calls.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		switch f.mode.Load() {
		case fakeOK:
			_, _ = w.Write([]byte(`{}`))
		case fakeThrottle:
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"slow down"}`))
		case fakeServerError:
			w.WriteHeader(500)
			_, _ = w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"oops"}`))
		case fakeHang:
			<-r.Context().Done()
		case fakeMalformed:
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#ValidationException","message":"One or more parameter values were invalid"}`))
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) store() *dynamo.Store {
	return dynamo.New(clientFor(f.srv.URL), dynamo.Options{Logger: quiet()})
}

// TestRegionsFaults drives the first region into each kind of failure
// (after a healthy start, so only calls can notice) and checks where calls
// go, how long they take, and what they return.
func TestRegionsFaults(t *testing.T) {
	const budget = 200 * time.Millisecond
	const timeout = 2 * time.Second
	cases := []struct {
		name         string
		mode         int32
		wantFailover bool
		wantErr      error // from Get: ErrNotFound when a region answered
	}{
		{"throttled", fakeThrottle, true, identity.ErrNotFound},
		{"server error", fakeServerError, true, identity.ErrNotFound},
		{"hangs", fakeHang, true, identity.ErrNotFound},
		{"malformed request is no region fault", fakeMalformed, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newFake(t), newFake(t)
			r := newRegions(t, dynamo.RegionsOptions{RequestTimeout: timeout, FailoverBudget: budget, HealthInterval: time.Hour},
				dynamo.Region{Name: "a", Store: a.store()}, dynamo.Region{Name: "b", Store: b.store()})
			ctx := ctxT(t)
			waitProbed(t, a, b)
			a.mode.Store(tc.mode)
			start := time.Now()
			_, err := r.Get(ctx, "env", "u")
			took := time.Since(start)
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Get: %v; want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && (err == nil || errors.Is(err, identity.ErrUnavailable) || errors.Is(err, identity.ErrNotFound)) {
				t.Fatalf("Get: %v; want the request's own error", err)
			}
			if got := r.Active() == "b"; got != tc.wantFailover {
				t.Fatalf("in use after the call: %s (failover %t, want %t)", r.Active(), got, tc.wantFailover)
			}
			if tc.wantFailover && (took < budget || took > budget+time.Second) {
				t.Errorf("the failing-over call took %v; want the budget %v and a little", took, budget)
			}
			if !tc.wantFailover {
				return
			}
			// Later calls go straight to the second region.
			before := a.calls.Load()
			start = time.Now()
			if _, err := r.Get(ctx, "env", "u"); !errors.Is(err, identity.ErrNotFound) {
				t.Fatalf("second Get: %v", err)
			}
			if took := time.Since(start); took > budget/2 {
				t.Errorf("a call after the failover took %v", took)
			}
			if n := a.calls.Load() - before; n != 0 {
				t.Errorf("%d calls still went to the failed region", n)
			}
		})
	}
}

// waitProbed waits until the initial health probe has reached every fake.
func waitProbed(t *testing.T, fakes ...*fake) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, f := range fakes {
		for f.calls.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the regions were never probed")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestRegionsAllDown: with every region failing, a call answers
// ErrUnavailable within the request timeout, whatever the regions do.
func TestRegionsAllDown(t *testing.T) {
	for _, mode := range []int32{fakeThrottle, fakeHang} {
		t.Run(fmt.Sprint("mode", mode), func(t *testing.T) {
			a, b := newFake(t), newFake(t)
			a.mode.Store(mode)
			b.mode.Store(mode)
			const timeout = 700 * time.Millisecond
			r := newRegions(t, dynamo.RegionsOptions{RequestTimeout: timeout, FailoverBudget: 500 * time.Millisecond, HealthInterval: time.Hour},
				dynamo.Region{Name: "a", Store: a.store()}, dynamo.Region{Name: "b", Store: b.store()})
			for range 3 {
				start := time.Now()
				_, err := r.Get(ctxT(t), "env", "u")
				if !errors.Is(err, identity.ErrUnavailable) {
					t.Fatalf("Get: %v; want ErrUnavailable", err)
				}
				if took := time.Since(start); took > timeout+250*time.Millisecond {
					t.Fatalf("Get took %v; request timeout %v", took, timeout)
				}
			}
		})
	}
}

// TestRegionsCallerGone: a caller that gives up is no verdict on the
// region, and the probe brings a region back.
func TestRegionsCallerGone(t *testing.T) {
	a, b := newFake(t), newFake(t)
	r := newRegions(t, dynamo.RegionsOptions{RequestTimeout: 5 * time.Second, FailoverBudget: time.Second, HealthInterval: 50 * time.Millisecond},
		dynamo.Region{Name: "a", Store: a.store()}, dynamo.Region{Name: "b", Store: b.store()})
	waitProbed(t, a, b)
	a.mode.Store(fakeHang)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := r.Get(ctx, "env", "u"); !errors.Is(err, identity.ErrUnavailable) {
		t.Fatalf("Get with a short deadline: %v", err)
	}
	if got := r.Active(); got != "a" {
		t.Fatalf("in use after the caller gave up: %s", got)
	}
	// The probe (bounded by the budget) notices the hang and moves on...
	waitActive(t, r, "b")
	// ...and back once the region answers again.
	a.mode.Store(fakeOK)
	waitActive(t, r, "a")
}

func waitActive(t *testing.T, r *dynamo.Regions, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.Active() != want {
		if time.Now().After(deadline) {
			t.Fatalf("region in use %s; want %s: %+v", r.Active(), want, r.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRegionsClosed(t *testing.T) {
	a := newFake(t)
	r, err := dynamo.NewRegions([]dynamo.Region{{Name: "a", Store: a.store()}}, dynamo.RegionsOptions{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctxT(t), "env", "u"); !errors.Is(err, identity.ErrUnavailable) {
		t.Fatalf("Get on a closed store: %v", err)
	}
	if _, err := dynamo.NewRegions(nil, dynamo.RegionsOptions{}); err == nil {
		t.Fatal("NewRegions without regions succeeded")
	}
}
