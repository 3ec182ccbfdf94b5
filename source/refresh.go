package source

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/fledge-flags/fledge/metrics"
	"github.com/fledge-flags/fledge/registry"
)

// refreshQueue holds the environments to fetch ahead of the next poll.
// Requests for an environment already queued are merged.
type refreshQueue struct {
	once    sync.Once
	wake    chan struct{} // capacity 1: "something is queued"
	mu      sync.Mutex
	pending []*registry.Env
}

func (q *refreshQueue) init() { q.once.Do(func() { q.wake = make(chan struct{}, 1) }) }

// Refresh asks the poll loop (Run) to fetch the environment with the
// client-side key at once, between its regular polls; the fetch is like a
// regular one (If-Modified-Since, a new snapshot only when the document
// changed). It reports false for an unknown key. It never blocks: fetches
// are made one at a time by the loop, so they never race the regular
// polls.
func (p *Poller) Refresh(clientKey string) bool {
	env := p.Registry.Env(clientKey)
	if env == nil {
		return false
	}
	q := &p.refresh
	q.init()
	q.mu.Lock()
	queued := false
	for _, e := range q.pending {
		queued = queued || e == env
	}
	if !queued {
		q.pending = append(q.pending, env)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default: // already signalled
	}
	return true
}

// sleepRefreshing waits for d like sleep, fetching the environments
// Refresh asks for meanwhile. It reports false when ctx ended.
func (p *Poller) sleepRefreshing(ctx context.Context, d time.Duration) bool {
	q := &p.refresh
	q.init()
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-q.wake:
			q.mu.Lock()
			envs := q.pending
			q.pending = nil
			q.mu.Unlock()
			p.pollEnvs(ctx, envs)
		}
	}
}

// timeoutError is a fetch that did not complete within the poll timeout.
type timeoutError string

func (e timeoutError) Error() string { return string(e) }

func (p *Poller) record(env *registry.Env, outcome string) {
	if p.Metrics != nil {
		p.Metrics.Poll(env, outcome)
	}
}

func (p *Poller) recordFailure(env *registry.Env, err error) {
	if p.Metrics != nil {
		p.Metrics.PollFailed(env, failureReason(err))
	}
}

// failureReason classifies a failed fetch into the metrics' fixed reasons.
func failureReason(err error) string {
	var se *statusError
	var te timeoutError
	var ne net.Error
	switch {
	case errors.As(err, &te):
		return metrics.ReasonTimeout
	case errors.As(err, &se):
		switch {
		case se.code == http.StatusForbidden:
			return metrics.ReasonForbidden
		case se.code >= 400 && se.code < 500:
			return metrics.ReasonHTTP4xx
		case se.code >= 500 && se.code < 600:
			return metrics.ReasonHTTP5xx
		}
		return metrics.ReasonHTTPOther
	case errors.As(err, &ne):
		if ne.Timeout() {
			return metrics.ReasonTimeout
		}
		return metrics.ReasonTransport
	}
	return metrics.ReasonInvalid
}
