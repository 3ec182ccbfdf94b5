// Package fakeapi is an in-process stand-in for the Flagsmith Core/Edge API,
// for Fledge's end-to-end and fault tests. It serves environment documents the
// way shared/spec/api.md §2.5 describes (server keys only, If-Modified-Since,
// Link pagination, gzip), takes flag analytics reports as §2.7 describes
// (AnalyticsReports), and can be told to misbehave in the ways a real
// upstream and the network in front of it do (see Fault). It also serves
// the proxy-key endpoints of shared/spec/proxy-key.md (proxy.go).
package fakeapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// defaultDelay is FaultSlow's delay until SetDelay is called: long enough to
// trip the short timeouts tests use, short enough not to stall a suite.
const defaultDelay = time.Second

// Request is one request as the server received it, for assertions.
type Request struct {
	Method string
	Path   string     // URL path, e.g. /api/v1/environment-document/
	Query  url.Values // parsed query, e.g. page_id
	Header http.Header

	// Shortcuts into Header for the ones tests check most.
	EnvironmentKey  string
	IfModifiedSince string
	AcceptEncoding  string
	ProxyKey        string // X-Proxy-Key

	// Body is the request body of a POST, PUT or PATCH (at most
	// maxRequestBody bytes), nil for other methods.
	Body []byte

	// Fault is the fault applied to this request (FaultNone when served
	// normally).
	Fault Fault
}

func (r Request) clone() Request {
	r.Query = cloneValues(r.Query)
	r.Header = r.Header.Clone()
	r.Body = bytes.Clone(r.Body)
	return r
}

func cloneValues(v url.Values) url.Values {
	return url.Values(http.Header(v).Clone())
}

// Server is a running fake Flagsmith API. All methods are safe for concurrent
// use, including while requests are being served.
type Server struct {
	ts      *httptest.Server
	ln      *switchListener
	closing chan struct{} // closed by Close to release hanging handlers
	once    sync.Once
	failMu  sync.Mutex // serialises Fail so listener state matches s.fault

	mu        sync.Mutex
	docs      map[string]*document // by server key
	pageSize  int
	fault     Fault
	remaining int           // requests left for fault; < 0 = unlimited
	faulted   int           // requests faulted since the last Fail
	wake      chan struct{} // closed and replaced by every Fail call
	delay     time.Duration
	requests  []Request
	arrived   chan struct{} // closed and replaced on every recorded request
	analytics []AnalyticsReport

	// Proxy-key endpoints (proxy.go).
	proxyKey    string
	proxyEnvs   []ProxyEnvironment
	usage       []UsageReport
	usageKeys   map[string]bool // Idempotency-Keys taken
	usageFaults []int
}

// New starts a server on 127.0.0.1 with a random port. Call Close when done.
func New() *Server {
	ln, err := newSwitchListener("tcp", "127.0.0.1:0")
	if err != nil {
		panic("fakeapi: listen: " + err.Error())
	}
	s := &Server{
		ln:      ln,
		closing: make(chan struct{}),
		docs:    make(map[string]*document),
		wake:    make(chan struct{}),
		delay:   defaultDelay,
		arrived: make(chan struct{}),
	}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.ts.Listener = ln
	s.ts.Start()
	return s
}

// URL is the API base, with the /api/v1 prefix that Fledge's upstream
// setting includes, e.g. http://127.0.0.1:PORT/api/v1. It never changes, even
// across FaultDown.
func (s *Server) URL() string { return s.ts.URL + "/api/v1" }

// Close releases hanging requests, shuts the server down and waits for its
// handlers to return. It is idempotent.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.ts.Close()
	})
}

// SetDocument registers or replaces the document served for serverKey, which
// must start with "ser." (only server keys can fetch documents). doc must be
// valid JSON, checked here so that a typo in a test fails loudly rather than
// looking like a Fledge bug; use FaultInvalidJSON to serve broken bodies. A nil
// doc unregisters the key, which then gets 403 like a revoked key.
//
// The document's updated_at (RFC 3339) drives Last-Modified and
// If-Modified-Since; without a parsable one those headers are omitted and
// every request gets a 200.
func (s *Server) SetDocument(serverKey string, doc []byte) {
	if !strings.HasPrefix(serverKey, "ser.") {
		panic(fmt.Sprintf("fakeapi: SetDocument: %q is not a server key (ser.…)", serverKey))
	}
	var d *document
	if doc != nil {
		if !json.Valid(doc) {
			panic("fakeapi: SetDocument: document for " + serverKey + " is not valid JSON")
		}
		d = parseDocument(append([]byte(nil), doc...))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d == nil {
		delete(s.docs, serverKey)
	} else {
		s.docs[serverKey] = d
	}
}

// SetPageSize splits identity_overrides into pages of at most n entries when
// n > 0, like the Edge API does for large environments; n ≤ 0 serves every
// override on one page. It applies to requests that arrive afterwards.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = n
}

