// Package migrate copies a self-hosted Flagsmith Core deployment's
// identities (traits and identity overrides) into Fledge's identity store,
// producing what Core's own Core→Edge migrator writes (migrate.md §1).
//
// It reads from a Source (Core's PostgreSQL database, or its admin REST
// API), environment by environment in ascending Core identity id, and
// writes through identity.Store.Update with a bounded number of concurrent
// writers. It is safe to run against production data:
//
//   - it never deletes, and never replaces what the store already holds: an
//     identity that exists keeps its identity_uuid, created_date, django_id,
//     dashboard alias, system traits, and every stored trait and override;
//     the migration only adds the source's traits whose key the identity
//     does not have and the source's overrides for features it does not
//     have (and fills a missing django_id or created_date). So writes from
//     live SDK traffic during or after the migration win over older source
//     data, and re-running writes nothing new;
//   - it is resumable: after every batch it records, per environment, the
//     highest Core identity id below which everything is written, and a
//     re-run continues from there; killed at any point and re-run, the
//     store ends up as after an uninterrupted run.
package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// Options configure Run.
type Options struct {
	// Source is where identities are read (NewPostgres, NewREST). Run does
	// not close it.
	Source Source
	// Store receives the identities. Required unless DryRun; with DryRun a
	// non-nil Store is read (never written) so the report says what a real
	// run would change.
	Store identity.Store
	// DryRun reads and maps everything and reports, writing nothing (no
	// store writes, no checkpoint).
	DryRun bool
	// CheckpointPath is the checkpoint file ("" keeps no checkpoint, so an
	// interrupted run starts over; that is still correct, only slower).
	CheckpointPath string
	// Restart ignores an existing checkpoint and migrates everything again
	// (which still never replaces stored data).
	Restart bool
	// Workers is how many identities are written concurrently (default
	// 128: the bolt store commits concurrent writes together, so more
	// writers mean fewer fsyncs).
	Workers int
	// Progress receives the progress bar when it is a terminal; otherwise
	// progress is logged every LogEvery (default 5s) to Logger.
	Progress io.Writer
	LogEvery time.Duration
	// Logger receives warnings (skipped identities) and progress lines;
	// nil discards them.
	Logger *slog.Logger
	// MaxSkipList caps Report.Skipped (default 1000); SkippedByReason
	// counts them all.
	MaxSkipList int
}

// Report is the outcome of a run. With DryRun the counts say what would
// have been written.
type Report struct {
	DryRun       bool
	Source       string
	Environments int
	// Read counts identities read from the source (skipped ones included).
	Read int64
	// Created: identities that were not in the store. Updated: identities
	// that were and got something added. Unchanged: identities the store
	// already had everything of.
	Created, Updated, Unchanged int64
	// Traits and Overrides count what was written from the source.
	Traits, Overrides int64
	// TraitsKept and OverridesKept count source traits (same key) and
	// overrides (same feature) not written because the store's differ and
	// the store wins.
	TraitsKept, OverridesKept int64
	// Skipped lists identities not migrated (capped by MaxSkipList);
	// SkippedByReason counts every one.
	Skipped         []Skip
	SkippedByReason map[string]int64
	Duration        time.Duration
}

// Skip is an identity that was not migrated.
type Skip struct {
	Environment string // client key
	ID          int64  // Core identity id
	Identifier  string // truncated to 100 bytes
	Reason      string
}

// Skip reasons.
const (
	ReasonTooLongChars = "identifier too long (over 1024 characters)"
	ReasonTooLongBytes = "identifier over 1024 UTF-8 bytes"
	ReasonInvalid      = "rejected by the store"
	ReasonNonFinite    = "non-finite float trait value"
	ReasonGone         = "identity gone from the source during the migration"
)

const (
	defaultWorkers     = 128
	defaultLogEvery    = 5 * time.Second
	defaultMaxSkipList = 1000
	maxIdentifierChars = 1024
)

