package server

import (
	"net/http"
	"sync"
	"time"

	"github.com/fledge-flags/fledge/metrics"
)

// Middleware wraps a handler with one concern that applies to every
// request (recovery, access log, CORS, metrics).
type Middleware func(http.Handler) http.Handler

// Chain wraps h in mws, the first outermost: Chain(h, a, b) serves a
// request through a, then b, then h.
func Chain(h http.Handler, mws ...Middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// middlewares is the handler's chain, outermost first: metrics see the
// status the access log and the client see, including a recovered
// panic's 500; CORS headers are set before any route answers. Concerns that
// are off are left out, so they cost nothing.
func (h *Handler) middlewares() []Middleware {
	var mws []Middleware
	if metrics.Enabled(h.opt.Metrics) {
		mws = append(mws, Metrics(h.opt.Metrics))
	}
	if h.opt.AccessLog {
		mws = append(mws, h.accessLog)
	}
	return append(mws, h.recovery, h.corsMiddleware)
}

// recovery turns a handler's panic into a 500 JSON answer (net/http's
// ErrAbortHandler still aborts the response).
func (h *Handler) recovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.opt.Logger.Error("handler panic", "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, "internal_error", "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// accessLog writes one line per request (logging.enable_access_log).
func (h *Handler) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		lw := &loggingWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			h.opt.Logger.Info("access", "method", r.Method, "path", r.URL.Path, "status", lw.status,
				"bytes", lw.bytes, "duration_ms", float64(time.Since(start).Microseconds())/1000,
				"client", h.clientIP(r), "user_agent", r.UserAgent())
		}()
		next.ServeHTTP(lw, r)
	})
}

// corsMiddleware applies allow_origins, answering preflights itself.
func (h *Handler) corsMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.cors(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Metrics records each request's endpoint (a fixed set, from the path),
// status and latency. Its status-recording writers are pooled, so it adds
// no allocation to a request.
func Metrics(rec metrics.Recorder) Middleware {
	pool := sync.Pool{New: func() any { return new(statusWriter) }}
	// Times are offsets from base: time.Since reads only the monotonic
	// clock, where time.Now reads the wall clock too (on this project's
	// machines, clock reads are most of what recording costs).
	base := time.Now()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Since(base)
			sw := pool.Get().(*statusWriter)
			sw.ResponseWriter, sw.status = w, 0
			// No defer: recovery, inside, turns panics into answers; only
			// net/http's ErrAbortHandler passes, and is not counted.
			next.ServeHTTP(sw, r)
			status := sw.status
			if status == 0 {
				status = http.StatusOK // nothing written: net/http sends 200
			}
			rec.Request(metrics.EndpointOf(r.URL.Path), status, time.Since(base)-start)
			sw.ResponseWriter = nil
			pool.Put(sw)
		})
	}
}

// statusWriter notes the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes and
// deadlines: request bodies, realtime streams).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
