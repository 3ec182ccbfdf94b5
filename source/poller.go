// Package source brings environment documents in: it polls the Flagsmith
// API, reads documents from files (offline mode), and keeps the last good
// document of each environment on disk for warm starts. The sources also
// track how fresh the documents are (Freshness), which decides readiness.
package source

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/internal/redact"
	"github.com/fledge-flags/fledge/metrics"
	"github.com/fledge-flags/fledge/registry"
)

// DefaultMaxDocumentBytes bounds one fetched document (all pages together).
// Flagsmith pages documents at about 1 MB, so this leaves plenty of room
// while keeping a misbehaving upstream from exhausting memory.
const DefaultMaxDocumentBytes = 32 << 20

// maxPages stops a pagination loop that never ends.
const maxPages = 1000

// Poller fetches each environment's document from the Flagsmith API.
type Poller struct {
	APIURL   string // base URL, e.g. https://edge.api.flagsmith.com/api/v1
	Interval time.Duration
	Timeout  time.Duration
	Client   *http.Client
	Registry *registry.Registry
	// Freshness records every successful fetch and discovery, for
	// readiness and metrics; nil: the poller keeps one of its own.
	Freshness *Freshness
	Logger    *slog.Logger
	// Snapshots, if set, persists every new document for warm starts.
	Snapshots *SnapshotDir
	// MaxDocumentBytes defaults to DefaultMaxDocumentBytes.
	MaxDocumentBytes int64
	// OnChange is called after a new snapshot is swapped in.
	OnChange func(env *registry.Env)
	// Metrics counts polls and failures; nil records nothing.
	Metrics metrics.Recorder
	// refresh holds the environments Refresh asked for (refresh.go).
	refresh refreshQueue
	// ProxyKey, when set, is proxy-key mode (shared/spec/proxy-key.md):
	// every pass starts by discovering the environments from
	// {APIURL}/proxy/config/, and every document request carries it as
	// X-Proxy-Key.
	ProxyKey string
	// now is replaceable in tests.
	now       func() time.Time
	freshOnce sync.Once
}

// fresh is the Freshness the poller records into.
func (p *Poller) fresh() *Freshness {
	p.freshOnce.Do(func() {
		if p.Freshness == nil {
			p.Freshness = NewFreshness(p.Registry)
		}
	})
	return p.Freshness
}

// NewHTTPClient returns the client used for the upstream: it honours
// HTTP_PROXY/HTTPS_PROXY/NO_PROXY, follows redirects within the API's
// origin only (at most 10; see SameOriginRedirect) and accepts gzip.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: t, CheckRedirect: SameOriginRedirect}
}

// Run polls until ctx ends. A pass discovers the environments first (in
// proxy-key mode), then fetches each environment's document, one after
// another, as Flagsmith's edge proxies do; passes never overlap. Then the
// poller sleeps for the interval with up to 10% jitter so that a fleet of
// proxies does not poll in step.
//
// Until an environment has had its first successful fetch, or discovery
// its first success, it is retried sooner (coldRetry): after 1 s, then 2 s,
// 4 s, … up to the interval. An upstream that comes up a moment after
// Fledge then costs a second or two of readiness, not a whole poll
// interval. Environments that have a document are still fetched once per
// interval only.
func (p *Poller) Run(ctx context.Context) {
	retry := coldRetry{first: FirstRetry, max: p.Interval}
	for {
		p.PollOnce(ctx)
		nextFull := time.Now().Add(jittered(p.Interval))
		for {
			wait := time.Until(nextFull)
			if p.discoveryCold() || len(p.cold()) > 0 {
				wait = min(wait, retry.next())
			}
			if !p.sleepRefreshing(ctx, wait) {
				return
			}
			if !time.Now().Before(nextFull) {
				break
			}
			if p.discoveryCold() {
				p.discover(ctx)
			}
			p.pollEnvs(ctx, p.cold())
		}
	}
}

// discoveryCold reports whether discovery is on and has never succeeded.
func (p *Poller) discoveryCold() bool {
	return p.ProxyKey != "" && p.fresh().LastDiscovery().IsZero()
}

// FirstRetry is the first cold-start retry delay (see Run).
const FirstRetry = time.Second

// coldRetry yields the cold-start retry delays: first, doubling, capped at
// max.
type coldRetry struct {
	first, max, cur time.Duration
}

func (r *coldRetry) next() time.Duration {
	if r.cur == 0 {
		r.cur = r.first
	} else {
		r.cur *= 2
	}
	r.cur = min(r.cur, r.max)
	return jittered(r.cur)
}

// cold lists the environments never fetched successfully (a warm-start
// snapshot does not count: the upstream has not confirmed it).
func (p *Poller) cold() []*registry.Env {
	var cold []*registry.Env
	fresh := p.fresh()
	for _, env := range p.Registry.Envs() {
		if fresh.LastSuccess(env).IsZero() {
			cold = append(cold, env)
		}
	}
	return cold
}