// Run migrates every environment of opts.Source into opts.Store. On error
// (including a cancelled ctx) the report covers what was done so far, the
// checkpoint records it, and a re-run resumes.
func Run(ctx context.Context, opts Options) (Report, error) {
	start := time.Now()
	m, err := newMigrator(opts)
	if err != nil {
		return Report{}, err
	}
	err = m.run(ctx)
	m.rep.Duration = time.Since(start)
	return m.rep, err
}

type migrator struct {
	opts Options
	log  *slog.Logger
	cp   *checkpoint
	prog *progress

	mu  sync.Mutex // guards rep
	rep Report
}

func newMigrator(opts Options) (*migrator, error) {
	if opts.Source == nil {
		return nil, errors.New("migrate: no source")
	}
	if opts.Store == nil && !opts.DryRun {
		return nil, errors.New("migrate: no store (only a dry run may go without)")
	}
	if opts.Workers <= 0 {
		opts.Workers = defaultWorkers
	}
	if opts.LogEvery == 0 {
		opts.LogEvery = defaultLogEvery
	}
	if opts.MaxSkipList <= 0 {
		opts.MaxSkipList = defaultMaxSkipList
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	desc := opts.Source.Describe()
	cp, err := loadCheckpoint(opts.CheckpointPath, desc, opts.Restart)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if opts.DryRun {
		cp.path = "" // a dry run starts where a real run would resume, and saves nothing
	}
	return &migrator{
		opts: opts, log: log, cp: cp,
		rep: Report{DryRun: opts.DryRun, Source: desc, SkippedByReason: map[string]int64{}},
	}, nil
}

func (m *migrator) run(ctx context.Context) error {
	envs, err := m.opts.Source.Environments(ctx)
	if err != nil {
		return fmt.Errorf("migrate: listing environments: %w", err)
	}
	m.rep.Environments = len(envs)
	var total int64
	for _, env := range envs {
		n, err := m.opts.Source.Count(ctx, env, m.cp.get(env.APIKey).LastID)
		if err != nil {
			return fmt.Errorf("migrate: counting identities of environment %d: %w", env.ID, err)
		}
		if n < 0 {
			total = -1
			break
		}
		total += n
	}
	m.log.Info("migrate: starting", "source", m.rep.Source, "environments", len(envs), "identities", total, "dry_run", m.opts.DryRun)
	m.prog = newProgress(ctx, m.opts.Progress, m.log, m.opts.LogEvery, total, m.opts.DryRun)
	ok := false
	defer func() { m.prog.finish(ok) }()
	for _, env := range envs {
		if err := m.environment(ctx, env); err != nil {
			return err
		}
	}
	ok = true
	m.log.Info("migrate: finished", "identities_read", m.rep.Read, "created", m.rep.Created,
		"updated", m.rep.Updated, "unchanged", m.rep.Unchanged, "skipped", len(m.rep.Skipped))
	return nil
}

// environment migrates one environment: a reader goroutine streams batches
// (one batch read ahead) while a bounded pool writes the current batch; the
// checkpoint advances when a whole batch is written.
func (m *migrator) environment(ctx context.Context, env Environment) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	after := m.cp.get(env.APIKey).LastID
	batches := make(chan []Record, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		readErr <- m.opts.Source.Identities(ctx, env, after, func(b []Record) error {
			select {
			case batches <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var werr error
	for b := range batches {
		if werr != nil {
			continue // drain so the reader can stop
		}
		if werr = m.batch(ctx, env, b); werr != nil {
			cancel()
			continue
		}
		if len(b) > 0 {
			after = b[len(b)-1].ID
			if err := m.cp.set(env.APIKey, checkpointEntry{LastID: after}); err != nil {
				werr = err
				cancel()
			}
		}
	}
	rerr := <-readErr
	if werr != nil {
		return fmt.Errorf("migrate: environment %d: %w", env.ID, werr)
	}
	if rerr != nil {
		return fmt.Errorf("migrate: reading environment %d: %w", env.ID, rerr)
	}
	if err := m.cp.set(env.APIKey, checkpointEntry{LastID: after, Done: true}); err != nil {
		return fmt.Errorf("migrate: environment %d: %w", env.ID, err)
	}
	return nil
}

// batch writes one batch with at most Workers concurrent writes and
// returns the first error.
func (m *migrator) batch(ctx context.Context, env Environment, b []Record) error {
	sem := make(chan struct{}, m.opts.Workers)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for i := range b {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			if first != nil {
				return first
			}
			return ctx.Err()
		}
		wg.Add(1)
		go func(r *Record) {
			defer func() { <-sem; wg.Done() }()
			if err := m.one(ctx, env, r); err != nil {
				once.Do(func() { first = err })
			}
		}(&b[i])
	}
	wg.Wait()
	return first
}

// outcome of one identity.
type outcome struct {
	created, changed          bool
	traits, overrides         int64
	traitsKept, overridesKept int64
}

func (m *migrator) one(ctx context.Context, env Environment, r *Record) error {
	if r.Skip == "" {
		r.Skip = identifierProblem(r.Identifier)
	}
	if r.Skip != "" {
		m.skip(env, r, r.Skip, "")
		return nil
	}
	src := r.Identity
	var out outcome
	if m.opts.DryRun {
		var cur *identity.Identity
		if m.opts.Store != nil {
			c, err := m.opts.Store.Get(ctx, env.APIKey, src.Identifier)
			switch {
			case errors.Is(err, identity.ErrNotFound):
			case ctx.Err() != nil:
				return fmt.Errorf("reading identity %d: %w", r.ID, context.Cause(ctx))
			case err != nil:
				return fmt.Errorf("reading identity %d: %w", r.ID, err)
			default:
				cur = c
			}
		}
		res, o := merge(cur, src)
		if res != nil {
			if err := identity.Validate(res); err != nil {
				m.skip(env, r, ReasonInvalid, err.Error())
				return nil
			}
		}
		m.record(o)
		return nil
	}
	// A read first: on a re-run most identities are unchanged, and a read
	// is much cheaper than a write transaction. Update decides again on
	// what it reads itself.
	if cur, err := m.opts.Store.Get(ctx, env.APIKey, src.Identifier); err == nil {
		if res, o := merge(cur, src); res == nil {
			m.record(o)
			return nil
		}
	}
	fn := func(cur *identity.Identity) (*identity.Identity, error) {
		res, o := merge(cur, src)
		out = o // the last call is the one that was written
		if res == nil {
			return nil, identity.ErrSkip
		}
		return res, nil
	}
	ienv := identity.Env{APIKey: env.APIKey, ID: strconv.FormatInt(env.ID, 10)}
	_, err := m.opts.Store.Update(ctx, ienv, src.Identifier, fn)
	switch {
	case err == nil, errors.Is(err, identity.ErrSkip):
	case errors.Is(err, identity.ErrInvalid), errors.Is(err, identity.ErrTooLarge):
		m.skip(env, r, ReasonInvalid, err.Error())
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("writing identity %d: %w", r.ID, context.Cause(ctx))
	default:
		return fmt.Errorf("writing identity %d: %w", r.ID, err)
	}
	m.record(out)
	return nil
}

// identifierProblem applies Core's skip rule (over 1024 code points) and
// the store's limit (1024 UTF-8 bytes, DynamoDB's for the identifier index).
func identifierProblem(s string) string {
	switch {
	case utf8.RuneCountInString(s) > maxIdentifierChars:
		return ReasonTooLongChars
	case len(s) > identity.MaxIdentifierBytes:
		return ReasonTooLongBytes
	case s == "":
		return "empty identifier"
	case !utf8.ValidString(s):
		return "identifier is not valid UTF-8"
	}
	return ""
}

func (m *migrator) record(o outcome) {
	m.mu.Lock()
	m.rep.Read++
	switch {
	case o.created:
		m.rep.Created++
	case o.changed:
		m.rep.Updated++
	default:
		m.rep.Unchanged++
	}
	m.rep.Traits += o.traits
	m.rep.Overrides += o.overrides
	m.rep.TraitsKept += o.traitsKept
	m.rep.OverridesKept += o.overridesKept
	m.mu.Unlock()
	m.prog.add(1)
}

func (m *migrator) skip(env Environment, r *Record, reason, detail string) {
	id := r.Identifier
	if len(id) > 100 {
		id = id[:100] // bytes: a cut rune is fine for a report
	}
	full := reason
	if detail != "" {
		full += ": " + detail
	}
	m.log.Warn("migrate: identity skipped", "environment", env.APIKey, "identity_id", r.ID, "identifier", id, "reason", full)
	m.mu.Lock()
	m.rep.Read++
	m.rep.SkippedByReason[reason]++
	if len(m.rep.Skipped) < m.opts.MaxSkipList {
		m.rep.Skipped = append(m.rep.Skipped, Skip{Environment: env.APIKey, ID: r.ID, Identifier: id, Reason: full})
	}
	m.mu.Unlock()
	m.prog.add(1)
}

// merge computes what to store for a source identity given the stored one
// (nil when absent). The store wins: nothing stored is replaced or removed;
// source traits with a key the identity lacks, and source overrides for a
// feature it lacks, are added; a missing django_id or created_date is
// filled. It returns nil when there is nothing to write.
func merge(cur, src *identity.Identity) (*identity.Identity, outcome) {
	if cur == nil {
		out := src.Clone()
		out.UUID = identity.NewUUID()
		return out, outcome{created: true, changed: true,
			traits: int64(len(out.Traits)), overrides: int64(len(out.Overrides))}
	}
	var o outcome
	out := cur.Clone()
	if out.DjangoID == nil && src.DjangoID != nil {
		out.DjangoID = int64p(*src.DjangoID)
		o.changed = true
	}
	if out.CreatedDate == "" && src.CreatedDate != "" {
		out.CreatedDate = src.CreatedDate
		o.changed = true
	}
	if out.UUID == "" {
		out.UUID = identity.NewUUID()
		o.changed = true
	}
	have := make(map[string]int, len(out.Traits))
	for i, t := range out.Traits {
		have[t.Key] = i
	}
	for _, t := range src.Traits {
		if i, ok := have[t.Key]; ok {
			if !sameValue(out.Traits[i].Value, t.Value) {
				o.traitsKept++
			}
			continue
		}
		out.Traits = append(out.Traits, t)
		have[t.Key] = len(out.Traits) - 1
		o.traits++
	}
	feats := make(map[int64]int, len(out.Overrides))
	for i, ov := range out.Overrides {
		feats[ov.Feature.ID] = i
	}
	for _, ov := range src.Overrides {
		if i, ok := feats[ov.Feature.ID]; ok {
			if !sameOverride(out.Overrides[i], ov) {
				o.overridesKept++
			}
			continue
		}
		out.Overrides = append(out.Overrides, ov)
		feats[ov.Feature.ID] = len(out.Overrides) - 1
		o.overrides++
	}
	if o.traits > 0 || o.overrides > 0 {
		o.changed = true
	}
	if !o.changed {
		return nil, o
	}
	return out, o
}

func sameValue(a, b engine.Value) bool {
	return string(identity.ValueJSON(a)) == string(identity.ValueJSON(b))
}

// sameOverride compares overrides as JSON values, not bytes: a store may
// keep its objects' keys in another order, or 30.0 as 30 (DynamoDB).
func sameOverride(a, b identity.Override) bool {
	x, errA := identity.MarshalOverride(a)
	y, errB := identity.MarshalOverride(b)
	if errA != nil || errB != nil {
		return false
	}
	if string(x) == string(y) {
		return true
	}
	var vx, vy any
	return json.Unmarshal(x, &vx) == nil && json.Unmarshal(y, &vy) == nil && reflect.DeepEqual(vx, vy)
}
