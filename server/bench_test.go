package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fledge-flags/fledge/bench/workload"
	"github.com/fledge-flags/fledge/metrics"
	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/source"
)

// discardWriter is a minimal ResponseWriter, so the benchmark measures the
// handler rather than the recorder.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkHandler times each endpoint through the handler, without and
// with Prometheus metrics (…/metrics): the cost of recording a request.
func BenchmarkHandler(b *testing.B) {
	for _, p := range workload.Profiles() {
		snap, err := source.Build(workload.Document(p, 1), nil, workload.ClientKey(p))
		if err != nil {
			b.Fatal(err)
		}
		reg := registry.New([]registry.Pair{{ClientKey: workload.ClientKey(p), ServerKey: workload.ServerKey(p)}})
		reg.Envs()[0].Store(snap)
		off := New(Options{Registry: reg})
		on := New(Options{Registry: reg, Metrics: metrics.NewPrometheus(reg, nil)})
		body := workload.IdentityBody(p, "bench-user-42")
		cases := []struct {
			name, method, path string
			body               []byte
			server, gzip       bool
		}{
			{"flags", "GET", "/api/v1/flags/", nil, false, false},
			{"flags-gzip", "GET", "/api/v1/flags/", nil, false, true},
			{"envdoc", "GET", "/api/v1/environment-document/", nil, true, false},
			{"envdoc-gzip", "GET", "/api/v1/environment-document/", nil, true, true},
			{"identities", "POST", "/api/v1/identities/", body, false, false},
			{"identities-gzip", "POST", "/api/v1/identities/", body, false, true},
		}
		for _, c := range cases {
			for _, m := range []struct {
				suffix string
				h      *Handler
			}{{"", off}, {"/metrics", on}} {
				h := m.h
				b.Run(p.Name+"/"+c.name+m.suffix, func(b *testing.B) {
					req := httptest.NewRequest(c.method, c.path, nil)
					req.Header.Set("X-Environment-Key", workload.ClientKey(p))
					if c.server {
						req.Header.Set("X-Environment-Key", workload.ServerKey(p))
					}
					if c.gzip {
						req.Header.Set("Accept-Encoding", "gzip, deflate")
					}
					w := &discardWriter{h: http.Header{}}
					rd := bytes.NewReader(c.body)
					b.ReportAllocs()
					for b.Loop() {
						rd.Reset(c.body)
						req.Body = readCloser{rd}
						req.ContentLength = int64(len(c.body))
						clear(w.h)
						h.ServeHTTP(w, req)
					}
				})
			}
		}
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
