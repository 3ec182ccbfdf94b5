// Package usage reports how many SDK requests the proxy served, per
// environment and resource, to the upstream's /proxy/usage/ in proxy-key
// mode, as Flagsmith's Rust edge proxy does (shared/spec/proxy-key.md §3).
//
// Counting is the registry's: the server adds one to the environment's
// counter of the resource for every 2xx answer (registry.Env.CountUse, an
// atomic add). The Reporter drains the counters every interval into rows of
// {client_side_key, resource, count}, posts them in batches of at most
// MaxRows, each with its own Idempotency-Key, and resends a batch that got
// no verdict (5xx, 3xx, no answer) unchanged, key included, before it
// drains anything new. A batch refused with 4xx is dropped.
package usage

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/fledge-flags/fledge/internal/redact"
	"github.com/fledge-flags/fledge/registry"
)

// MaxRows is the server's cap on rows per report (MAX_USAGE_ROWS).
const MaxRows = 1000

// Defaults of Options.
const (
	DefaultInterval = 60 * time.Second
	DefaultTimeout  = 5 * time.Second
)

// maxRetired bounds how many removed environments wait for their last
// counts to be drained (removals between two drains).
const maxRetired = 1 << 16

// Options configures a Reporter.
type Options struct {
	// APIURL is the upstream base; reports go to APIURL + "/proxy/usage/".
	APIURL   string
	ProxyKey string
	// Client sends the reports; it is copied with redirects turned off (a
	// 3xx is kept for the next flush, as the Rust proxy does).
	Client   *http.Client
	Registry *registry.Registry
	// Interval is the time between flushes (DefaultInterval if ≤ 0).
	Interval time.Duration
	// Timeout bounds one POST (DefaultTimeout if ≤ 0).
	Timeout time.Duration
	// MaxRows per batch (MaxRows if ≤ 0 or above it).
	MaxRows int
	Logger  *slog.Logger
}

// Row is one line of a report.
type Row struct {
	ClientSideKey string `json:"client_side_key"`
	Resource      string `json:"resource"`
	Count         int64  `json:"count"`
}

// batch is one POST: its body and Idempotency-Key never change, so a
// resend is recognisably the same report.
type batch struct {
	key  string
	rows int
	body []byte
}

// Reporter drains the registry's use counters and posts them upstream.
type Reporter struct {
	opt      Options
	endpoint string
	shown    string // endpoint without a password, for logs
	client   *http.Client
	unsub    func()

	mu      sync.Mutex // one flush at a time; guards pending
	pending []*batch

	retiredMu sync.Mutex
	retired   []*registry.Env // removed since the last drain
}

