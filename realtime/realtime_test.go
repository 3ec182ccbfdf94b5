package realtime_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/bench/workload"
	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/internal/fakeapi"
	"github.com/fledge-flags/fledge/metrics"
	"github.com/fledge-flags/fledge/realtime"
	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/server"
	"github.com/fledge-flags/fledge/source"
)

const (
	profileName = "P1"
	token       = "queue-change-token-0123456789"
	// quiet is how long a test waits to be sure no event comes.
	quiet = 300 * time.Millisecond
)

var profile = workload.P1

// fixture is the real server (server.Serve with its connection watchdog,
// server.Handler routing to the hub) in front of a poller of a stand-in
// Flagsmith API.
type fixture struct {
	api    *fakeapi.Server
	reg    *registry.Registry
	env    *registry.Env
	poller *source.Poller
	hub    *realtime.Hub
	url    string
	cancel context.CancelFunc
	served chan error
	prom   *metrics.Prometheus
}

type fixtureOptions struct {
	rt    realtime.Options
	http  server.HTTPOptions
	noRun bool // do not run the poll loop (tests poll by hand)
}

func newFixture(t *testing.T, fo fixtureOptions) *fixture {
	t.Helper()
	api := fakeapi.New()
	t.Cleanup(api.Close)
	api.SetDocument(workload.ServerKey(profile), workload.Document(profile, 1))
	reg := registry.New([]registry.Pair{{ClientKey: workload.ClientKey(profile), ServerKey: workload.ServerKey(profile)}})
	logger := slog.New(slog.DiscardHandler)
	p := &source.Poller{
		APIURL:    api.URL(),
		Interval:  time.Minute, // only the first poll and refreshes
		Timeout:   2 * time.Second,
		Client:    source.NewHTTPClient(),
		Registry:  reg,
		Freshness: source.NewFreshness(reg),
		Logger:    logger,
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fixture{api: api, reg: reg, env: reg.Envs()[0], poller: p, cancel: cancel, served: make(chan error, 1)}
	if fo.noRun {
		p.PollOnce(ctx)
	} else {
		go p.Run(ctx)
	}
	f.prom = metrics.NewPrometheus(reg, p.Freshness)
	rt := fo.rt
	rt.Registry, rt.Logger, rt.Metrics = reg, logger, f.prom
	if rt.Refresh == nil {
		rt.Refresh = p.Refresh
	}
	f.hub = realtime.New(ctx, rt)
	h := server.New(server.Options{Registry: reg, Readiness: p.Freshness, Logger: logger, AllowOrigins: []string{"*"}, Routes: f.hub, Metrics: f.prom})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hopt := fo.http
	if hopt == (server.HTTPOptions{}) {
		hopt = server.HTTPOptions{ReadHeaderTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: time.Second}
	}
	hopt.Logger, hopt.ShutdownTimeout = logger, 5*time.Second
	go func() { f.served <- server.Serve(ctx, ln, h, hopt) }()
	f.url = "http://" + ln.Addr().String()
	t.Cleanup(func() {
		cancel()
		if err := <-f.served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	waitFor(t, 2*time.Second, func() bool { return f.env.Snapshot() != nil })
	return f
}

func (f *fixture) streamURL(key string) string {
	return f.url + "/sse/environments/" + key + "/stream"
}

// publish serves version v upstream and polls it in.
func (f *fixture) publish(t *testing.T, v int) *environment.Snapshot {
	t.Helper()
	f.api.SetDocument(workload.ServerKey(profile), workload.Document(profile, v))
	f.poller.PollOnce(context.Background())
	return f.env.Snapshot()
}

// message is one SSE message: an event or a comment.
type message struct {
	event, data, retry string
	comment            string
	at                 time.Time
}

// sseClient is a plain SSE reader over net/http.
type sseClient struct {
	resp     *http.Response
	messages chan message
	ended    chan error // the stream's end (nil: EOF)
}

func connect(t *testing.T, url string) *sseClient {
	t.Helper()
	c, resp := tryConnect(t, url)
	if c == nil {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	return c
}

// tryConnect opens a stream; on a status other than 200 it returns nil and
// the response.
func tryConnect(t *testing.T, url string) (*sseClient, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Origin", "http://page.example")
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Cleanup(func() { resp.Body.Close(); cancel() })
		return nil, resp
	}
	c := &sseClient{resp: resp, messages: make(chan message, 1024), ended: make(chan error, 1)}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	go c.read()
	return c, resp
}

func (c *sseClient) read() {
	br := bufio.NewReader(c.resp.Body)
	var m message
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			c.ended <- err
			close(c.messages)
			return
		}
		line = strings.TrimSuffix(line, "\n")
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			m.at = time.Now()
			c.messages <- m
			m = message{}
		case field == "":
			m.comment = value
		case field == "event":
			m.event = value
		case field == "data":
			m.data = value
		case field == "retry":
			m.retry = value
		}
	}
}

