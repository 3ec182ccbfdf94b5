package e2e

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/internal/fakeapi"
)

// queueToken is realtime.queue_change_token of the realtime tests.
const queueToken = "e2e-queue-change-token-0001"

// bannerDocument is the example environment with banner_colour set to
// colour, version minutes after the example's updated_at.
func bannerDocument(t *testing.T, version int, colour string) []byte {
	t.Helper()
	e := exampleEnv(t)
	d := e.doc
	for i, fs := range d.FeatureStates {
		if fs.Feature.Name == "banner_colour" {
			d.FeatureStates[i].Value = colour
		}
	}
	d.UpdatedAt = d.updatedAt(t).Add(time.Duration(version) * time.Minute).Format(time.RFC3339Nano)
	return marshal(t, d)
}

// realtimeProxy runs fledge with the example environment served by a fake
// API, polled only once a minute: changes arrive through queue-change.
func realtimeProxy(t *testing.T) (*proxy, *fakeapi.Server, env) {
	t.Helper()
	px, api, e, _ := realtimeProxyWith(t, nil)
	return px, api, e
}

// realtimeProxyWith is realtimeProxy with the configuration adjusted by
// mutate, and the diagnostics listener on; it returns that listener's URL.
func realtimeProxyWith(t *testing.T, mutate func(config)) (*proxy, *fakeapi.Server, env, string) {
	t.Helper()
	api := fakeapi.New()
	t.Cleanup(api.Close)
	e := exampleEnv(t)
	api.SetDocument(e.keys.Server, bannerDocument(t, 1, "blue"))
	cfg := baseConfig(api, e.keys)
	cfg["api_poll_frequency_seconds"] = 60
	cfg["realtime"] = map[string]any{"queue_change_token": queueToken}
	cfg.section("server")["write_timeout_seconds"] = 1
	debug := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg.section("server")["debug_address"] = debug
	if mutate != nil {
		mutate(cfg)
	}
	return startProxy(t, cfg), api, e, "http://" + debug
}

// queueChange makes Flagsmith's push call.
func (p *proxy) queueChange(t *testing.T, clientKey string) {
	t.Helper()
	req := p.request(t, http.MethodPost, "/sse/environments/"+clientKey+"/queue-change", "",
		[]byte(`{"updated_at": "`+time.Now().UTC().Format(time.RFC3339Nano)+`"}`))
	req.Header.Set("Authorization", "Token "+queueToken)
	if r := p.do(t, req); r.status != http.StatusAccepted {
		t.Fatalf("queue-change: %d %s", r.status, r.body)
	}
}

// sseEvent is one event read from a stream.
type sseEvent struct {
	name, data string
	at         time.Time
}

// openStream reads the realtime stream of key into a channel of events
// until the test ends.
func (p *proxy) openStream(t *testing.T, key string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/sse/environments/"+key+"/stream", nil)
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("stream: %s %s %s", resp.Status, resp.Header.Get("Content-Type"), b)
	}
	events := make(chan sseEvent, 16)
	go func() {
		defer resp.Body.Close()
		defer close(events)
		br := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "" && ev.name != "":
				ev.at = time.Now()
				events <- ev
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return events
}

func nextEvent(t *testing.T, events <-chan sseEvent, d time.Duration) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(d):
		t.Fatalf("no event within %s", d)
		return sseEvent{}
	}
}

// TestRealtime: the binary streams the current version on connect, then
// one event per new version pushed by queue-change, well within a second,
// with the updated_at of the flags it then serves; a stream outlives
// write_timeout_seconds; metrics count streams and events.
func TestRealtime(t *testing.T) {
	t.Parallel()
	px, api, e := realtimeProxy(t)
	events := px.openStream(t, e.keys.Client)
	flagsUpdatedAt := func() string {
		r := px.get(t, "/api/v1/flags/", e.keys.Client)
		return r.header.Get("X-Flagsmith-Document-Updated-At")
	}
	ev := nextEvent(t, events, 2*time.Second)
	if want := `{"updated_at": ` + flagsUpdatedAt() + `}`; ev.name != "environment_updated" || ev.data != want {
		t.Fatalf("first event %q %q, want environment_updated %s", ev.name, ev.data, want)
	}

	// Longer than write_timeout_seconds with nothing to send: not cut.
	time.Sleep(1500 * time.Millisecond)

	api.SetDocument(e.keys.Server, bannerDocument(t, 2, "green"))
	start := time.Now()
	px.queueChange(t, e.keys.Client)
	ev = nextEvent(t, events, 2*time.Second)
	latency := ev.at.Sub(start)
	t.Logf("queue-change to event: %s", latency)
	if latency > time.Second {
		t.Fatalf("event %s after queue-change", latency)
	}
	if want := `{"updated_at": ` + flagsUpdatedAt() + `}`; ev.data != want {
		t.Fatalf("event %q, want %s (the flags' X-Flagsmith-Document-Updated-At)", ev.data, want)
	}
	// Nothing new upstream: no event.
	px.queueChange(t, e.keys.Client)
	select {
	case ev := <-events:
		t.Fatalf("event %q for an unchanged document", ev.data)
	case <-time.After(500 * time.Millisecond):
	}
	r := px.get(t, "/sse/environments/unknown/stream", "")
	assertStatusJSON(t, "unknown key", r, http.StatusNotFound)
}

// TestMetricsEndpoints: /metrics on the diagnostics listener, and on the
// main port only with metrics.on_main_port.
func TestMetricsEndpoints(t *testing.T) {
	t.Parallel()
	for _, onMain := range []bool{false, true} {
		t.Run("on_main_port="+strconv.FormatBool(onMain), func(t *testing.T) {
			t.Parallel()
			api := fakeapi.New()
			t.Cleanup(api.Close)
			e := exampleEnv(t)
			cfg := baseConfig(api, serve(api, e)...)
			debug := "127.0.0.1:" + strconv.Itoa(freePort(t))
			cfg.section("server")["debug_address"] = debug
			cfg["metrics"] = map[string]any{"on_main_port": onMain}
			px := startProxy(t, cfg)
			px.get(t, "/api/v1/flags/", e.keys.Client)
			resp, err := http.Get("http://" + debug + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, want := range []string{`fledge_http_requests_total{code="200",endpoint="flags"} 1`,
				`fledge_environment_document_loaded{environment="0"} 1`, `fledge_polls_total{environment="0",outcome="updated"} 1`} {
				if !strings.Contains(string(body), want) {
					t.Errorf("diagnostics /metrics lacks %s:\n%s", want, body)
				}
			}
			if strings.Contains(string(body), e.keys.Client) || strings.Contains(string(body), e.keys.Server) {
				t.Error("a key in the metrics")
			}
			main := px.get(t, "/metrics", "")
			if onMain && (main.status != http.StatusOK || !strings.Contains(string(main.body), "fledge_http_requests_total")) {
				t.Errorf("main port /metrics: %d", main.status)
			}
			if !onMain {
				assertStatusJSON(t, "main port /metrics when off", main, http.StatusNotFound)
			}
		})
	}
}