// Fail applies f to the next count requests (count < 0: until the next Fail
// call; count == 0: to none). Each call replaces the previous fault and
// releases requests held by FaultHang. FaultDown ignores count and lasts until
// the next Fail call, which re-binds the same port.
func (s *Server) Fail(f Fault, count int) {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	s.mu.Lock()
	s.fault, s.remaining, s.faulted = f, count, 0
	if f == FaultDown {
		s.remaining = -1
	}
	if s.remaining == 0 {
		s.fault = FaultNone
	}
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()

	// The fault is set first so that a connection slipping through while
	// the socket closes is dropped by the handler.
	if f == FaultDown {
		s.ln.down()
		// Keep-alive connections would otherwise still be served.
		s.ts.CloseClientConnections()
	} else {
		s.ln.up()
	}
}

// SetDelay sets how long FaultSlow waits before answering (default 1s).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Requests returns a copy of every request that reached the server so far,
// in arrival order. Connections refused or dropped by FaultDown are absent.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = r.clone()
	}
	return out
}

// RequestCount is len(Requests()) without the copying.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// WaitForRequests blocks until at least n requests have arrived, so tests can
// synchronise with a poller without sleeping. It returns ctx.Err() if ctx ends
// first.
func (s *Server) WaitForRequests(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, arrived := len(s.requests), s.arrived
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-arrived:
		}
	}
}

// admit picks the fault for one request and records it, in one critical
// section so that counts and the request log agree under concurrency.
func (s *Server) admit(r *http.Request, body []byte) (f Fault, seq int, wake <-chan struct{}, delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, wake, delay = s.fault, s.wake, s.delay
	if f == FaultDown {
		return f, 0, wake, delay // not recorded: a refused connection isn't seen
	}
	if f != FaultNone {
		seq = s.faulted
		s.faulted++
		if s.remaining > 0 {
			s.remaining--
			if s.remaining == 0 {
				s.fault = FaultNone
			}
		}
	}
	s.requests = append(s.requests, Request{
		Method:          r.Method,
		Path:            r.URL.Path,
		Query:           r.URL.Query(),
		Header:          r.Header.Clone(),
		EnvironmentKey:  r.Header.Get("X-Environment-Key"),
		IfModifiedSince: r.Header.Get("If-Modified-Since"),
		AcceptEncoding:  r.Header.Get("Accept-Encoding"),
		ProxyKey:        r.Header.Get("X-Proxy-Key"),
		Body:            body,
		Fault:           f,
	})
	close(s.arrived)
	s.arrived = make(chan struct{})
	return f, seq, wake, delay
}

// down reports whether FaultDown is in force.
func (s *Server) down() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault == FaultDown
}

// lookup returns the document registered for key (nil if none) and the page
// size, read together so one response is consistent.
func (s *Server) lookup(key string) (*document, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.docs[key], s.pageSize
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		return // the client went away mid-body; nobody is listening
	}
	f, seq, wake, delay := s.admit(r, body)
	switch f {
	case FaultNone:
	case FaultDown:
		// The connection was accepted just before the outage: drop it.
		panic(http.ErrAbortHandler)
	case FaultHang:
		select {
		case <-r.Context().Done():
			return // the client gave up; nobody is listening
		case <-s.closing:
			// Returning would send an empty 200: drop the connection.
			panic(http.ErrAbortHandler)
		case <-wake:
			if s.down() {
				// Released by an outage: the connection is being
				// dropped, so it must not get an answer first.
				panic(http.ErrAbortHandler)
			}
		}
	case FaultSlow:
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			panic(http.ErrAbortHandler)
		case <-t.C:
		}
	case Fault500:
		writeBody(w, r, http.StatusInternalServerError, contentHTML, []byte(body500))
		return
	case Fault502:
		writeBody(w, r, http.StatusBadGateway, contentHTML, []byte(body502))
		return
	case Fault403:
		writeBody(w, r, http.StatusForbidden, contentJSON, []byte(body403))
		return
	case Fault304:
		w.WriteHeader(http.StatusNotModified)
		return
	case FaultTruncated:
		body := s.faultDocument(r).raw
		w.Header().Set("Content-Type", contentJSON)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler) // closes the connection mid-body, silently
	case FaultInvalidJSON:
		writeBody(w, r, http.StatusOK, contentJSON, []byte(invalidJSON))
		return
	case FaultWrongShape:
		shapes := WrongShapes()
		writeBody(w, r, http.StatusOK, contentJSON, []byte(shapes[seq%len(shapes)]))
		return
	case FaultHuge:
		w.Header().Set("Content-Type", contentJSON)
		w.WriteHeader(http.StatusOK)
		_ = writeHuge(w, s.faultDocument(r).hugePrefix(), HugeSize) // an error means the client gave up
		return
	case FaultRedirectLoop:
		w.Header().Set("Location", r.URL.RequestURI())
		w.WriteHeader(http.StatusFound)
		return
	case FaultLinkLoop:
		d := s.faultDocument(r)
		cursor := r.URL.Query().Get("page_id")
		if cursor == "" {
			cursor = cursorFor(0, "loop")
		}
		setDocumentHeaders(w.Header(), d)
		w.Header().Set("Link", linkNext(cursor))
		writeBody(w, r, http.StatusOK, contentJSON, d.raw)
		return
	default:
		panic("fakeapi: unhandled " + f.String())
	}
	s.route(w, r)
}

