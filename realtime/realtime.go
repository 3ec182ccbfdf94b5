// Package realtime serves Flagsmith's realtime notifications: server-sent
// event streams that tell clients (the Flagsmith JS SDK with realtime: true,
// the Go SDK in local evaluation) when an environment's document version
// advances, so they refetch at once instead of waiting for their next poll.
// Wire format (shared/spec/api.md §7):
//
//	GET /sse/environments/{client_key}/stream
//
//	event: environment_updated
//	data: {"updated_at": 1715012345.123456}
//	retry: 15000
//
// An event is sent on connect with the current document's updated_at, then
// once per new updated_at, fed by the registry's change feed; comments keep
// idle streams alive. A self-hosted Flagsmith can push changes with
//
//	POST /sse/environments/{client_key}/queue-change
//	Authorization: Token {realtime.queue_change_token}
//
// which makes the poller fetch that environment at once.
//
// Fan-out costs one channel close per new version, whatever the number of
// streams: each version's event is formatted once, and every stream's
// goroutine (net/http's, serving the request) wakes on the version's channel
// and writes the shared bytes.
package realtime

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/internal/tokens"
	"github.com/fledge-flags/fledge/metrics"
	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/server"
)

// Defaults of the realtime settings.
const (
	DefaultMaxStreams   = 10000
	DefaultMaxStreamAge = 10 * time.Minute
	DefaultKeepAlive    = 15 * time.Second
	// DefaultWriteTimeout bounds one write to a stream when the server has
	// no write timeout: a client that stops reading is dropped then.
	DefaultWriteTimeout = 30 * time.Second
	// retryMillis is the reconnection delay the events ask of clients,
	// as Flagsmith's realtime service sends it.
	retryMillis = 15000
	// maxQueueChangeBody bounds the body read from a queue-change call
	// ({"updated_at": …}; not needed, the document is refetched anyway).
	maxQueueChangeBody = 64 << 10
)

// Prefix is the path every realtime endpoint starts with.
const Prefix = "/sse/environments/"

// Options configures the realtime endpoints.
type Options struct {
	Registry *registry.Registry
	Logger   *slog.Logger
	Metrics  metrics.Recorder
	// MaxStreams caps the streams open at once; more get 503. ≤ 0: no cap.
	MaxStreams int
	// MaxStreamAge ends a stream after this long (plus up to 10% jitter, so
	// that streams opened together do not all reconnect together); clients
	// reconnect and get the current version. 0: no limit.
	MaxStreamAge time.Duration
	// KeepAlive is the interval of keep-alive comments on a quiet stream;
	// 0 means DefaultKeepAlive.
	KeepAlive time.Duration
	// WriteTimeout bounds each write to a stream (the connection watchdog
	// leaves streams alone, see server.StartStream); 0 means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// QueueChangeToken authenticates queue-change calls; empty turns the
	// endpoint off (404).
	QueueChangeToken string
	// Refresh asks the document source to fetch an environment at once
	// (source.Poller.Refresh). Nil (offline mode: documents come from
	// files) turns queue-change off too.
	Refresh func(clientKey string) bool
}

// Hub serves the realtime endpoints and fans document versions out to the
// streams.
type Hub struct {
	opt      Options
	log      *slog.Logger
	rec      metrics.Recorder
	topicsMu sync.Mutex
	topics   map[*registry.Env]*topic // environments come and go (proxy-key discovery)
	open     atomic.Int64
	token    tokens.Set
	done     <-chan struct{}
	unsub    func()
	streams  sync.WaitGroup
}

// topic is one environment's current version.
type topic struct {
	mu   sync.Mutex // serialises publishers
	cur  atomic.Pointer[version]
	gone chan struct{} // closed when the environment is removed
}

func newTopic() *topic {
	t := &topic{gone: make(chan struct{})}
	t.cur.Store(&version{next: make(chan struct{})})
	return t
}

// version is one document version as streams see it. next is closed when
// a newer version replaces it: every stream waiting on it wakes, loads the
// topic's current version and writes its frame.
type version struct {
	updatedAt time.Time
	frame     []byte // the whole event, formatted once; nil before the first document
	next      chan struct{}
}

var (
	keepAliveFrame = []byte(": keep-alive\n\n")
	// openFrame flushes the headers of a stream that has no document yet,
	// so that the client sees it open.
	openFrame = []byte(": waiting for the first document\n\n")
)

