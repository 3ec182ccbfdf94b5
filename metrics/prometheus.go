package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fledge-flags/fledge/registry"
)

const namespace = "fledge"

// latencyBuckets span Fledge's answers (tens of microseconds from memory)
// up to a slow identity store.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Prometheus is the Recorder that Prometheus scrapes. Its series are in its
// own registry; Handler serves them.
type Prometheus struct {
	reg *prometheus.Registry
	// labels names environments: by their ordinal ("0", "1", …), in
	// configuration order, then in order of discovery; never by a key.
	labels *envLabels

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// Hot-path caches of the labelled children, filled on first use so
	// that only series that happened appear: [endpoint][status-100].
	reqChildren [NumEndpoints][500]atomic.Pointer[counterChild]
	latChildren [NumEndpoints]atomic.Pointer[observerChild]

	polls        *prometheus.CounterVec
	pollFailures *prometheus.CounterVec
	storeOps     *prometheus.CounterVec
	storeErrors  *prometheus.CounterVec
	storeLatency *prometheus.HistogramVec
	identities   prometheus.Counter
	commitWrites prometheus.Histogram
	commitTime   prometheus.Histogram
	streams      prometheus.Gauge
	events       prometheus.Counter
	analytics    prometheus.Counter
}

type counterChild struct{ prometheus.Counter }
type observerChild struct{ prometheus.Observer }

// NewPrometheus returns a Recorder registering its series, the Go runtime's
// and the process's (RSS, file descriptors) in a registry of its own. reg
// gives the per-environment document series and the environment labels;
// fresh, the age of each document (nil: no age series).
func NewPrometheus(reg *registry.Registry, fresh Freshness) *Prometheus {
	p := &Prometheus{reg: prometheus.NewRegistry(), labels: &envLabels{byEnv: map[*registry.Env]string{}}}
	p.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "http_requests_total",
		Help: "HTTP requests answered, by endpoint and status code.",
	}, []string{"endpoint", "code"})
	p.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "http_request_duration_seconds",
		Help:    "Time to answer a request, by endpoint (realtime streams excluded: they last minutes).",
		Buckets: latencyBuckets,
	}, []string{"endpoint"})
	p.polls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "polls_total",
		Help: "Successful fetches of environment documents, by environment ordinal and outcome (updated, unchanged, not_modified).",
	}, []string{"environment", "outcome"})
	p.pollFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "poll_failures_total",
		Help: "Failed fetches of environment documents, by environment ordinal and reason.",
	}, []string{"environment", "reason"})
	p.storeOps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "store_operations_total",
		Help: "Identity store operations (api role), by operation.",
	}, []string{"op"})
	p.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "store_errors_total",
		Help: "Identity store operations that failed (api role), by operation.",
	}, []string{"op"})
	p.storeLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "store_operation_duration_seconds",
		Help:    "Identity store operation latency (api role), by operation.",
		Buckets: latencyBuckets,
	}, []string{"op"})
	p.identities = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "identities_written_total",
		Help: "Identities persisted by the api role.",
	})
	p.commitWrites = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "store_commit_writes",
		Help:    "Writes made durable by one group commit of the embedded store (api role).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
	})
	p.commitTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "store_commit_duration_seconds",
		Help:    "Time one group commit of the embedded store took, its flushes to disk included (api role).",
		Buckets: latencyBuckets,
	})
	p.streams = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "sse_streams_open",
		Help: "Realtime (server-sent events) streams open now.",
	})
	p.events = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "sse_events_sent_total",
		Help: "Realtime events written to streams (one per stream per event).",
	})
	p.analytics = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "analytics_forwarded_total",
		Help: "Flag-usage analytics reports forwarded upstream.",
	})
	p.reg.MustRegister(p.requests, p.latency, p.polls, p.pollFailures, p.storeOps, p.storeErrors,
		p.storeLatency, p.identities, p.commitWrites, p.commitTime, p.streams, p.events, p.analytics,
		&documentCollector{reg: reg, fresh: fresh, label: p.envLabel},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, e := range reg.Envs() {
		p.envLabel(e)
	}
	return p
}

// envLabels assigns environments their ordinal labels.
type envLabels struct {
	mu    sync.Mutex
	byEnv map[*registry.Env]string
}

// envLabel is env's label, assigned on first sight. Every poll outcome and
// failure reason of a new environment starts at zero, so that rates and
// alerts work before the first failure.
func (p *Prometheus) envLabel(env *registry.Env) string {
	l := p.labels
	l.mu.Lock()
	defer l.mu.Unlock()
	if label, ok := l.byEnv[env]; ok {
		return label
	}
	label := strconv.Itoa(len(l.byEnv))
	l.byEnv[env] = label
	for _, o := range outcomes {
		p.polls.WithLabelValues(label, o)
	}
	for _, r := range reasons {
		p.pollFailures.WithLabelValues(label, r)
	}
	return label
}

// Registry is the Prometheus registry holding the series (for tests and
// for registering more collectors).
func (p *Prometheus) Registry() *prometheus.Registry { return p.reg }

