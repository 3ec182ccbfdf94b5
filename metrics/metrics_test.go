package metrics_test

import (
	"errors"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/bench/workload"
	"github.com/fledge-flags/fledge/metrics"
	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/source"
)

func TestEndpointOf(t *testing.T) {
	for _, tc := range []struct {
		path string
		want metrics.Endpoint
	}{
		{"/api/v1/flags/", metrics.EndpointFlags},
		{"/api/v1/flags", metrics.EndpointFlags},
		{"/api/v1/identities/", metrics.EndpointIdentities},
		{"/api/v1/environment-document/", metrics.EndpointEnvironmentDocument},
		{"/api/v1/analytics/flags/", metrics.EndpointAnalytics},
		{"/api/v2/analytics/flags/", metrics.EndpointAnalytics},
		{"/api/v1/traits/", metrics.EndpointTraits},
		{"/api/v1/bulk-identities/", metrics.EndpointTraits},
		{"/api/v1/environments/key/edge-identities/", metrics.EndpointAdmin},
		{"/proxy/health/readiness", metrics.EndpointHealth},
		{"/health", metrics.EndpointHealth},
		{"/sse/environments/abc/stream", metrics.EndpointSSEStream},
		{"/sse/environments/abc/queue-change/", metrics.EndpointSSEQueueChange},
		{"/sse/environments/abc/other", metrics.EndpointOther},
		{"/metrics", metrics.EndpointMetrics},
		{"/", metrics.EndpointOther},
		{"/api/v1/flags/extra", metrics.EndpointOther},
	} {
		if got := metrics.EndpointOf(tc.path); got != tc.want {
			t.Errorf("EndpointOf(%q) = %s, want %s", tc.path, got, tc.want)
		}
	}
	var ep metrics.Endpoint
	if allocs := testing.AllocsPerRun(100, func() { ep = metrics.EndpointOf("/sse/environments/abc/stream/") }); allocs != 0 || ep != metrics.EndpointSSEStream {
		t.Errorf("EndpointOf allocates %v times", allocs)
	}
}

func TestEnabled(t *testing.T) {
	if metrics.Enabled(nil) || metrics.Enabled(metrics.Nop{}) || metrics.Enabled(&metrics.Nop{}) {
		t.Fatal("a no-op recorder counts as enabled")
	}
	if !metrics.Enabled(metrics.NewPrometheus(registry.New(nil), nil)) {
		t.Fatal("Prometheus counts as disabled")
	}
}

// TestPrometheus: every kind of series is exposed, with labels from their
// fixed sets only: no key, whatever the recorder is given.
func TestPrometheus(t *testing.T) {
	p := workload.P1
	reg := registry.New([]registry.Pair{
		{ClientKey: workload.ClientKey(p), ServerKey: workload.ServerKey(p)},
		{ClientKey: "secondEnvClientKey0001", ServerKey: "ser.secondEnvServerKey1"},
	})
	snap, err := source.Build(workload.Document(p, 1), nil, workload.ClientKey(p))
	if err != nil {
		t.Fatal(err)
	}
	env := reg.Envs()[0]
	fresh := source.NewFreshness(reg)
	fresh.MarkFetched(env, time.Now())
	env.Store(snap)
	rec := metrics.NewPrometheus(reg, fresh)
	rec.Request(metrics.EndpointFlags, 200, time.Millisecond)
	rec.Request(metrics.EndpointFlags, 200, time.Millisecond)
	rec.Request(metrics.EndpointIdentities, 422, time.Millisecond)
	rec.Request(metrics.EndpointSSEStream, 200, time.Minute)
	rec.Request(metrics.Endpoint(200), 9999, time.Millisecond) // out of range: bounded
	rec.Poll(env, metrics.PollUpdated)
	rec.Poll(env, "made-up outcome")
	rec.PollFailed(reg.Envs()[1], metrics.ReasonTimeout)
	rec.PollFailed(reg.Envs()[1], "a reason with "+workload.ServerKey(p))
	rec.StoreOp(metrics.StorePut, nil, time.Millisecond)
	rec.StoreOp(metrics.StorePut, errors.New("boom"), time.Millisecond)
	rec.StoreOp("identity:"+workload.ClientKey(p), nil, time.Millisecond)
	rec.IdentitiesWritten(3)
	rec.StoreCommit(12, 300*time.Microsecond)
	rec.StoreCommit(1, 200*time.Microsecond)
	rec.StreamOpened()
	rec.StreamOpened()
	rec.StreamClosed()
	rec.EventsSent(5)
	rec.AnalyticsForwarded(2)

	w := httptest.NewRecorder()
	rec.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	out, _ := io.ReadAll(w.Body)
	text := string(out)
	for _, want := range []string{
		`fledge_http_requests_total{code="200",endpoint="flags"} 2`,
		`fledge_http_requests_total{code="422",endpoint="identities"} 1`,
		`fledge_http_requests_total{code="200",endpoint="sse_stream"} 1`,
		`fledge_http_requests_total{code="599",endpoint="other"} 1`,
		`fledge_http_request_duration_seconds_count{endpoint="flags"} 2`,
		`fledge_polls_total{environment="0",outcome="updated"} 2`,
		`fledge_polls_total{environment="1",outcome="not_modified"} 0`,
		`fledge_poll_failures_total{environment="1",reason="timeout"} 1`,
		`fledge_poll_failures_total{environment="1",reason="other"} 1`,
		`fledge_store_operations_total{op="put"} 2`,
		`fledge_store_errors_total{op="put"} 1`,
		`fledge_store_operations_total{op="other"} 1`,
		`fledge_store_operation_duration_seconds_count{op="put"} 2`,
		`fledge_identities_written_total 3`,
		`fledge_store_commit_writes_sum 13`,
		`fledge_store_commit_writes_count 2`,
		`fledge_store_commit_writes_bucket{le="1"} 1`,
		`fledge_store_commit_duration_seconds_count 2`,
		`fledge_sse_streams_open 1`,
		`fledge_sse_events_sent_total 5`,
		`fledge_analytics_forwarded_total 2`,
		`fledge_environment_document_loaded{environment="0"} 1`,
		`fledge_environment_document_loaded{environment="1"} 0`,
		`fledge_environment_document_updated_at_seconds{environment="0"} ` + strconv.FormatFloat(float64(snap.UpdatedAt.UnixMicro())/1e6, 'g', -1, 64),
		`fledge_environment_document_age_seconds{environment="0"} `,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(text, `sse_stream",le=`) || strings.Contains(text, `duration_seconds_count{endpoint="sse_stream"}`) {
		t.Error("stream durations in the latency histogram")
	}
	for _, key := range []string{workload.ClientKey(p), workload.ServerKey(p), "secondEnvClientKey0001", "ser.", "boom"} {
		if strings.Contains(text, key) {
			t.Errorf("%q appears in the metrics", key)
		}
	}
}

// TestRequestAllocs: recording a request allocates nothing once its series
// exists.
func TestRequestAllocs(t *testing.T) {
	rec := metrics.NewPrometheus(registry.New(nil), nil)
	rec.Request(metrics.EndpointFlags, 200, time.Millisecond)
	if allocs := testing.AllocsPerRun(1000, func() { rec.Request(metrics.EndpointFlags, 200, time.Millisecond) }); allocs != 0 {
		t.Fatalf("Request allocates %v times", allocs)
	}
}
