package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/metrics"
	"github.com/fledge-flags/fledge/registry"
)

func TestChainOrder(t *testing.T) {
	var order []string
	mw := func(name string) Middleware {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order = append(order, name)
				next.ServeHTTP(w, r)
			})
		}
	}
	h := Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { order = append(order, "handler") }), mw("a"), mw("b"))
	do(h, "GET", "/", "")
	if got := strings.Join(order, ","); got != "a,b,handler" {
		t.Fatalf("order %s", got)
	}
}

// requests records what the metrics middleware reports.
type requests struct {
	metrics.Nop
	mu  sync.Mutex
	got []string
}

func (r *requests) Request(ep metrics.Endpoint, status int, elapsed time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, ep.String()+" "+itoa(int64(status)))
}

// TestMetricsMiddleware: every answer is recorded with its endpoint and
// status: errors, preflights, a panic's 500 and the role's routes too.
func TestMetricsMiddleware(t *testing.T) {
	rec := &requests{}
	h, _ := newTestHandler(t, func(o *Options) {
		o.Metrics = rec
		o.Logger = quietLogger()
		o.Routes = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/panic" {
				panic("boom")
			}
			w.WriteHeader(http.StatusTeapot)
		})
	})
	for _, tc := range []struct {
		method, path string
		headers      []string
		want         string
	}{
		{"GET", "/api/v1/flags/", []string{"X-Environment-Key", clientKey}, "flags 200"},
		{"GET", "/api/v1/flags/", nil, "flags 401"},
		{"DELETE", "/api/v1/flags/", nil, "flags 405"},
		{"POST", "/api/v1/identities/", []string{"X-Environment-Key", clientKey}, "identities 422"},
		{"GET", "/proxy/health/liveness", nil, "health 200"},
		{"OPTIONS", "/api/v1/flags/", []string{"Origin", "http://x", "Access-Control-Request-Method", "GET"}, "flags 200"},
		{"GET", "/panic", nil, "other 500"},
		{"GET", "/sse/environments/k/stream", nil, "sse_stream 418"},
	} {
		rec.got = nil
		do(h, tc.method, tc.path, "", tc.headers...)
		if len(rec.got) != 1 || rec.got[0] != tc.want {
			t.Errorf("%s %s: recorded %v, want [%s]", tc.method, tc.path, rec.got, tc.want)
		}
	}
}

// TestMetricsOffNoWrapper: with metrics off (nil or Nop) the writer the
// endpoints see is net/http's own: nothing is added to the request path.
func TestMetricsOffNoWrapper(t *testing.T) {
	for _, rec := range []metrics.Recorder{nil, metrics.Nop{}} {
		var seen http.ResponseWriter
		h, _ := newTestHandler(t, func(o *Options) {
			o.Metrics = rec
			o.Routes = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = w })
		})
		w := do(h, "GET", "/elsewhere", "")
		if seen != http.ResponseWriter(w) {
			t.Errorf("metrics %T: the endpoint got %T, not the server's writer", rec, seen)
		}
	}
}

// BenchmarkMetricsMiddleware is what recording a request costs by itself:
// a trivial endpoint bare, and through the metrics middleware.
func BenchmarkMetricsMiddleware(b *testing.B) {
	endpoint := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	reg := registry.New(nil)
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", endpoint},
		{"metrics", Chain(endpoint, Metrics(metrics.NewPrometheus(reg, nil)))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/api/v1/flags/", nil)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				tc.h.ServeHTTP(w, req)
			}
		})
	}
}