// next returns the next event, skipping comments, or fails after d.
func (c *sseClient) next(t *testing.T, d time.Duration) message {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m, ok := <-c.messages:
			if !ok {
				t.Fatalf("stream ended while waiting for an event: %v", <-c.ended)
			}
			if m.event != "" || m.data != "" {
				return m
			}
		case <-timeout:
			t.Fatalf("no event within %s", d)
		}
	}
}

// none fails if an event arrives within d.
func (c *sseClient) none(t *testing.T, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m, ok := <-c.messages:
			if !ok {
				return
			}
			if m.event != "" || m.data != "" {
				t.Fatalf("unexpected event %q %q", m.event, m.data)
			}
		case <-timeout:
			return
		}
	}
}

func wantEvent(t *testing.T, m message, snap *environment.Snapshot) {
	t.Helper()
	if m.event != "environment_updated" {
		t.Fatalf("event %q, want environment_updated", m.event)
	}
	var body struct {
		UpdatedAt json.Number `json:"updated_at"`
	}
	dec := json.NewDecoder(strings.NewReader(m.data))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("data %q: %v", m.data, err)
	}
	want := snap.UpdatedAtHeader[0]
	if body.UpdatedAt.String() != want {
		t.Fatalf("updated_at %s, want %s (the document's X-Flagsmith-Document-Updated-At)", body.UpdatedAt, want)
	}
	if f, _ := body.UpdatedAt.Float64(); f < 1e9 || f > 1e10 {
		t.Fatalf("updated_at %s is not epoch seconds", body.UpdatedAt)
	}
	if m.retry != "15000" {
		t.Fatalf("retry %q, want 15000", m.retry)
	}
}

func waitFor(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s", d)
		}
	}
}

// TestOneEventPerVersion: the current version on connect, then exactly one
// event per new document version, and none for a 304, an identical
// document, or a new document with the same updated_at.
func TestOneEventPerVersion(t *testing.T) {
	f := newFixture(t, fixtureOptions{noRun: true})
	c := connect(t, f.streamURL(f.env.ClientKey))
	for name, want := range map[string]string{
		"Content-Type":                "text/event-stream",
		"Cache-Control":               "no-cache",
		"X-Accel-Buffering":           "no",
		"Access-Control-Allow-Origin": "http://page.example",
	} {
		if got := c.resp.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	wantEvent(t, c.next(t, time.Second), f.env.Snapshot())

	// A 304: no event.
	f.poller.PollOnce(context.Background())
	// A new snapshot with the same updated_at (as after a warm start, or a
	// 200 with the same document): no event.
	same, err := source.Build(f.env.Snapshot().Document.JSON, nil, f.env.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	f.env.Store(same)
	c.none(t, quiet)

	for v := 2; v <= 4; v++ {
		snap := f.publish(t, v)
		wantEvent(t, c.next(t, time.Second), snap)
		f.poller.PollOnce(context.Background()) // unchanged
		c.none(t, quiet)
	}
	// A second client connecting now gets the latest version, once.
	c2 := connect(t, f.streamURL(f.env.ClientKey))
	wantEvent(t, c2.next(t, time.Second), f.env.Snapshot())
	c2.none(t, quiet)
	f.wantMetrics(t, "fledge_sse_streams_open 2", "fledge_sse_events_sent_total 5")
}

// wantMetrics checks lines of the metrics' exposition.
func (f *fixture) wantMetrics(t *testing.T, lines ...string) {
	t.Helper()
	w := httptest.NewRecorder()
	f.prom.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, l := range lines {
		if !strings.Contains(w.Body.String(), l+"\n") {
			t.Errorf("metrics lack %q", l)
		}
	}
}

func TestUnknownKey(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"unknown key", "/sse/environments/nope/stream", http.StatusNotFound},
		{"server-side key", "/sse/environments/" + workload.ServerKey(profile) + "/stream", http.StatusNotFound},
		{"no key", "/sse/environments//stream", http.StatusNotFound},
		{"unknown action", "/sse/environments/" + f.env.ClientKey + "/other", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(f.url + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" || !json.Valid(body) {
				t.Fatalf("%s %s %q, want %d JSON", resp.Status, resp.Header.Get("Content-Type"), body, tc.status)
			}
		})
	}
	if n := f.hub.Open(); n != 0 {
		t.Fatalf("%d streams open", n)
	}
}

