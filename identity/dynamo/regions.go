package dynamo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// Region is one region's store: the same tables, in a DynamoDB global
// table replicated between the regions, or, in tests, separate tables.
type Region struct {
	// Name is the AWS region (eu-west-2), as readiness and logs show it.
	Name  string
	Store *Store
}

// Defaults of RegionsOptions.
const (
	DefaultRequestTimeout = 5 * time.Second
	DefaultFailoverBudget = time.Second
	DefaultHealthInterval = 5 * time.Second
)

// RegionsOptions configure Regions.
type RegionsOptions struct {
	// RequestTimeout bounds one store call over all regions; past it the
	// call fails with identity.ErrUnavailable (the SDK answer is a 503).
	RequestTimeout time.Duration
	// FailoverBudget is how long one region may keep failing (throttled,
	// server errors, timing out) before calls move on to the next region,
	// and the node with it. It also bounds each DynamoDB request. A
	// refused connection (nothing listens, no such host) fails over at
	// once.
	FailoverBudget time.Duration
	// HealthInterval is how often every region is probed in the background
	// with a GetItem; the node goes back to the first healthy region in
	// order.
	HealthInterval time.Duration
	// Logger receives failovers and recoveries; slog.Default() when nil.
	Logger *slog.Logger
}

func (o *RegionsOptions) withDefaults() {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.FailoverBudget <= 0 {
		o.FailoverBudget = DefaultFailoverBudget
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = DefaultHealthInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Regions is an identity.Store over one Store per region, in order of
// preference (the node's own region first). Every call goes to the region
// in use: the first healthy one. A region whose requests have failed for
// the whole FailoverBudget (a refused connection at once) is marked
// unhealthy and the call, and every later one, moves to the next; a
// background probe every HealthInterval (an eventually consistent GetItem)
// marks regions healthy again, and the node returns to the first. The
// probe also notices a failing region when no call is made. A call never
// takes longer than RequestTimeout: when no region answers within it, it
// fails with identity.ErrUnavailable.
//
// Errors that say nothing about the region (not found, invalid input, an
// update function's error, a write that keeps losing races) are returned
// as they are, with no failover.
//
// Writes go to the region in use. With global tables DynamoDB replicates
// them to the other regions, last writer wins per item; without (separate
// tables per region) what is written during a failover stays in the
// region it was written to.
type Regions struct {
	regions []*regionState
	opts    RegionsOptions
	log     *slog.Logger

	active atomic.Int32
	mu     sync.Mutex // serialises changes of health and active, for ordered logs

	closed atomic.Bool
	cancel context.CancelFunc
	done   chan struct{}
}

type regionState struct {
	Region
	healthy atomic.Bool
	// since is when the region last changed health (Unix nanoseconds).
	since atomic.Int64
	// failingSince is when the region's requests began to fail (Unix
	// nanoseconds), 0 while they are answered.
	failingSince atomic.Int64
}

var _ identity.Store = (*Regions)(nil)

// NewRegions returns a store over regions (at least one) and starts
// probing them; Close stops the probes and closes every region's store.
func NewRegions(regions []Region, opts RegionsOptions) (*Regions, error) {
	if len(regions) == 0 {
		return nil, errors.New("dynamo: no regions")
	}
	opts.withDefaults()
	r := &Regions{opts: opts, log: opts.Logger, done: make(chan struct{})}
	now := time.Now().UnixNano()
	for _, reg := range regions {
		if reg.Store == nil {
			return nil, fmt.Errorf("dynamo: region %q has no store", reg.Name)
		}
		rs := &regionState{Region: reg}
		rs.Store = reg.Store.withCallTimeout(opts.FailoverBudget, rs.observe)
		rs.healthy.Store(true)
		rs.since.Store(now)
		r.regions = append(r.regions, rs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.probeLoop(ctx)
	return r, nil
}

// RegionStatus is one region's state as readiness shows it.
type RegionStatus struct {
	Region  string `json:"region"`
	Healthy bool   `json:"healthy"`
	// Since is when the region last became healthy or unhealthy.
	Since time.Time `json:"since"`
}

// RegionsStatus is the state of every region and the one in use.
type RegionsStatus struct {
	// Region is the region calls go to now.
	Region  string         `json:"region"`
	Regions []RegionStatus `json:"regions"`
}

// Status reports the region in use and every region's health.
func (r *Regions) Status() RegionsStatus {
	st := RegionsStatus{Region: r.regions[r.active.Load()].Name}
	for _, reg := range r.regions {
		st.Regions = append(st.Regions, RegionStatus{
			Region:  reg.Name,
			Healthy: reg.healthy.Load(),
			Since:   time.Unix(0, reg.since.Load()).UTC(),
		})
	}
	return st
}

// Active returns the name of the region in use.
func (r *Regions) Active() string { return r.regions[r.active.Load()].Name }

// Close stops the health probes and closes every region's store.
func (r *Regions) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.cancel()
	<-r.done
	var errs []error
	for _, reg := range r.regions {
		errs = append(errs, reg.Store.Close())
	}
	return errors.Join(errs...)
}

// order is the sequence in which a call tries the regions: the one in
// use, the other healthy ones in order of preference, then the unhealthy
// ones (a last resort, given one try each).
func (r *Regions) order() []int {
	first := int(r.active.Load())
	out := make([]int, 0, len(r.regions))
	out = append(out, first)
	for _, want := range []bool{true, false} {
		for i, reg := range r.regions {
			if i != first && reg.healthy.Load() == want {
				out = append(out, i)
			}
		}
	}
	return out
}

// do runs fn against the regions in turn until one answers (see Regions).
func (r *Regions) do(ctx context.Context, op string, fn func(ctx context.Context, s *Store) error) error {
	if r.closed.Load() {
		return fmt.Errorf("dynamo: %s: %w: store closed", op, identity.ErrUnavailable)
	}
	caller := ctx
	ctx, cancel := context.WithTimeout(ctx, r.opts.RequestTimeout)
	defer cancel()
	var last error
	for _, i := range r.order() {
		reg := r.regions[i]
		spent, err := r.attempt(ctx, reg, fn)
		if err == nil {
			if !reg.healthy.Load() {
				r.setHealth(i, true, nil)
			}
			return nil
		}
		if !regionFault(err) {
			return err
		}
		last = err
		if caller.Err() != nil {
			return err // the caller is gone: no verdict on the region
		}
		if spent && reg.healthy.Load() {
			r.setHealth(i, false, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("dynamo: %s: %w: no region answered within %v: %w", op, identity.ErrUnavailable, r.opts.RequestTimeout, last)
}

// attempt runs fn in one region, retrying region failures until the
// region has failed for the failover budget (spent reports that it has),
// or until another call gives up on the region. The region's failure
// clock (regionState.observe) runs from the start of the first DynamoDB
// request that failed and stops at any answer; each request is bounded by
// the budget (withCallTimeout), so a region that hangs fails in time, and
// a slow call that gets answers (a write retrying lost races) is no
// failure, however long it takes.
func (r *Regions) attempt(ctx context.Context, reg *regionState, fn func(ctx context.Context, s *Store) error) (spent bool, err error) {
	delay := 20 * time.Millisecond
	for {
		err = fn(ctx, reg.Store)
		if err == nil || !regionFault(err) {
			return false, err
		}
		if ctx.Err() != nil {
			return false, err // the request's time is up, not the region's budget
		}
		left := r.opts.FailoverBudget - reg.failingFor()
		if left <= 0 || !reg.healthy.Load() {
			// Spent, or given up on already by another call: do not wait
			// out the budget again.
			return true, err
		}
		t := time.NewTimer(min(delay, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return false, err
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// failingFor is how long the region's requests have been failing (0 when
// the last one was answered).
func (rs *regionState) failingFor() time.Duration {
	since := rs.failingSince.Load()
	if since == 0 {
		return 0
	}
	return time.Since(time.Unix(0, since))
}

// observe records the outcome of one DynamoDB request that started at
// start: an answer stops the failure clock, a region fault starts it, and
// a refused connection spends the budget at once (nothing listens: there
// is no answer to wait for). A request whose caller gave up says nothing
// about the region.
func (rs *regionState) observe(callerDone bool, start time.Time, err error) {
	switch {
	case err == nil || !unavailable(err):
		rs.failingSince.Store(0)
	case callerDone:
	case refused(err):
		rs.failingSince.Store(1) // the epoch: failing for longer than any budget
	default:
		rs.failingSince.CompareAndSwap(0, start.UnixNano())
	}
}

// refused reports a connection that could not be made for a reason other
// than a timeout: refused, reset while connecting, no such host.
func refused(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return !dns.IsTimeout
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" && !op.Timeout()
}

// withCallTimeout returns a store like s whose every DynamoDB operation
// (the SDK's retries included) is bounded by d, and reported to observe.
func (s *Store) withCallTimeout(d time.Duration, observe func(callerDone bool, start time.Time, err error)) *Store {
	c := dynamodb.New(s.db.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("FledgeCallTimeout",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					start := time.Now()
					cctx, cancel := context.WithTimeout(ctx, d)
					defer cancel()
					out, md, err := next.HandleInitialize(cctx, in)
					observe(ctx.Err() != nil, start, err)
					return out, md, err
				}), middleware.Before)
		})
	})
	return &Store{db: c, opts: s.opts, log: s.log}
}

// regionFault reports whether err says the region could not serve the
// call: an SDK failure classify counts as unavailable, or a timeout.
func regionFault(err error) bool { return unavailable(err) }

// setHealth records a region's health and moves the node to the first
// healthy region in order (it stays where it is when none is).
func (r *Regions) setHealth(i int, healthy bool, cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reg := r.regions[i]
	if reg.healthy.Load() != healthy {
		reg.healthy.Store(healthy)
		reg.since.Store(time.Now().UnixNano())
		if healthy {
			r.log.Info("dynamodb region healthy", "region", reg.Name)
		} else {
			attrs := []any{"region", reg.Name}
			if cause != nil {
				attrs = append(attrs, "error", cause.Error())
			}
			r.log.Warn("dynamodb region failing", attrs...)
		}
	}
	from := r.active.Load()
	to := from
	for j, reg := range r.regions {
		if reg.healthy.Load() {
			to = int32(j)
			break
		}
	}
	if to != from {
		r.active.Store(to)
		r.log.Warn("dynamodb region in use changed", "from", r.regions[from].Name, "to", r.regions[to].Name)
	}
}

// probeLoop probes every region each HealthInterval until ctx ends.
func (r *Regions) probeLoop(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.opts.HealthInterval)
	defer t.Stop()
	for {
		r.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe checks every region at once, each bounded by the failover budget.
// A region is healthy again after one answered probe.
func (r *Regions) probe(ctx context.Context) {
	var wg sync.WaitGroup
	results := make([]error, len(r.regions))
	for i, reg := range r.regions {
		wg.Go(func() {
			// The request itself is bounded by the budget (withCallTimeout);
			// the probe waits a little longer, so that a silent region
			// counts as timing out rather than as a probe given up on.
			pctx, cancel := context.WithTimeout(ctx, 2*r.opts.FailoverBudget)
			defer cancel()
			results[i] = reg.Store.Ping(pctx)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	for i, err := range results {
		reg := r.regions[i]
		switch {
		case err == nil:
			if !reg.healthy.Load() {
				r.setHealth(i, true, nil)
			}
		case !regionFault(err) || reg.failingFor() >= r.opts.FailoverBudget:
			// A refusal (no permission, no such table) at once; a
			// throttled, failing or silent region once it has failed for
			// the budget, as calls judge it.
			if reg.healthy.Load() {
				r.setHealth(i, false, err)
			}
		}
	}
}

// healthCheckKey is the composite_key Ping reads: no identity has it
// (composite keys are {environment key}_{identifier}).
const healthCheckKey = "fledge-health-check"

// Ping checks that the region serves reads of the identities table: an
// eventually consistent GetItem of a key no identity has (half a read
// unit).
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.opts.Tables.Identities,
		Key:       map[string]types.AttributeValue{attrCompositeKey: sv(healthCheckKey)},
	})
	if err != nil {
		return classify("health check of "+s.opts.Tables.Identities, err)
	}
	return nil
}

// CreateTables creates the tables in every region (see Store.CreateTables).
func (r *Regions) CreateTables(ctx context.Context) error {
	for _, reg := range r.regions {
		if err := reg.Store.CreateTables(ctx); err != nil {
			return fmt.Errorf("region %s: %w", reg.Name, err)
		}
	}
	return nil
}

// Get implements identity.Store.
func (r *Regions) Get(ctx context.Context, envKey, identifier string) (id *identity.Identity, err error) {
	err = r.do(ctx, "get", func(ctx context.Context, s *Store) error {
		id, err = s.Get(ctx, envKey, identifier)
		return err
	})
	return id, err
}

// GetByUUID implements identity.Store.
func (r *Regions) GetByUUID(ctx context.Context, uuid string) (id *identity.Identity, err error) {
	err = r.do(ctx, "get by uuid", func(ctx context.Context, s *Store) error {
		id, err = s.GetByUUID(ctx, uuid)
		return err
	})
	return id, err
}

// Update implements identity.Store. A write that fails over is read and
// written again in the next region (fn may run again, as the contract
// allows).
func (r *Regions) Update(ctx context.Context, env identity.Env, identifier string, fn identity.UpdateFunc) (id *identity.Identity, err error) {
	err = r.do(ctx, "update", func(ctx context.Context, s *Store) error {
		id, err = s.Update(ctx, env, identifier, fn)
		return err
	})
	return id, err
}

// Delete implements identity.Store.
func (r *Regions) Delete(ctx context.Context, env identity.Env, identifier string) error {
	return r.do(ctx, "delete", func(ctx context.Context, s *Store) error {
		return s.Delete(ctx, env, identifier)
	})
}

// List implements identity.Store. A cursor from one region continues in
// another, since the index keys are the same.
func (r *Regions) List(ctx context.Context, envKey string, q identity.ListQuery) (p identity.Page, err error) {
	err = r.do(ctx, "list", func(ctx context.Context, s *Store) error {
		p, err = s.List(ctx, envKey, q)
		return err
	})
	return p, err
}

// Overrides implements identity.Store.
func (r *Regions) Overrides(ctx context.Context, env identity.Env, featureID int64) (items []identity.OverrideItem, err error) {
	err = r.do(ctx, "overrides", func(ctx context.Context, s *Store) error {
		items, err = s.Overrides(ctx, env, featureID)
		return err
	})
	return items, err
}

// SetSystemTrait writes a system trait in the region in use (see
// Store.SetSystemTrait; for tests).
func (r *Regions) SetSystemTrait(ctx context.Context, envKey, identifier, key string, v engine.Value) error {
	return r.do(ctx, "set system trait", func(ctx context.Context, s *Store) error {
		return s.SetSystemTrait(ctx, envKey, identifier, key, v)
	})
}

// NumberInRange reports whether DynamoDB can hold v (see Store).
func (r *Regions) NumberInRange(v engine.Value) bool { return numberInRange(v) }

// AliasTiesUnordered: as Store.
func (r *Regions) AliasTiesUnordered() {}
