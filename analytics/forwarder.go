package analytics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/source"
)

// Defaults of ForwarderOptions.
const (
	DefaultFlushInterval = 10 * time.Second
	DefaultTimeout       = 5 * time.Second
)

// ForwarderOptions configures a Forwarder.
type ForwarderOptions struct {
	// APIURL is the upstream base, e.g. https://edge.api.flagsmith.com/api/v1;
	// counts go to APIURL + "/analytics/flags/".
	APIURL string
	// Client sends the requests; nil uses a client of its own. It is copied,
	// with a redirect policy that never leaves the upstream's origin.
	Client *http.Client
	// Interval is the time between flushes (DefaultFlushInterval if ≤ 0).
	Interval time.Duration
	// Timeout bounds one request (DefaultTimeout if ≤ 0).
	Timeout time.Duration
	Logger  *slog.Logger
	// Forwarded, when set, is told of every report the upstream accepted
	// (metrics).
	Forwarded func(n int)
}

// Forwarder posts the Aggregator's counts to the upstream, one request per
// environment per flush, with the environment's client-side key: the same
// request a Flagsmith SDK makes (Flagsmith accepts either key on this
// endpoint; the client-side key is the one that is not a secret).
//
// A request that fails (no answer, or a status other than 2xx) is retried
// once: its counts are added to the environment's next flush. If that
// request fails too, the retried counts are dropped with a log line and the
// new ones get their own retry.
type Forwarder struct {
	agg      *Aggregator
	endpoint string // APIURL + "/analytics/flags/"
	shown    string // endpoint with any password masked, for logs
	client   *http.Client
	interval time.Duration
	timeout  time.Duration
	logger   *slog.Logger
	// forwarded is ForwarderOptions.Forwarded.
	forwarded func(n int)

	mu    sync.Mutex        // one flush at a time
	retry map[string]Counts // counts that failed once, by client key
	// held are counts taken but not tried, because Run's flush was cut
	// short by shutdown; they go with the next flush as if new.
	held map[string]Counts
}

// NewForwarder returns a Forwarder of agg's counts.
func NewForwarder(agg *Aggregator, opt ForwarderOptions) *Forwarder {
	if opt.Interval <= 0 {
		opt.Interval = DefaultFlushInterval
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	client := &http.Client{}
	if opt.Client != nil {
		c := *opt.Client
		client = &c
	}
	client.CheckRedirect = source.SameOriginRedirect // the environment key goes with every hop
	endpoint := strings.TrimRight(opt.APIURL, "/") + "/analytics/flags/"
	shown := endpoint
	if u, err := url.Parse(endpoint); err == nil {
		shown = u.Redacted()
	}
	return &Forwarder{
		agg:       agg,
		endpoint:  endpoint,
		shown:     shown,
		client:    client,
		interval:  opt.Interval,
		timeout:   opt.Timeout,
		logger:    opt.Logger,
		forwarded: opt.Forwarded,
		retry:     map[string]Counts{},
		held:      map[string]Counts{},
	}
}

// Run flushes every interval until ctx ends; call Shutdown afterwards for
// what is left. A flush under way when ctx ends gets one more timeout to
// finish: what it has not sent by then is kept for Shutdown, not counted as
// a failure, so Run returns within about one timeout.
func (f *Forwarder) Run(ctx context.Context) {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ctx.Err() != nil {
				return // both were ready; select chose at random
			}
			f.tick(ctx)
		}
	}
}

func (f *Forwarder) tick(ctx context.Context) {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(f.timeout, cancel) })
	defer stop()
	_ = f.Flush(fctx)
}

// Flush sends every environment's counts, those that failed in the
// previous flush included. It returns the failures, joined; they are
// logged already. What is not sent because ctx ended is kept for the next
// flush and does not count as a failure.
func (f *Forwarder) Flush(ctx context.Context) error {
	return f.flush(ctx, false)
}

// Shutdown is the last flush: counts that cannot be sent now are dropped
// (and logged), since there is no next flush. ctx bounds it.
func (f *Forwarder) Shutdown(ctx context.Context) error {
	return f.flush(ctx, true)
}

func (f *Forwarder) flush(ctx context.Context, final bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fresh := f.agg.take()
	keys := slices.Collect(maps.Keys(fresh))
	for _, pending := range []map[string]Counts{f.retry, f.held} {
		for k := range pending {
			if _, ok := fresh[k]; !ok && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	var errs []error
	for _, key := range keys {
		t, retry, counts := fresh[key], f.retry[key], fresh[key].counts
		if held := f.held[key]; len(held) > 0 {
			counts = merge(counts, held)
		}
		delete(f.retry, key)
		delete(f.held, key)
		if t.overflow > 0 {
			f.logger.Warn("flag analytics: feature names over the limit were dropped",
				"client_key", registry.Redact(key), "names_dropped", t.overflow,
				"setting", "analytics.max_features_per_environment")
		}
		if len(counts) == 0 && len(retry) == 0 {
			continue
		}
		err := f.send(ctx, key, merge(counts, retry))
		if err == nil {
			continue
		}
		errs = append(errs, err)
		if !final && ctx.Err() != nil {
			// Cut short by shutdown: not an attempt. Shutdown sends it all.
			f.held[key] = counts
			if len(retry) > 0 {
				f.retry[key] = retry
			}
			continue
		}
		attrs := []any{"client_key", registry.Redact(key), "error", err.Error()}
		if len(retry) > 0 {
			f.logger.Warn("flag analytics dropped: forwarding failed twice", append(attrs,
				"features", len(retry), "evaluations", retry.Total())...)
		}
		if len(counts) == 0 {
			continue
		}
		if final {
			f.logger.Warn("flag analytics dropped: forwarding failed at shutdown", append(attrs,
				"features", len(counts), "evaluations", counts.Total())...)
			continue
		}
		f.retry[key] = counts
		f.logger.Warn("flag analytics forwarding failed; retrying with the next flush", append(attrs,
			"features", len(counts), "evaluations", counts.Total())...)
	}
	return errors.Join(errs...)
}

// merge returns the sum of two sets of counts. A flush sends at most three
// windows' worth of names (new, held by a cut-short flush, and the retry).
func merge(a, b Counts) Counts {
	out := make(Counts, max(len(a), len(b)))
	for name, n := range a {
		out[name] = n
	}
	for name, n := range b {
		out[name] = addSat(out[name], n)
	}
	return out
}

// send posts one environment's counts: the v1 body, a flat JSON object of
// feature name to count, with the client-side key.
func (f *Forwarder) send(ctx context.Context, clientKey string, counts Counts) error {
	body, err := json.Marshal(counts)
	if err != nil {
		return fmt.Errorf("encoding flag analytics: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building request for %s: %w", f.shown, err)
	}
	req.Header.Set("X-Environment-Key", clientKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fledge")
	resp, err := f.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("POST %s: no answer within %s", f.shown, f.timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL, password included
		}
		return fmt.Errorf("POST %s: %w", f.shown, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: unexpected status %s", f.shown, resp.Status)
	}
	if f.forwarded != nil {
		f.forwarded(1)
	}
	return nil
}