// New returns a Reporter. It watches the registry for removed
// environments, so that what they served before leaving is still
// reported; Close stops that.
func New(opt Options) *Reporter {
	if opt.Interval <= 0 {
		opt.Interval = DefaultInterval
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.MaxRows <= 0 || opt.MaxRows > MaxRows {
		opt.MaxRows = MaxRows
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	client := &http.Client{}
	if opt.Client != nil {
		c := *opt.Client
		client = &c
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	endpoint := strings.TrimRight(opt.APIURL, "/") + "/proxy/usage/"
	r := &Reporter{opt: opt, endpoint: endpoint, shown: redact.URL(endpoint), client: client}
	r.unsub = opt.Registry.Subscribe(func(c registry.Change) {
		if c.Kind == registry.EnvRemoved {
			r.retire(c.Env)
		}
	})
	return r
}

// Close stops watching the registry.
func (r *Reporter) Close() { r.unsub() }

func (r *Reporter) retire(e *registry.Env) {
	r.retiredMu.Lock()
	defer r.retiredMu.Unlock()
	if len(r.retired) >= maxRetired {
		r.opt.Logger.Warn("usage of a removed environment dropped: too many removals since the last report",
			"client_key", redact.Key(e.ClientKey))
		return
	}
	r.retired = append(r.retired, e)
}

// Run flushes every interval until ctx ends. The first flush is one
// interval after the start, and the next one a whole interval after a
// flush ends, however long it took.
func (r *Reporter) Run(ctx context.Context) {
	t := time.NewTimer(r.opt.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_ = r.Flush(ctx) // failures are logged
		t.Reset(r.opt.Interval)
	}
}

// Flush sends what is due: the batches a previous flush could not deliver,
// unchanged, if there are any; otherwise everything counted since the last
// drain, in new batches. It reports an error unless every batch got a
// verdict (accepted, or refused and dropped).
func (r *Reporter) Flush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) == 0 {
		rows := r.drain()
		if len(rows) == 0 {
			return nil
		}
		var err error
		if r.pending, err = r.batches(rows); err != nil {
			return err
		}
	}
	var kept []*batch
	for _, b := range r.pending {
		if !r.send(ctx, b) {
			kept = append(kept, b)
		}
	}
	r.pending = kept
	if len(kept) > 0 {
		return fmt.Errorf("usage: %d of the reports were not delivered; they are resent on the next flush", len(kept))
	}
	return nil
}

// Pending is the number of batches waiting to be resent.
func (r *Reporter) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// drain takes every counter, of current environments and of those
// removed since the last drain, summed per client key and resource.
func (r *Reporter) drain() []Row {
	r.retiredMu.Lock()
	retired := r.retired
	r.retired = nil
	r.retiredMu.Unlock()
	sums := map[string]*[registry.NumResources]int64{}
	add := func(e *registry.Env) {
		uses := e.TakeUses()
		s := sums[e.ClientKey]
		for res, n := range uses {
			if n == 0 {
				continue
			}
			if s == nil {
				s = new([registry.NumResources]int64)
				sums[e.ClientKey] = s
			}
			s[res] += n
		}
	}
	for _, e := range r.opt.Registry.Envs() {
		add(e)
	}
	for _, e := range retired {
		add(e)
	}
	var rows []Row
	for key, s := range sums {
		for res, n := range s {
			if n > 0 {
				rows = append(rows, Row{ClientSideKey: key, Resource: registry.Resource(res).String(), Count: n})
			}
		}
	}
	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(strings.Compare(a.ClientSideKey, b.ClientSideKey), strings.Compare(a.Resource, b.Resource))
	})
	return rows
}

// batches splits rows into chunks of at most MaxRows, each with a fresh
// Idempotency-Key.
func (r *Reporter) batches(rows []Row) ([]*batch, error) {
	var out []*batch
	for chunk := range slices.Chunk(rows, r.opt.MaxRows) {
		body, err := json.Marshal(chunk)
		if err != nil {
			return nil, fmt.Errorf("usage: encoding a report: %w", err)
		}
		out = append(out, &batch{key: uuid.NewString(), rows: len(chunk), body: body})
	}
	return out, nil
}

// send posts one batch, reporting whether it got a verdict: accepted
// (2xx), or refused (4xx: retrying cannot heal it, so it is dropped).
func (r *Reporter) send(ctx context.Context, b *batch) bool {
	ctx, cancel := context.WithTimeout(ctx, r.opt.Timeout)
	defer cancel()
	log := r.opt.Logger.With("url", r.shown, "rows", b.rows, "idempotency_key", b.key)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint, bytes.NewReader(b.body))
	if err != nil {
		log.Error("usage report dropped: cannot build the request", "error", redact.URL(err.Error()))
		return true
	}
	req.Header.Set("X-Proxy-Key", r.opt.ProxyKey)
	req.Header.Set("Idempotency-Key", b.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fledge")
	resp, err := r.client.Do(req)
	if err != nil {
		msg := err.Error()
		if ctx.Err() != nil {
			msg = "no answer within " + r.opt.Timeout.String()
		}
		log.Warn("usage report not delivered; it is resent on the next flush", "error", msg)
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		log.Debug("usage report sent", "status", resp.StatusCode)
		return true
	case resp.StatusCode >= 400 && resp.StatusCode <= 499:
		attrs := []any{"status", resp.StatusCode}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			attrs = append(attrs, "proxy_key", redact.Key(r.opt.ProxyKey), "hint", "the API refused the proxy key: check proxy_key")
		}
		log.Error("usage report refused by the API; dropped", attrs...)
		return true
	default:
		log.Warn("usage report not accepted; it is resent on the next flush", "status", resp.StatusCode)
		return false
	}
}

// Shutdown makes a last flush within ctx, so that what was counted since
// the last report is not lost with the process (the Rust proxy has no
// final flush; Fledge's analytics forwarder has one, and so does this):
// pending batches first, then what is left in the counters.
func (r *Reporter) Shutdown(ctx context.Context) error {
	if err := r.Flush(ctx); err != nil {
		return err
	}
	return r.Flush(ctx)
}
