package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fledge-flags/fledge/identity"
)

// RESTConfig selects what NewREST reads from Core's admin API.
type RESTConfig struct {
	// BaseURL is Core's address ("https://flagsmith.example.com"); the
	// /api/v1/ prefix is added unless present.
	BaseURL string
	// Token authenticates: an organisation API key or a user token. A value
	// with a space is sent as the whole Authorization header value
	// ("Api-Key …", "Token …"); otherwise a value with a dot (the form of
	// organisation keys) is sent as "Api-Key <token>", anything else as
	// "Token <token>".
	Token string
	// ProjectID is required (features are listed per project);
	// EnvironmentKeys, when set, restricts the run to those environments.
	ProjectID       int64
	EnvironmentKeys []string
	// Concurrency bounds the requests in flight (default 8).
	Concurrency int
	// MaxRetries is how often a request failing with 429, 5xx or a network
	// error is retried (default 5), waiting RetryBase·2^n with jitter, or
	// what Retry-After says (at most a minute).
	MaxRetries int
	RetryBase  time.Duration
	// BatchSize is how many identities make a batch (default 500).
	BatchSize int
	// HTTPClient defaults to a client with a 60 s timeout.
	HTTPClient *http.Client
	// Now gives created_date for identities without traits (REST does not
	// expose it); default time.Now.
	Now func() time.Time
	// Logger receives warnings (retries, count mismatches); nil discards.
	Logger *slog.Logger
}

// REST reads identities through Core's admin REST API (migrate.md §3):
// environments (request 2), features with their multivariate options (3),
// each environment's identities (4), every identity's traits (5) and the
// environment's identity overrides in one listing (6b). Lossy in two
// fields Core does not expose: an identity's created_date is its earliest
// trait's created_date (else the migration time), and mv_fs_value_uuid is
// derived from the feature state's uuid and the value's id.
//
// Identities are listed whole per environment (ids and identifiers only),
// then read in id order, so the checkpoint works as for the database.
type REST struct {
	cfg    RESTConfig
	base   *url.URL
	auth   string
	log    *slog.Logger
	sem    chan struct{}
	desc   string
	mu     sync.Mutex
	feats  map[int64]restFeature // nil until loaded
	listed map[int64][]restIdentity
}

type restFeature struct {
	Name    string
	Type    string
	Options map[int64]restOption
}

type restOption struct {
	Key   *string
	Value json.RawMessage
}

type restIdentity struct {
	ID         int64  `json:"id"`
	Identifier string `json:"identifier"`
}

// NewREST checks the configuration; it makes no request.
func NewREST(cfg RESTConfig) (*REST, error) {
	if cfg.ProjectID == 0 {
		return nil, errors.New("rest source: a project id is required")
	}
	if cfg.Token == "" {
		return nil, errors.New("rest source: a token is required")
	}
	u, err := url.Parse(strings.TrimSpace(cfg.BaseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("rest source: %q is not an http(s) URL", cfg.BaseURL)
	}
	p := strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(p, "/api/v1") {
		p += "/api/v1"
	}
	u.Path, u.RawQuery, u.Fragment = p+"/", "", ""
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	} else if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 5
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 500 * time.Millisecond
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	auth := cfg.Token
	switch {
	case strings.Contains(auth, " "):
	case strings.Contains(auth, "."):
		auth = "Api-Key " + auth
	default:
		auth = "Token " + auth
	}
	scope := "project " + strconv.FormatInt(cfg.ProjectID, 10)
	if len(cfg.EnvironmentKeys) > 0 {
		scope += " environments " + strings.Join(cfg.EnvironmentKeys, ",")
	}
	return &REST{
		cfg: cfg, base: u, auth: auth, log: log, sem: make(chan struct{}, cfg.Concurrency),
		desc:   "rest " + u.Scheme + "://" + u.Host + u.Path + " " + scope,
		listed: map[int64][]restIdentity{},
	}, nil
}

// Describe implements Source.
func (r *REST) Describe() string { return r.desc }

// Close implements Source.
func (r *REST) Close() error {
	r.cfg.HTTPClient.CloseIdleConnections()
	return nil
}