// Handler serves the series in Prometheus's text format.
func (p *Prometheus) Handler() http.Handler {
	return promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{})
}

// Request implements Recorder.
func (p *Prometheus) Request(ep Endpoint, status int, elapsed time.Duration) {
	if ep >= NumEndpoints {
		ep = EndpointOther
	}
	if status < 100 || status > 599 {
		status = 599 // cannot be sent; keeps the label set bounded all the same
	}
	slot := &p.reqChildren[ep][status-100]
	c := slot.Load()
	if c == nil {
		c = &counterChild{p.requests.WithLabelValues(ep.String(), strconv.Itoa(status))}
		slot.Store(c)
	}
	c.Inc()
	if ep == EndpointSSEStream {
		return
	}
	o := p.latChildren[ep].Load()
	if o == nil {
		o = &observerChild{p.latency.WithLabelValues(ep.String())}
		p.latChildren[ep].Store(o)
	}
	o.Observe(elapsed.Seconds())
}

// Poll implements Recorder.
func (p *Prometheus) Poll(env *registry.Env, outcome string) {
	p.polls.WithLabelValues(p.envLabel(env), oneOf(outcome, outcomes, PollUpdated)).Inc()
}

// PollFailed implements Recorder.
func (p *Prometheus) PollFailed(env *registry.Env, reason string) {
	p.pollFailures.WithLabelValues(p.envLabel(env), oneOf(reason, reasons, ReasonOther)).Inc()
}

// StoreOp implements Recorder.
func (p *Prometheus) StoreOp(op string, err error, elapsed time.Duration) {
	op = oneOf(op, storeOps, StoreOther)
	p.storeOps.WithLabelValues(op).Inc()
	if err != nil {
		p.storeErrors.WithLabelValues(op).Inc()
	}
	p.storeLatency.WithLabelValues(op).Observe(elapsed.Seconds())
}

// IdentitiesWritten implements Recorder.
func (p *Prometheus) IdentitiesWritten(n int) { p.identities.Add(float64(n)) }

// StoreCommit implements Recorder.
func (p *Prometheus) StoreCommit(writes int, elapsed time.Duration) {
	p.commitWrites.Observe(float64(writes))
	p.commitTime.Observe(elapsed.Seconds())
}

// StreamOpened implements Recorder.
func (p *Prometheus) StreamOpened() { p.streams.Inc() }

// StreamClosed implements Recorder.
func (p *Prometheus) StreamClosed() { p.streams.Dec() }

// EventsSent implements Recorder.
func (p *Prometheus) EventsSent(n int) { p.events.Add(float64(n)) }

// AnalyticsForwarded implements Recorder.
func (p *Prometheus) AnalyticsForwarded(n int) { p.analytics.Add(float64(n)) }

// oneOf keeps label values in their fixed set.
func oneOf(v string, set []string, fallback string) string {
	for _, s := range set {
		if v == s {
			return v
		}
	}
	return fallback
}

// documentCollector reports each environment's document state at scrape
// time, straight from the registry and the sources' freshness.
type documentCollector struct {
	reg   *registry.Registry
	fresh Freshness
	label func(*registry.Env) string
}

// Freshness tells when each environment's source last confirmed its
// document (source.Freshness).
type Freshness interface {
	// LastSuccess is the time of env's last successful fetch, zero if
	// none.
	LastSuccess(env *registry.Env) time.Time
}

var (
	docUpdatedAt = prometheus.NewDesc(namespace+"_environment_document_updated_at_seconds",
		"updated_at of the document served (its version), Unix seconds; absent before the first document.",
		[]string{"environment"}, nil)
	docAge = prometheus.NewDesc(namespace+"_environment_document_age_seconds",
		"Seconds since the upstream last confirmed the document served (a 200 or a 304); absent before the first success.",
		[]string{"environment"}, nil)
	docLoaded = prometheus.NewDesc(namespace+"_environment_document_loaded",
		"1 when a document is served for the environment (fetched, from a file or a warm-start snapshot), else 0.",
		[]string{"environment"}, nil)
)

func (c *documentCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- docUpdatedAt
	ch <- docAge
	ch <- docLoaded
}

func (c *documentCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, e := range c.reg.Envs() {
		label := c.label(e)
		snap := e.Snapshot()
		loaded := 0.0
		if snap != nil {
			loaded = 1
			if !snap.UpdatedAt.IsZero() {
				ch <- prometheus.MustNewConstMetric(docUpdatedAt, prometheus.GaugeValue,
					float64(snap.UpdatedAt.UnixMicro())/1e6, label)
			}
		}
		ch <- prometheus.MustNewConstMetric(docLoaded, prometheus.GaugeValue, loaded, label)
		if c.fresh == nil {
			continue
		}
		if last := c.fresh.LastSuccess(e); !last.IsZero() {
			ch <- prometheus.MustNewConstMetric(docAge, prometheus.GaugeValue, now.Sub(last).Seconds(), label)
		}
	}
}