// New returns a hub following reg's change feed until ctx ends, which also
// ends every stream (so that a graceful shutdown is not held up by them).
func New(ctx context.Context, opt Options) *Hub {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.KeepAlive <= 0 {
		opt.KeepAlive = DefaultKeepAlive
	}
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = DefaultWriteTimeout
	}
	h := &Hub{
		opt:    opt,
		log:    opt.Logger,
		rec:    metrics.OrNop(opt.Metrics),
		topics: map[*registry.Env]*topic{},
		done:   ctx.Done(),
	}
	h.token = tokens.NewSet(opt.QueueChangeToken)
	// Subscribed before reading the current snapshots, so that no version
	// installed in between is missed (publishing one twice is harmless).
	h.unsub = opt.Registry.Subscribe(h.change)
	for _, e := range opt.Registry.Envs() {
		h.publish(e, e.Snapshot())
	}
	go func() {
		<-ctx.Done()
		h.unsub()
	}()
	return h
}

// change follows the registry's change feed.
func (h *Hub) change(c registry.Change) {
	switch c.Kind {
	case registry.EnvRemoved:
		// Its key answers 401 from now on: its streams end.
		h.topicsMu.Lock()
		t := h.topics[c.Env]
		delete(h.topics, c.Env)
		h.topicsMu.Unlock()
		if t != nil {
			close(t.gone)
		}
	case registry.EnvAdded:
	default:
		h.publish(c.Env, c.New)
	}
}

// topic returns env's topic, made on first use.
func (h *Hub) topic(env *registry.Env) *topic {
	h.topicsMu.Lock()
	defer h.topicsMu.Unlock()
	t := h.topics[env]
	if t == nil {
		t = newTopic()
		h.topics[env] = t
	}
	return t
}

// publish makes snap the topic's version if its updated_at is new. It runs
// on the goroutine installing the snapshot and never blocks on streams.
func (h *Hub) publish(env *registry.Env, snap *environment.Snapshot) {
	if snap == nil || snap.UpdatedAt.IsZero() || len(snap.UpdatedAtHeader) == 0 || env.Removed() {
		return
	}
	t := h.topic(env)
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.cur.Load()
	if !snap.UpdatedAt.After(old.updatedAt) {
		return // the same version (or an older one, which clients ignore)
	}
	t.cur.Store(&version{updatedAt: snap.UpdatedAt, frame: eventFrame(snap.UpdatedAtHeader[0]), next: make(chan struct{})})
	close(old.next)
}

// eventFrame formats an environment_updated event. updatedAt is the
// document's X-Flagsmith-Document-Updated-At value, the very number the JS
// SDK compares the event with.
func eventFrame(updatedAt string) []byte {
	b := make([]byte, 0, 96)
	b = append(b, "event: environment_updated\ndata: {\"updated_at\": "...)
	b = append(b, updatedAt...)
	b = append(b, "}\nretry: "...)
	b = strconv.AppendInt(b, retryMillis, 10)
	return append(b, "\n\n"...)
}

// Open is the number of streams open now.
func (h *Hub) Open() int { return int(h.open.Load()) }

// Wait blocks until every stream has ended (after ctx ended, for tests and
// shutdown).
func (h *Hub) Wait() { h.streams.Wait() }

// ServeHTTP serves the paths under Prefix; others get 404.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, action, ok := parsePath(r.URL.Path)
	if !ok {
		server.WriteError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	switch action {
	case "stream":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, r, http.MethodGet)
			return
		}
		h.stream(w, r, key)
	case "queue-change":
		if !h.queueChangeOn() {
			server.WriteError(w, http.StatusNotFound, "not_found", "queue-change is off: set realtime.queue_change_token")
			return
		}
		if r.Method != http.MethodPost {
			methodNotAllowed(w, r, http.MethodPost)
			return
		}
		h.queueChange(w, r, key)
	}
}

// parsePath splits /sse/environments/{key}/{action}[/].
func parsePath(p string) (key, action string, ok bool) {
	rest, found := strings.CutPrefix(p, Prefix)
	if !found {
		return "", "", false
	}
	rest = strings.TrimSuffix(rest, "/")
	key, action, found = strings.Cut(rest, "/")
	if !found || key == "" || (action != "stream" && action != "queue-change") {
		return "", "", false
	}
	return key, action, true
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allowed string) {
	w.Header().Set("Allow", allowed)
	server.WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method "+r.Method+" not allowed")
}

// env resolves a client-side key. Server-side keys are refused: they would
// end up in URLs and access logs.
func (h *Hub) env(key string) *registry.Env {
	env, kind, ok := h.opt.Registry.Lookup(key)
	if !ok || kind != environment.ClientKey {
		return nil
	}
	return env
}