// httpError is a non-retried (or finally failed) HTTP status.
type httpError struct {
	Status int
	URL    string
	Body   string
}

func (e *httpError) Error() string {
	msg := fmt.Sprintf("GET %s: HTTP %d", e.URL, e.Status)
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg += " (check the token and its permissions: VIEW_PROJECT, VIEW_ENVIRONMENT, VIEW_IDENTITIES)"
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

func statusOf(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// get fetches path (relative to /api/v1/) with query into v, retrying
// 429, 5xx and network errors with backoff. At most Concurrency requests
// are in flight.
func (r *REST) get(ctx context.Context, path string, q url.Values, v any) error {
	u := *r.base
	u.Path += path
	u.RawQuery = q.Encode()
	target := u.String()
	for attempt := 0; ; attempt++ {
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		body, wait, err := r.once(ctx, target)
		<-r.sem
		if err == nil {
			if err := json.Unmarshal(body, v); err != nil {
				return fmt.Errorf("GET %s: decoding the response: %w", target, err)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		st := statusOf(err)
		retry := st == 0 || st == http.StatusTooManyRequests || st >= 500
		if !retry || attempt >= r.cfg.MaxRetries {
			return err
		}
		if wait == 0 {
			wait = r.cfg.RetryBase << attempt
			wait = wait/2 + rand.N(wait/2+1)
		}
		r.log.Warn("migrate: retrying a Core API request", "url", target, "error", err, "attempt", attempt+1, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// once makes one request; wait is the server's Retry-After, if any.
func (r *REST) once(ctx context.Context, target string) (body []byte, wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", target, err)
	}
	req.Header.Set("Authorization", r.auth)
	req.Header.Set("Accept", "application/json")
	resp, err := r.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", target, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: reading the response: %w", target, err)
	}
	if resp.StatusCode == http.StatusOK {
		return body, 0, nil
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		wait = min(time.Duration(s)*time.Second, time.Minute)
	}
	snippet := string(bytes.TrimSpace(body))
	if len(snippet) > 200 {
		snippet = snippet[:200] + "…"
	}
	return nil, wait, &httpError{Status: resp.StatusCode, URL: target, Body: snippet}
}

// page is Core's paginated response shape.
type page[T any] struct {
	Count   int64           `json:"count"`
	Next    json.RawMessage `json:"next"`
	Results []T             `json:"results"`
}

func (p *page[T]) hasNext() bool {
	n := bytes.TrimSpace(p.Next)
	return len(n) > 0 && !bytes.Equal(n, []byte("null"))
}

// pages walks a paginated listing from page 1 until "next" is null or a
// page is past the end (404). The page URLs are built here, not taken from
// "next", which carries the server's idea of its own host.
func pages[T any](ctx context.Context, r *REST, path string, q url.Values, fn func(*page[T]) error) error {
	for n := 1; ; n++ {
		q.Set("page", strconv.Itoa(n))
		var p page[T]
		err := r.get(ctx, path, q, &p)
		if n > 1 && statusOf(err) == http.StatusNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(&p); err != nil {
			return err
		}
		if !p.hasNext() || len(p.Results) == 0 {
			return nil
		}
	}
}

// Environments implements Source (request 2).
func (r *REST) Environments(ctx context.Context) ([]Environment, error) {
	type env struct {
		ID     int64  `json:"id"`
		APIKey string `json:"api_key"`
		Name   string `json:"name"`
		V2     bool   `json:"use_v2_feature_versioning"`
	}
	var envs []Environment
	q := url.Values{"project": {strconv.FormatInt(r.cfg.ProjectID, 10)}}
	err := pages(ctx, r, "environments/", q, func(p *page[env]) error {
		for _, e := range p.Results {
			envs = append(envs, Environment(e))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the environments of project %d: %w", r.cfg.ProjectID, err)
	}
	slices.SortFunc(envs, func(a, b Environment) int { return cmpInt(a.ID, b.ID) })
	envs = slices.CompactFunc(envs, func(a, b Environment) bool { return a.ID == b.ID })
	if len(r.cfg.EnvironmentKeys) > 0 {
		var keep []Environment
		for _, k := range r.cfg.EnvironmentKeys {
			i := slices.IndexFunc(envs, func(e Environment) bool { return e.APIKey == k })
			if i < 0 {
				return nil, fmt.Errorf("project %d has no environment with client key %q", r.cfg.ProjectID, k)
			}
			keep = append(keep, envs[i])
		}
		slices.SortFunc(keep, func(a, b Environment) int { return cmpInt(a.ID, b.ID) })
		envs = slices.CompactFunc(keep, func(a, b Environment) bool { return a.ID == b.ID })
	}
	if len(envs) == 0 {
		return nil, fmt.Errorf("project %d has no environments", r.cfg.ProjectID)
	}
	return envs, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// features loads the project's features and multivariate options
// (request 3), once.
func (r *REST) features(ctx context.Context) (map[int64]restFeature, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.feats != nil {
		return r.feats, nil
	}
	type option struct {
		ID           int64   `json:"id"`
		Type         *string `json:"type"`
		IntegerValue *int64  `json:"integer_value"`
		StringValue  *string `json:"string_value"`
		BooleanValue *bool   `json:"boolean_value"`
		Key          *string `json:"key"`
	}
	type feature struct {
		ID      int64    `json:"id"`
		Name    string   `json:"name"`
		Type    string   `json:"type"`
		Options []option `json:"multivariate_options"`
	}
	feats := map[int64]restFeature{}
	path := "projects/" + strconv.FormatInt(r.cfg.ProjectID, 10) + "/features/"
	err := pages(ctx, r, path, url.Values{"page_size": {"999"}}, func(p *page[feature]) error {
		for _, f := range p.Results {
			rf := restFeature{Name: f.Name, Type: f.Type, Options: map[int64]restOption{}}
			for _, o := range f.Options {
				rf.Options[o.ID] = restOption{Key: o.Key, Value: valueJSON(valueColumns{
					Type: o.Type, BooleanValue: o.BooleanValue, IntegerValue: o.IntegerValue, StringValue: o.StringValue})}
			}
			feats[f.ID] = rf
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the features of project %d: %w", r.cfg.ProjectID, err)
	}
	r.feats = feats
	return feats, nil
}

// identities lists the environment's identities (request 4), sorted by id.
// Core orders this listing by created_date only and pages by offset, so
// identities sharing a timestamp can repeat or go missing across pages
// (migrate.md §4.1): it de-duplicates by id and, when the tally differs
// from "count", crawls again and merges.
func (r *REST) identities(ctx context.Context, env Environment) ([]restIdentity, error) {
	r.mu.Lock()
	if l, ok := r.listed[env.ID]; ok {
		r.mu.Unlock()
		return l, nil
	}
	r.mu.Unlock()
	seen := map[int64]string{}
	var count int64
	for crawl := 0; crawl < 3; crawl++ {
		err := pages(ctx, r, "environments/"+url.PathEscape(env.APIKey)+"/identities/", url.Values{"page_size": {"999"}},
			func(p *page[restIdentity]) error {
				count = p.Count
				for _, id := range p.Results {
					seen[id.ID] = id.Identifier
				}
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("listing the identities of environment %d: %w", env.ID, err)
		}
		if int64(len(seen)) >= count {
			break
		}
		r.log.Warn("migrate: identity listing short of its count; crawling again",
			"environment", env.APIKey, "listed", len(seen), "count", count)
	}
	if int64(len(seen)) < count {
		r.log.Warn("migrate: some identities could not be listed (the listing shifted while it was read)",
			"environment", env.APIKey, "listed", len(seen), "count", count)
	}
	l := make([]restIdentity, 0, len(seen))
	for id, identifier := range seen {
		l = append(l, restIdentity{ID: id, Identifier: identifier})
	}
	slices.SortFunc(l, func(a, b restIdentity) int { return cmpInt(a.ID, b.ID) })
	r.mu.Lock()
	r.listed[env.ID] = l
	r.mu.Unlock()
	return l, nil
}

// Count implements Source: it lists the environment's identities.
func (r *REST) Count(ctx context.Context, env Environment, after int64) (int64, error) {
	l, err := r.identities(ctx, env)
	if err != nil {
		return 0, err
	}
	i, _ := slices.BinarySearchFunc(l, after+1, func(x restIdentity, id int64) int { return cmpInt(x.ID, id) })
	return int64(len(l) - i), nil
}

type restFeatureState struct {
	ID       int64           `json:"id"`
	UUID     string          `json:"uuid"`
	Enabled  bool            `json:"enabled"`
	Feature  int64           `json:"feature"`
	Value    json.RawMessage `json:"feature_state_value"`
	Identity *struct {
		ID int64 `json:"id"`
	} `json:"identity"`
	MV []struct {
		ID         int64   `json:"id"`
		Option     int64   `json:"multivariate_feature_option"`
		Percentage float64 `json:"percentage_allocation"`
	} `json:"multivariate_feature_state_values"`
}

// overrides lists the environment's live identity overrides (request 6b)
// by identity id: the lowest feature-state id per feature, in id order.
func (r *REST) overrides(ctx context.Context, env Environment, feats map[int64]restFeature) (map[int64][]identity.Override, error) {
	byIdentity := map[int64][]restFeatureState{}
	q := url.Values{"anyIdentity": {"1"}}
	err := pages(ctx, r, "environments/"+url.PathEscape(env.APIKey)+"/featurestates/", q, func(p *page[restFeatureState]) error {
		for _, fs := range p.Results {
			if fs.Identity == nil {
				continue
			}
			byIdentity[fs.Identity.ID] = append(byIdentity[fs.Identity.ID], fs)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the identity overrides of environment %d: %w", env.ID, err)
	}
	out := make(map[int64][]identity.Override, len(byIdentity))
	for idID, states := range byIdentity {
		slices.SortFunc(states, func(a, b restFeatureState) int { return cmpInt(a.ID, b.ID) })
		states = slices.CompactFunc(states, func(a, b restFeatureState) bool { return a.ID == b.ID })
		kept := map[int64]bool{}
		for _, fs := range states {
			if kept[fs.Feature] {
				continue
			}
			f, ok := feats[fs.Feature]
			if !ok {
				r.log.Warn("migrate: identity override of an unknown feature dropped", "environment", env.APIKey,
					"identity_id", idID, "feature", fs.Feature, "feature_state", fs.ID)
				continue
			}
			kept[fs.Feature] = true
			o := identity.Override{
				Feature:          identity.FeatureRef{ID: fs.Feature, Name: f.Name, Type: f.Type},
				Enabled:          fs.Enabled,
				FeatureStateUUID: fs.UUID,
				DjangoID:         int64p(fs.ID),
			}
			if v := bytes.TrimSpace(fs.Value); len(v) > 0 && !bytes.Equal(v, []byte("null")) {
				var b bytes.Buffer
				if err := json.Compact(&b, v); err != nil {
					return nil, fmt.Errorf("feature state %d: bad feature_state_value: %w", fs.ID, err)
				}
				o.Value = b.Bytes()
			}
			mvs := make([]mvValue, 0, len(fs.MV))
			for _, mv := range fs.MV {
				opt := f.Options[mv.Option]
				mvs = append(mvs, mvValue{
					ID:                        mv.ID,
					MultivariateFeatureOption: mvOption{ID: mv.Option, Key: opt.Key, Value: opt.Value},
					MvFsValueUUID:             derivedUUID(fs.UUID + ":" + strconv.FormatInt(mv.ID, 10)),
					PercentageAllocation:      pyFloat(mv.Percentage),
				})
			}
			slices.SortFunc(mvs, func(a, b mvValue) int { return cmpInt(a.ID, b.ID) })
			mv, err := encodeMV(mvs)
			if err != nil {
				return nil, fmt.Errorf("feature state %d: %w", fs.ID, err)
			}
			o.MultivariateValues = mv
			out[idID] = append(out[idID], o)
		}
	}
	return out, nil
}

type restTrait struct {
	TraitKey     string   `json:"trait_key"`
	ValueType    *string  `json:"value_type"`
	IntegerValue *int64   `json:"integer_value"`
	StringValue  *string  `json:"string_value"`
	BooleanValue *bool    `json:"boolean_value"`
	FloatValue   *float64 `json:"float_value"`
	CreatedDate  string   `json:"created_date"`
}

// Identities implements Source.
func (r *REST) Identities(ctx context.Context, env Environment, after int64, fn func([]Record) error) error {
	defer func() {
		r.mu.Lock()
		delete(r.listed, env.ID)
		r.mu.Unlock()
	}()
	feats, err := r.features(ctx)
	if err != nil {
		return err
	}
	all, err := r.identities(ctx, env)
	if err != nil {
		return err
	}
	i, _ := slices.BinarySearchFunc(all, after+1, func(x restIdentity, id int64) int { return cmpInt(x.ID, id) })
	todo := all[i:]
	if len(todo) == 0 {
		return nil
	}
	ovs, err := r.overrides(ctx, env, feats)
	if err != nil {
		return err
	}
	for len(todo) > 0 {
		n := min(len(todo), r.cfg.BatchSize)
		batch, err := r.batch(ctx, env, todo[:n], ovs)
		if err != nil {
			return err
		}
		if err := fn(batch); err != nil {
			return err
		}
		todo = todo[n:]
	}
	return nil
}

// batch reads the traits of a batch of identities concurrently.
func (r *REST) batch(ctx context.Context, env Environment, ids []restIdentity, ovs map[int64][]identity.Override) ([]Record, error) {
	recs := make([]Record, len(ids))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for i, id := range ids {
		wg.Add(1)
		go func() { // r.get bounds the requests in flight
			defer wg.Done()
			rec, err := r.record(ctx, env, id, ovs[id.ID])
			if err != nil {
				once.Do(func() { first = err; cancel() })
				return
			}
			recs[i] = rec
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return recs, nil
}

func (r *REST) record(ctx context.Context, env Environment, id restIdentity, ovs []identity.Override) (Record, error) {
	rec := Record{ID: id.ID, Identifier: id.Identifier}
	if problem := identifierProblem(id.Identifier); problem != "" {
		rec.Skip = problem // no need to read its traits
		return rec, nil
	}
	it := &identity.Identity{
		EnvironmentAPIKey: env.APIKey,
		Identifier:        id.Identifier,
		DjangoID:          int64p(id.ID),
		Overrides:         ovs,
	}
	var earliest time.Time
	path := "environments/" + url.PathEscape(env.APIKey) + "/identities/" + strconv.FormatInt(id.ID, 10) + "/traits/"
	var traits []restTrait
	err := pages(ctx, r, path, url.Values{}, func(p *page[restTrait]) error {
		traits = append(traits, p.Results...)
		return nil
	})
	switch st := statusOf(err); {
	case err == nil:
	case st == http.StatusNotFound || st == http.StatusInternalServerError:
		// Deleted while the migration ran (Core answers 500 for a trait
		// listing of a missing identity, migrate.md §4.2).
		r.log.Warn("migrate: identity gone during the migration", "environment", env.APIKey, "identity_id", id.ID, "error", err)
		rec.Skip = ReasonGone
		return rec, nil
	default:
		return rec, fmt.Errorf("reading the traits of identity %d: %w", id.ID, err)
	}
	seen := map[string]bool{}
	for _, t := range traits {
		if seen[t.TraitKey] {
			continue // a listing that shifted between pages
		}
		seen[t.TraitKey] = true
		v, err := traitValue(traitColumns{Key: t.TraitKey, ValueType: t.ValueType, BooleanValue: t.BooleanValue,
			IntegerValue: t.IntegerValue, StringValue: t.StringValue, FloatValue: t.FloatValue})
		if err != nil {
			rec.Skip = ReasonNonFinite
			return rec, nil
		}
		it.Traits = append(it.Traits, identity.Trait{Key: t.TraitKey, Value: v})
		if c, err := time.Parse(time.RFC3339Nano, t.CreatedDate); err == nil && (earliest.IsZero() || c.Before(earliest)) {
			earliest = c
		}
	}
	if earliest.IsZero() {
		earliest = r.cfg.Now()
	}
	it.CreatedDate = isoformat(earliest.Truncate(time.Microsecond))
	rec.Identity = it
	return rec, nil
}