// jittered adds up to 10% to d.
func jittered(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}

// PollOnce is one pass: discovery in proxy-key mode (a failure keeps the
// current set, whose documents are still refreshed), then every
// environment's document.
func (p *Poller) PollOnce(ctx context.Context) {
	if p.ProxyKey != "" {
		p.discover(ctx)
	}
	p.pollEnvs(ctx, p.Registry.Envs())
}

// pollEnvs fetches each of envs once, logging failures.
func (p *Poller) pollEnvs(ctx context.Context, envs []*registry.Env) {
	for _, env := range envs {
		if ctx.Err() != nil {
			return
		}
		if env.Removed() {
			continue
		}
		if err := p.fetch(ctx, env); err != nil {
			p.recordFailure(env, err)
			attrs := []any{"client_key", registry.Redact(env.ClientKey), "error", err.Error()}
			var se *statusError
			if errors.As(err, &se) && se.code == http.StatusForbidden {
				hint := "the API refused the server-side key: check that environment_key_pairs holds a valid server-side key (ser.…) of this environment and that api_url points at the right Flagsmith API"
				if !env.Static() {
					hint = "the API refused the server-side key its proxy configuration listed: it may have been revoked since; the next discovery picks up the change"
				}
				attrs = append(attrs, "hint", hint)
			}
			if s := env.Snapshot(); s != nil {
				attrs = append(attrs, "serving", "last good document", "updated_at", s.UpdatedAt)
			}
			p.logger().Warn("environment document fetch failed", attrs...)
		}
	}
}

func (p *Poller) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

func (p *Poller) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

type statusError struct {
	code int
	url  string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("GET %s: unexpected status %d %s", e.url, e.code, http.StatusText(e.code))
}

// errNotModified reports a 304.
var errNotModified = errors.New("not modified")