func TestKeepAlive(t *testing.T) {
	const every = 100 * time.Millisecond
	f := newFixture(t, fixtureOptions{rt: realtime.Options{KeepAlive: every}})
	c := connect(t, f.streamURL(f.env.ClientKey))
	c.next(t, time.Second)
	start := time.Now()
	comments := 0
	for comments < 3 {
		select {
		case m := <-c.messages:
			if m.comment == "" || m.event != "" {
				t.Fatalf("unexpected message %+v", m)
			}
			comments++
		case <-time.After(time.Second):
			t.Fatalf("%d keep-alive comments in %s", comments, time.Since(start))
		}
	}
	if el := time.Since(start); el < 3*every-every/2 {
		t.Fatalf("3 keep-alives in %s, interval %s", el, every)
	}
}

func TestMaxStreams(t *testing.T) {
	f := newFixture(t, fixtureOptions{rt: realtime.Options{MaxStreams: 2}})
	url := f.streamURL(f.env.ClientKey)
	a := connect(t, url)
	connect(t, url)
	c, resp := tryConnect(t, url)
	if c != nil {
		t.Fatal("a third stream opened past max_streams 2")
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !json.Valid(body) || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %q, want 503 JSON", resp.Status, body)
	}
	// One leaves: room for another.
	a.resp.Body.Close()
	waitFor(t, 2*time.Second, func() bool { return f.hub.Open() == 1 })
	connect(t, url)
	f.wantMetrics(t, `fledge_http_requests_total{code="503",endpoint="sse_stream"} 1`, "fledge_sse_streams_open 2")
}

func TestMaxStreamAge(t *testing.T) {
	const age = 300 * time.Millisecond
	f := newFixture(t, fixtureOptions{rt: realtime.Options{MaxStreamAge: age}})
	start := time.Now()
	c := connect(t, f.streamURL(f.env.ClientKey))
	c.next(t, time.Second)
	select {
	case err := <-c.ended:
		el := time.Since(start)
		if err != nil {
			t.Fatalf("stream broke instead of ending: %v", err)
		}
		if el < age || el > age+age/10+time.Second {
			t.Fatalf("stream ended after %s, max age %s", el, age)
		}
	case <-time.After(age + 2*time.Second):
		t.Fatalf("stream still open %s after its max age", time.Since(start))
	}
	waitFor(t, time.Second, func() bool { return f.hub.Open() == 0 })
}

