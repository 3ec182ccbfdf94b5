// Package metrics is Fledge's instrumentation: a Recorder interface that the
// server, the poller, the realtime streams and the api role's store report
// to, a no-op Recorder for when metrics are off, and a Prometheus one with
// its own registry (never the global default) served at /metrics.
//
// Label values come from fixed sets only: endpoints are classified into a
// handful of names, environments are their ordinal in the configuration,
// never a key, and no identifier or feature name is ever a label, so the
// number of series stays bounded whatever clients send.
package metrics

import (
	"strings"
	"time"

	"github.com/fledge-flags/fledge/registry"
)

// Recorder receives what the metrics count. Every method must be cheap and
// safe for concurrent use: some run on every request.
type Recorder interface {
	// Request is one answered HTTP request.
	Request(ep Endpoint, status int, elapsed time.Duration)
	// Poll is one fetch of an environment's document that succeeded with
	// outcome (PollUpdated, PollUnchanged, PollNotModified).
	Poll(env *registry.Env, outcome string)
	// PollFailed is one fetch that failed, for a reason of the Reason…
	// constants.
	PollFailed(env *registry.Env, reason string)
	// StoreOp is one identity store operation (op: one of the Store…
	// constants) and its error, nil on success.
	StoreOp(op string, err error, elapsed time.Duration)
	// IdentitiesWritten counts identities persisted by the api role.
	IdentitiesWritten(n int)
	// StoreCommit is one group commit of the embedded store: how many
	// writes it made durable together, and how long the commit took
	// (its flushes included).
	StoreCommit(writes int, elapsed time.Duration)
	// StreamOpened and StreamClosed bracket a realtime (SSE) stream.
	StreamOpened()
	StreamClosed()
	// EventsSent counts realtime events written to streams.
	EventsSent(n int)
	// AnalyticsForwarded counts flag-usage reports passed upstream.
	AnalyticsForwarded(n int)
}

// Poll outcomes.
const (
	PollUpdated     = "updated"      // a new document was installed
	PollUnchanged   = "unchanged"    // 200 with the same document
	PollNotModified = "not_modified" // 304
)

// Poll failure reasons.
const (
	ReasonTimeout   = "timeout"   // no complete answer within the poll timeout
	ReasonTransport = "transport" // connection refused, reset, DNS, TLS
	ReasonForbidden = "forbidden" // 403: the server-side key was refused
	ReasonHTTP4xx   = "http_4xx"  // another 4xx
	ReasonHTTP5xx   = "http_5xx"
	ReasonHTTPOther = "http_other" // an unexpected status outside 4xx and 5xx
	ReasonInvalid   = "invalid"    // a body that is not a usable document
	ReasonOther     = "other"
)

var reasons = []string{ReasonTimeout, ReasonTransport, ReasonForbidden, ReasonHTTP4xx, ReasonHTTP5xx,
	ReasonHTTPOther, ReasonInvalid, ReasonOther}

var outcomes = []string{PollUpdated, PollUnchanged, PollNotModified}

// Identity store operations (the api role).
const (
	StoreGet    = "get"
	StorePut    = "put"
	StoreDelete = "delete"
	StoreQuery  = "query"
	StoreBatch  = "batch"
	StoreOther  = "other"
)

var storeOps = []string{StoreGet, StorePut, StoreDelete, StoreQuery, StoreBatch, StoreOther}

// Endpoint is the bounded endpoint label of a request.
type Endpoint uint8

// Endpoints.
const (
	EndpointOther Endpoint = iota // anything else (404s included)
	EndpointFlags
	EndpointIdentities
	EndpointEnvironmentDocument
	EndpointAnalytics
	EndpointTraits // the api role's trait and bulk-identity writes
	EndpointAdmin  // the api role's admin API
	EndpointHealth
	EndpointSSEStream
	EndpointSSEQueueChange
	EndpointMetrics
	NumEndpoints
)

var endpointNames = [NumEndpoints]string{
	EndpointOther:               "other",
	EndpointFlags:               "flags",
	EndpointIdentities:          "identities",
	EndpointEnvironmentDocument: "environment_document",
	EndpointAnalytics:           "analytics",
	EndpointTraits:              "traits",
	EndpointAdmin:               "admin",
	EndpointHealth:              "health",
	EndpointSSEStream:           "sse_stream",
	EndpointSSEQueueChange:      "sse_queue_change",
	EndpointMetrics:             "metrics",
}

func (e Endpoint) String() string {
	if e < NumEndpoints {
		return endpointNames[e]
	}
	return endpointNames[EndpointOther]
}

// EndpointOf classifies a request path. It does not allocate.
func EndpointOf(path string) Endpoint {
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	switch path {
	case "/api/v1/flags":
		return EndpointFlags
	case "/api/v1/identities":
		return EndpointIdentities
	case "/api/v1/environment-document":
		return EndpointEnvironmentDocument
	case "/api/v1/analytics/flags", "/api/v2/analytics/flags":
		return EndpointAnalytics
	case "/api/v1/traits", "/api/v1/traits/bulk", "/api/v1/traits/increment-value", "/api/v1/bulk-identities":
		return EndpointTraits
	case "/proxy/health/liveness", "/proxy/health/readiness", "/proxy/health", "/health":
		return EndpointHealth
	case "/metrics":
		return EndpointMetrics
	}
	switch {
	case strings.HasPrefix(path, "/sse/environments/"):
		switch {
		case strings.HasSuffix(path, "/stream"):
			return EndpointSSEStream
		case strings.HasSuffix(path, "/queue-change"):
			return EndpointSSEQueueChange
		}
	case strings.HasPrefix(path, "/api/v1/environments/"):
		return EndpointAdmin
	}
	return EndpointOther
}

// Nop records nothing: the Recorder when metrics are off.
type Nop struct{}

// Request implements Recorder.
func (Nop) Request(Endpoint, int, time.Duration) {}

// Poll implements Recorder.
func (Nop) Poll(*registry.Env, string) {}

// PollFailed implements Recorder.
func (Nop) PollFailed(*registry.Env, string) {}

// StoreOp implements Recorder.
func (Nop) StoreOp(string, error, time.Duration) {}

// IdentitiesWritten implements Recorder.
func (Nop) IdentitiesWritten(int) {}

// StoreCommit implements Recorder.
func (Nop) StoreCommit(int, time.Duration) {}

// StreamOpened implements Recorder.
func (Nop) StreamOpened() {}

// StreamClosed implements Recorder.
func (Nop) StreamClosed() {}

// EventsSent implements Recorder.
func (Nop) EventsSent(int) {}

// AnalyticsForwarded implements Recorder.
func (Nop) AnalyticsForwarded(int) {}

// Enabled reports whether r records anything (not nil, not Nop), so that
// callers can leave instrumentation out of their hot path entirely.
func Enabled(r Recorder) bool {
	switch r.(type) {
	case nil, Nop, *Nop:
		return false
	}
	return true
}

// OrNop returns r, or Nop when r is nil.
func OrNop(r Recorder) Recorder {
	if r == nil {
		return Nop{}
	}
	return r
}