func unknownKey(w http.ResponseWriter, key string) {
	server.WriteError(w, http.StatusNotFound, "not_found", "unknown environment key '"+registry.Redact(key)+"'")
}

// stream serves one event stream until the client leaves, the stream's
// age runs out, a write fails or the hub's context ends.
func (h *Hub) stream(w http.ResponseWriter, r *http.Request, key string) {
	env := h.env(key)
	if env == nil {
		unknownKey(w, key)
		return
	}
	if n := h.open.Add(1); h.opt.MaxStreams > 0 && n > int64(h.opt.MaxStreams) {
		h.open.Add(-1)
		w.Header().Set("Retry-After", "15")
		server.WriteError(w, http.StatusServiceUnavailable, "service_unavailable",
			"too many realtime streams (realtime.max_streams is "+strconv.Itoa(h.opt.MaxStreams)+"); retry later")
		return
	}
	h.streams.Add(1)
	h.rec.StreamOpened()
	defer func() {
		h.rec.StreamClosed()
		h.open.Add(-1)
		h.streams.Done()
	}()
	select {
	case <-h.done:
		return
	default:
	}
	server.StartStream(r)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	// A stream's connection is not reused: when the stream ends (its age,
	// a shutdown), the connection closes, and the client reconnects afresh.
	hdr.Set("Connection", "close")
	if hdr.Get("Access-Control-Allow-Origin") == "" {
		// Open to any page, as Flagsmith's realtime service is: a stream
		// tells nothing but a timestamp, under a key browsers hold anyway.
		hdr.Set("Access-Control-Allow-Origin", "*")
	}
	w.WriteHeader(http.StatusOK)

	s := streamWriter{w: w, rc: http.NewResponseController(w), timeout: h.opt.WriteTimeout}
	defer s.clearDeadline()
	t := h.topic(env)
	v := t.cur.Load()
	first := openFrame
	if v.frame != nil {
		first = v.frame
	}
	if !s.write(first) {
		return
	}
	if v.frame != nil {
		h.rec.EventsSent(1)
	}
	keepAlive := time.NewTicker(h.opt.KeepAlive)
	defer keepAlive.Stop()
	var expired <-chan time.Time
	if age := h.opt.MaxStreamAge; age > 0 {
		timer := time.NewTimer(age + rand.N(age/10+1))
		defer timer.Stop()
		expired = timer.C
	}
	for {
		select {
		case <-v.next:
			v = t.cur.Load()
			if !s.write(v.frame) {
				return
			}
			h.rec.EventsSent(1)
			keepAlive.Reset(h.opt.KeepAlive)
		case <-keepAlive.C:
			if !s.write(keepAliveFrame) {
				return
			}
		case <-expired:
			return
		case <-t.gone:
			return
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		}
	}
}

// streamWriter writes whole frames, each bounded by a write deadline.
type streamWriter struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	timeout  time.Duration
	deadline bool
}

func (s *streamWriter) write(frame []byte) bool {
	if s.rc.SetWriteDeadline(time.Now().Add(s.timeout)) == nil {
		s.deadline = true
	}
	if _, err := s.w.Write(frame); err != nil {
		return false
	}
	return s.rc.Flush() == nil
}

// clearDeadline lifts the write deadline, which would otherwise outlive
// the stream on a keep-alive connection and cut its next response.
func (s *streamWriter) clearDeadline() {
	if s.deadline {
		_ = s.rc.SetWriteDeadline(time.Time{})
	}
}

func (h *Hub) queueChangeOn() bool { return h.opt.QueueChangeToken != "" && h.opt.Refresh != nil }

// queueChange is Flagsmith's push: the environment changed upstream, fetch
// it now. It answers 202 at once; the event follows when the fetched
// document is new.
func (h *Hub) queueChange(w http.ResponseWriter, r *http.Request, key string) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Token ")
	if !ok || !h.token.Match(strings.TrimSpace(token)) {
		server.WriteError(w, http.StatusUnauthorized, "unauthorized", "invalid or missing token: send Authorization: Token {realtime.queue_change_token}")
		return
	}
	env := h.env(key)
	if env == nil {
		unknownKey(w, key)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxQueueChangeBody))
	h.opt.Refresh(env.ClientKey)
	h.log.Debug("realtime: change queued", "client_key", registry.Redact(env.ClientKey))
	body := []byte(`{"status":"accepted"}`)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(body)
}