// TestWatchdogLeavesStreams: with every connection timeout at 1 s, a quiet
// stream (no write for 3 s) is not cut, and events still arrive after it.
func TestWatchdogLeavesStreams(t *testing.T) {
	f := newFixture(t, fixtureOptions{noRun: true})
	c := connect(t, f.streamURL(f.env.ClientKey))
	c.next(t, time.Second)
	c.none(t, 3*time.Second)
	select {
	case err := <-c.ended:
		t.Fatalf("stream ended: %v", err)
	default:
	}
	snap := f.publish(t, 2)
	wantEvent(t, c.next(t, time.Second), snap)
	// Plain requests are still policed: a silent connection is closed.
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(4 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("a silent connection was not closed by the watchdog: %v", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestQueueChange: Flagsmith's push makes Fledge fetch the environment at
// once, and the stream gets the new version well within a second.
func TestQueueChange(t *testing.T) {
	f := newFixture(t, fixtureOptions{rt: realtime.Options{QueueChangeToken: token}})
	queue := func(key, auth string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPost, f.url+"/sse/environments/"+key+"/queue-change",
			strings.NewReader(`{"updated_at": "2026-01-01T00:00:00Z"}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !json.Valid(body) || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: body %q is not JSON", resp.Status, body)
		}
		return resp.StatusCode, body
	}
	for _, tc := range []struct {
		name, key, auth string
		status          int
	}{
		{"no token", f.env.ClientKey, "", http.StatusUnauthorized},
		{"wrong token", f.env.ClientKey, "Token wrong", http.StatusUnauthorized},
		{"token prefix", f.env.ClientKey, "Token " + token[:10], http.StatusUnauthorized},
		{"bearer scheme", f.env.ClientKey, "Bearer " + token, http.StatusUnauthorized},
		{"unknown key", "nope", "Token " + token, http.StatusNotFound},
		{"bad token before unknown key", "nope", "Token wrong", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, body := queue(tc.key, tc.auth); got != tc.status {
				t.Fatalf("status %d %s, want %d", got, body, tc.status)
			}
		})
	}

	c := connect(t, f.streamURL(f.env.ClientKey))
	c.next(t, time.Second)
	// Unchanged upstream: a fetch, no event.
	before := len(f.api.Requests())
	if got, body := queue(f.env.ClientKey, "Token "+token); got != http.StatusAccepted {
		t.Fatalf("status %d %s, want 202", got, body)
	}
	waitFor(t, time.Second, func() bool { return len(f.api.Requests()) > before })
	c.none(t, quiet)

	f.api.SetDocument(workload.ServerKey(profile), workload.Document(profile, 2))
	start := time.Now()
	before = len(f.api.Requests())
	queue(f.env.ClientKey, "Token "+token)
	waitFor(t, time.Second, func() bool { return len(f.api.Requests()) > before })
	fetched := time.Since(start)
	m := c.next(t, time.Second)
	wantEvent(t, m, f.env.Snapshot())
	t.Logf("queue-change → upstream fetch %s, → event %s", fetched, m.at.Sub(start))
	if el := m.at.Sub(start); el > 500*time.Millisecond {
		t.Fatalf("event %s after queue-change", el)
	}
	c.none(t, quiet)
}

func TestQueueChangeOff(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	req, _ := http.NewRequest(http.MethodPost, f.url+"/sse/environments/"+f.env.ClientKey+"/queue-change", nil)
	req.Header.Set("Authorization", "Token anything")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("%s, want 404 with no token set", resp.Status)
	}
}

// TestShutdownEndsStreams: when the server's context ends, streams end at
// once, so that the graceful shutdown is not held up by them.
func TestShutdownEndsStreams(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	var clients []*sseClient
	for range 5 {
		c := connect(t, f.streamURL(f.env.ClientKey))
		c.next(t, time.Second)
		clients = append(clients, c)
	}
	start := time.Now()
	f.cancel()
	for i, c := range clients {
		select {
		case <-c.ended:
		case <-time.After(2 * time.Second):
			t.Fatalf("stream %d still open %s after shutdown began", i, time.Since(start))
		}
	}
	select {
	case err := <-f.served:
		f.served <- err // for the cleanup
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("shutdown took %s", d)
	}
	f.hub.Wait()
}

// TestDiscoveredEnvironments: environments added at run time (proxy-key
// discovery) get streams and events; a removed one's streams end and its
// key is unknown from then on.
func TestDiscoveredEnvironments(t *testing.T) {
	f := newFixture(t, fixtureOptions{noRun: true})
	p2 := workload.P2
	f.reg.Reconcile([]registry.Discovered{{ClientKey: workload.ClientKey(p2),
		ServerKeys: []registry.ServerKey{{Key: workload.ServerKey(p2), Active: true}}}}, time.Now())
	env := f.reg.Env(workload.ClientKey(p2))
	if env == nil {
		t.Fatal("discovered environment not in the registry")
	}
	c := connect(t, f.streamURL(env.ClientKey))
	c.none(t, quiet) // no document yet: no event
	snap, err := source.Build(workload.Document(p2, 1), nil, env.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	env.Store(snap)
	wantEvent(t, c.next(t, time.Second), snap)

	f.reg.Reconcile(nil, time.Now())
	select {
	case err := <-c.ended:
		if err != nil {
			t.Fatalf("stream broke: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the removed environment's stream is still open")
	}
	if _, resp := tryConnect(t, f.streamURL(env.ClientKey)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("removed environment's stream: %s, want 404", resp.Status)
	}
}