// fetch gets one environment's document, all pages, and swaps it in if it
// changed. On any failure the current snapshot stays.
func (p *Poller) fetch(ctx context.Context, env *registry.Env) error {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	key, ok := env.FetchKey(p.clock())
	if !ok {
		return errors.New("no valid server-side key to fetch the document with")
	}
	cur := env.Snapshot()
	fresh := p.fresh()
	first := p.APIURL + "/environment-document/"
	limit := p.maxBytes()
	var (
		pages     [][]byte
		overrides []json.RawMessage
		seen      = map[string]bool{}
		total     int64
	)
	next := first
	for next != "" {
		if seen[next] {
			return fmt.Errorf("pagination loop: %s was already fetched", redact.URL(next))
		}
		if len(pages) >= maxPages {
			return fmt.Errorf("more than %d pages", maxPages)
		}
		seen[next] = true
		var ims time.Time
		if len(pages) == 0 && cur != nil && !fresh.Warm(env) {
			ims = cur.UpdatedAt
		}
		body, link, err := p.get(ctx, next, key, ims, limit-total, limit)
		if errors.Is(err, errNotModified) {
			if len(pages) > 0 || cur == nil {
				return fmt.Errorf("GET %s: 304 Not Modified but no document is cached", redact.URL(next))
			}
			fresh.MarkFetched(env, p.clock())
			p.record(env, metrics.PollNotModified)
			return nil
		}
		if err != nil {
			return err
		}
		total += int64(len(body))
		pages = append(pages, body)
		var page struct {
			IdentityOverrides []json.RawMessage `json:"identity_overrides"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return fmt.Errorf("GET %s: invalid document: %w", redact.URL(next), err)
		}
		overrides = append(overrides, page.IdentityOverrides...)
		if link == "" {
			break
		}
		if next, err = resolveNext(next, link); err != nil {
			return err
		}
	}
	raw := pages[0]
	if len(pages) > 1 {
		var err error
		if raw, err = mergePages(pages[0], overrides); err != nil {
			return err
		}
	}
	if cur != nil && cur.SourceSum == sha256.Sum256(raw) && !fresh.Warm(env) {
		fresh.MarkFetched(env, p.clock())
		p.record(env, metrics.PollUnchanged)
		return nil
	}
	snap, err := Build(raw, p.logger(), env.ClientKey)
	if err != nil {
		return fmt.Errorf("GET %s: %w", redact.URL(first), err)
	}
	fresh.MarkFetched(env, p.clock())
	env.Store(snap)
	p.record(env, metrics.PollUpdated)
	p.logger().Info("environment document updated", "client_key", registry.Redact(env.ClientKey),
		"updated_at", snap.UpdatedAt, "bytes", len(raw), "pages", len(pages))
	if p.Snapshots != nil {
		if err := p.Snapshots.Save(env.ClientKey, snap.Document.JSON); err != nil {
			p.logger().Warn("saving warm-start snapshot failed", "client_key", registry.Redact(env.ClientKey), "error", err.Error())
		}
	}
	if p.OnChange != nil {
		p.OnChange(env)
	}
	return nil
}

// Build parses and compiles a document for the environment with
// clientKey, warning when the document names another key.
func Build(raw []byte, logger *slog.Logger, clientKey string) (*environment.Snapshot, error) {
	if logger == nil {
		logger = slog.Default()
	}
	doc, err := environment.Parse(raw)
	if err != nil {
		return nil, err
	}
	if clientKey != "" && doc.APIKey != clientKey {
		// Flagsmith's proxies serve a document under the key it was
		// configured for, whatever its api_key says (a client_side_key
		// given as the server key, a renamed key); so does Fledge, saying
		// so once per document version: Build runs once per version. The
		// document's own api_key still seeds identity hashing, as in every
		// SDK.
		logger.Warn("environment document's api_key differs from the configured client_side_key; serving it under the configured key",
			"client_key", registry.Redact(clientKey), "api_key", registry.Redact(doc.APIKey))
	}
	snap, err := environment.Compile(doc, func(msg string) {
		logger.Warn("segment rule never matches", "client_key", registry.Redact(doc.APIKey), "rule", msg)
	})
	if err != nil {
		return nil, err
	}
	if err := snap.SetDocumentJSON(raw); err != nil {
		return nil, err
	}
	return snap, nil
}

// get fetches one page, reading at most remaining bytes of a document whose
// pages may total maxTotal bytes.
func (p *Poller) get(ctx context.Context, u, key string, ims time.Time, remaining, maxTotal int64) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	// Errors name the URL without its password: api_url may carry userinfo.
	shown := redact.URL(u)
	if err != nil {
		return nil, "", fmt.Errorf("building request for %s: %w", shown, unwrapURLError(err))
	}
	req.Header.Set("X-Environment-Key", key)
	if p.ProxyKey != "" {
		// Marks the fetch as the proxy's, on every page (proxy-key.md §2.6).
		req.Header.Set("X-Proxy-Key", p.ProxyKey)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "fledge")
	if !ims.IsZero() {
		req.Header.Set("If-Modified-Since", ims.UTC().Format(http.TimeFormat))
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", timeoutError(fmt.Sprintf("GET %s: no complete answer within %s", shown, p.Timeout))
		}
		return nil, "", fmt.Errorf("GET %s: %w", shown, unwrapURLError(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		return nil, "", errNotModified
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, "", &statusError{code: resp.StatusCode, url: shown}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, remaining+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", timeoutError(fmt.Sprintf("GET %s: body not received within %s", shown, p.Timeout))
		}
		return nil, "", fmt.Errorf("GET %s: reading body: %w", shown, err)
	}
	if int64(len(body)) > remaining {
		return nil, "", fmt.Errorf("GET %s: document larger than %d bytes", shown, maxTotal)
	}
	return body, nextLink(resp.Header.Values("Link")), nil
}

func (p *Poller) maxBytes() int64 {
	if p.MaxDocumentBytes > 0 {
		return p.MaxDocumentBytes
	}
	return DefaultMaxDocumentBytes
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// nextLink finds the rel="next" target in Link headers.
func nextLink(values []string) string {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if !strings.HasPrefix(part, "<") {
				continue
			}
			end := strings.Index(part, ">")
			if end < 0 {
				continue
			}
			target, params := part[1:end], part[end+1:]
			for _, param := range strings.Split(params, ";") {
				param = strings.TrimSpace(param)
				if strings.EqualFold(param, `rel="next"`) || strings.EqualFold(param, "rel=next") {
					return target
				}
			}
		}
	}
	return ""
}

// resolveNext resolves a Link target against the current page and refuses
// to leave the upstream's origin: the server key must not go elsewhere.
func resolveNext(current, link string) (string, error) {
	base, err := url.Parse(current)
	if err != nil {
		return "", err
	}
	ref, err := url.Parse(link)
	if err != nil {
		return "", fmt.Errorf("invalid Link target %q: %w", redact.URL(link), err)
	}
	next := base.ResolveReference(ref)
	if next.Scheme != base.Scheme || next.Host != base.Host {
		return "", fmt.Errorf("pagination target %q leaves the API's origin", redact.URL(link))
	}
	return next.String(), nil
}

// mergePages puts every page's identity_overrides into the first page.
func mergePages(first []byte, overrides []json.RawMessage) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(first, &top); err != nil {
		return nil, fmt.Errorf("merging pages: %w", err)
	}
	if overrides == nil {
		overrides = []json.RawMessage{}
	}
	merged, err := json.Marshal(overrides)
	if err != nil {
		return nil, fmt.Errorf("merging pages: %w", err)
	}
	top["identity_overrides"] = merged
	return json.Marshal(top)
}
