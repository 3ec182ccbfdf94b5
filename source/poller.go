// Package source brings environment documents in: it polls the Flagsmith
// API, reads documents from files (offline mode), and keeps the last good
// document of each environment on disk for warm starts.
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
	"time"

	"github.com/fledge-flags/fledge/environment"
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
	Logger   *slog.Logger
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
	// now is replaceable in tests.
	now func() time.Time
}

// NewHTTPClient returns the client used for the upstream: it honours
// HTTP_PROXY/HTTPS_PROXY/NO_PROXY, follows redirects (at most 10) and
// accepts gzip.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: t}
}

// Run polls until ctx ends. Environments are fetched one after another, as
// the Flagsmith edge proxy does, then the poller sleeps for the interval
// with up to 10% jitter so that a fleet of proxies does not poll in step.
func (p *Poller) Run(ctx context.Context) {
	for {
		p.PollOnce(ctx)
		jitter := time.Duration(rand.Int64N(int64(p.Interval)/10 + 1))
		t := time.NewTimer(p.Interval + jitter)
		if !p.waitRefreshing(ctx, t) {
			return
		}
	}
}

// PollOnce fetches every environment once.
func (p *Poller) PollOnce(ctx context.Context) {
	for _, env := range p.Registry.Envs() {
		if ctx.Err() != nil {
			return
		}
		p.poll(ctx, env)
	}
}

// poll fetches one environment, logging and counting a failure.
func (p *Poller) poll(ctx context.Context, env *registry.Env) {
	if err := p.fetch(ctx, env); err != nil {
		p.recordFailure(env, err)
		attrs := []any{"client_key", registry.Redact(env.ClientKey), "error", err.Error()}
		var se *statusError
		if errors.As(err, &se) && se.code == http.StatusForbidden {
			attrs = append(attrs, "hint", "the API refused the server-side key: check that environment_key_pairs holds a valid server-side key (ser.…) of this environment and that api_url points at the right Flagsmith API")
		}
		if s := env.Snapshot(); s != nil {
			attrs = append(attrs, "serving", "last good document", "updated_at", s.UpdatedAt)
		}
		p.logger().Warn("environment document fetch failed", attrs...)
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
	cur := env.Snapshot()
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
			return fmt.Errorf("pagination loop: %s was already fetched", next)
		}
		if len(pages) >= maxPages {
			return fmt.Errorf("more than %d pages", maxPages)
		}
		seen[next] = true
		var ims time.Time
		if len(pages) == 0 && cur != nil && !env.Warm() {
			ims = cur.UpdatedAt
		}
		body, link, err := p.get(ctx, next, env.ServerKey, ims, limit-total, limit)
		if errors.Is(err, errNotModified) {
			if len(pages) > 0 || cur == nil {
				return fmt.Errorf("GET %s: 304 Not Modified but no document is cached", next)
			}
			env.MarkFetched(p.clock())
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
			return fmt.Errorf("GET %s: invalid document: %w", next, err)
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
	if cur != nil && cur.SourceSum == sha256.Sum256(raw) && !env.Warm() {
		env.MarkFetched(p.clock())
		p.record(env, metrics.PollUnchanged)
		return nil
	}
	snap, err := Build(raw, p.logger(), env.ClientKey)
	if err != nil {
		return fmt.Errorf("GET %s: %w", first, err)
	}
	env.Store(snap, p.clock())
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

// Build parses and compiles a document for env. It checks that the
// document belongs to the environment it is stored under.
func Build(raw []byte, logger *slog.Logger, clientKey string) (*environment.Snapshot, error) {
	if logger == nil {
		logger = slog.Default()
	}
	doc, err := environment.Parse(raw)
	if err != nil {
		return nil, err
	}
	if clientKey != "" && doc.APIKey != clientKey {
		return nil, fmt.Errorf("document is for environment %s, not %s", registry.Redact(doc.APIKey), registry.Redact(clientKey))
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
	if err != nil {
		return nil, "", fmt.Errorf("building request for %s: %w", u, err)
	}
	req.Header.Set("X-Environment-Key", key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "fledge")
	if !ims.IsZero() {
		req.Header.Set("If-Modified-Since", ims.UTC().Format(http.TimeFormat))
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", timeoutError(fmt.Sprintf("GET %s: no complete answer within %s", u, p.Timeout))
		}
		return nil, "", fmt.Errorf("GET %s: %w", u, unwrapURLError(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		return nil, "", errNotModified
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, "", &statusError{code: resp.StatusCode, url: u}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, remaining+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", timeoutError(fmt.Sprintf("GET %s: body not received within %s", u, p.Timeout))
		}
		return nil, "", fmt.Errorf("GET %s: reading body: %w", u, err)
	}
	if int64(len(body)) > remaining {
		return nil, "", fmt.Errorf("GET %s: document larger than %d bytes", u, maxTotal)
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
		return "", fmt.Errorf("invalid Link target %q: %w", link, err)
	}
	next := base.ResolveReference(ref)
	if next.Scheme != base.Scheme || next.Host != base.Host {
		return "", fmt.Errorf("pagination target %q leaves the API's origin", link)
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