// faultDocument is the body faults build on: the document of the request's
// key when there is one, so the result looks like the real thing.
func (s *Server) faultDocument(r *http.Request) *document {
	if d, _ := s.lookup(r.Header.Get("X-Environment-Key")); d != nil {
		return d
	}
	return fallbackDocument
}

// route serves a request normally. Both path forms are served directly, as
// api.md §1.4 requires of Go services, rather than redirecting like core.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", neverCache)
	w.Header().Set("Pragma", "no-cache")
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/api/v1/environment-document":
		s.serveDocument(w, r)
	case "/api/v1/analytics/flags":
		s.serveAnalytics(w, r)
	case "/api/v1/proxy/config":
		s.serveProxyConfig(w, r)
	case "/api/v1/proxy/usage":
		s.serveUsage(w, r)
	case "/api/v1/flags", "/api/v1/identities":
		// Fledge serves these itself from the document; calling upstream
		// for them would be a bug the tests should see.
		writeBody(w, r, http.StatusNotFound, contentJSON, []byte(bodyNotImpl))
	default:
		writeBody(w, r, http.StatusNotFound, contentJSON, []byte(body404))
	}
}

func (s *Server) serveDocument(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		body := fmt.Sprintf(`{"detail":"Method \"%s\" not allowed."}`, r.Method)
		writeBody(w, r, http.StatusMethodNotAllowed, contentJSON, []byte(body))
		return
	}
	key := r.Header.Get("X-Environment-Key")
	d, pageSize := s.lookup(key)
	if d == nil || !strings.HasPrefix(key, "ser.") || s.revokedByProxyConfig(key, time.Now()) {
		writeBody(w, r, http.StatusForbidden, contentJSON, []byte(body403))
		return
	}
	var cursor *string
	if q := r.URL.Query(); q.Has("page_id") {
		c := q.Get("page_id")
		cursor = &c
	}
	// Proxies send If-Modified-Since on page 1 only; later pages must not be
	// cut short by it.
	if cursor == nil && d.notModified(r.Header.Get("If-Modified-Since")) {
		// Django's condition decorator keeps Last-Modified on the 304.
		w.Header().Set("Last-Modified", d.lastModified())
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body, next, ok := d.page(pageSize, cursor)
	if !ok {
		writeBody(w, r, http.StatusNotFound, contentJSON, []byte(body404))
		return
	}
	setDocumentHeaders(w.Header(), d)
	if next != "" {
		w.Header().Set("Link", linkNext(next))
	}
	writeBody(w, r, http.StatusOK, contentJSON, body)
}

// setDocumentHeaders adds core's headers for a 200 document response.
func setDocumentHeaders(h http.Header, d *document) {
	if d.updatedAt.IsZero() {
		return
	}
	h.Set("Last-Modified", d.lastModified())
	h.Set(updatedAtField, d.updatedAtHeader())
}

// linkNext builds the Edge API's pagination header: an absolute path with the
// /api/v1 prefix, because Node resolves it against the origin (api.md §2.5).
func linkNext(cursor string) string {
	return "<" + documentPath + "?page_id=" + url.QueryEscape(cursor) + `>; rel="next"`
}

// writeBody sends a complete body, gzip-encoded when the client accepts it so
// that Fledge's transparent decompression is exercised.
func writeBody(w http.ResponseWriter, r *http.Request, status int, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Add("Vary", "Accept-Encoding")
	if !acceptsGzip(r.Header.Values("Accept-Encoding")) {
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		w.Write(body)
		return
	}
	h.Set("Content-Encoding", "gzip")
	w.WriteHeader(status)
	zw := gzip.NewWriter(w)
	zw.Write(body)
	zw.Close()
}

// acceptsGzip reports whether an Accept-Encoding header admits gzip, honouring
// q=0 as a refusal.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(part, ";")
			name = strings.TrimSpace(name)
			if !strings.EqualFold(name, "gzip") && !strings.EqualFold(name, "x-gzip") && name != "*" {
				continue
			}
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
						q = f
					}
				}
			}
			if q > 0 {
				return true
			}
		}
	}
	return false
}
