package e2e

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var realtimeStreams = flag.Int("realtime-streams", 500,
	"streams TestRealtimeScale opens on one fledge (10000 for the full run: go test ./e2e -run TestRealtimeScale -realtime-streams=10000 -v)")

// TestRealtimeScale opens many realtime streams on one fledge process,
// pushes one change, and measures what it costs: the process's RSS and
// goroutines with the streams open, how long the event takes to reach
// every stream, and that streams and goroutines are gone once the clients
// leave. The suite runs 500 streams; -realtime-streams 10000 is the full
// run.
func TestRealtimeScale(t *testing.T) {
	n := *realtimeStreams
	raiseFileLimit(t, n+1000)
	px, api, e, debug := realtimeProxyWith(t, func(cfg config) {
		cfg["realtime"].(map[string]any)["max_streams"] = n + 10
		cfg.section("logging")["enable_access_log"] = false
	})
	baseGoroutines, baseRSS := px.vitals(t, debug)

	// Open the streams, 100 dials at a time.
	addr := strings.TrimPrefix(px.URL, "http://")
	request := "GET /sse/environments/" + e.keys.Client + "/stream HTTP/1.1\r\nHost: fledge\r\nAccept: text/event-stream\r\n\r\n"
	streams := make([]*rawStream, n)
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100)
	errs := make(chan error, n)
	for i := range streams {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := openRawStream(addr, request)
			if err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
				return
			}
			streams[i] = s
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range streams {
			if s != nil {
				s.conn.Close()
			}
		}
	}()
	opened := time.Since(start)
	openGoroutines, openRSS := px.vitals(t, debug)
	if got := px.metric(t, debug, "fledge_sse_streams_open"); got != float64(n) {
		t.Fatalf("fledge_sse_streams_open %v, want %d", got, n)
	}

	// One change, pushed: every stream gets exactly it.
	arrivals := make([]time.Duration, n)
	var got sync.WaitGroup
	api.SetDocument(e.keys.Server, bannerDocument(t, 2, "green"))
	t0 := time.Now()
	for i, s := range streams {
		got.Add(1)
		go func() {
			defer got.Done()
			_ = s.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			if err := s.nextEvent(); err != nil {
				arrivals[i] = -1
				return
			}
			arrivals[i] = time.Since(t0)
		}()
	}
	px.queueChange(t, e.keys.Client)
	got.Wait()
	slices.Sort(arrivals)
	if arrivals[0] < 0 {
		t.Fatalf("a stream got no event")
	}
	pct := func(p float64) time.Duration { return arrivals[min(n-1, int(float64(n)*p))] }
	within := 0
	for _, a := range arrivals {
		if a <= time.Second {
			within++
		}
	}

	// The clients leave: streams close, goroutines return to baseline.
	for _, s := range streams {
		s.conn.Close()
	}
	leave := time.Now()
	var endGoroutines int
	var endRSS float64
	eventually(t, 30*time.Second, func() string {
		if open := px.metric(t, debug, "fledge_sse_streams_open"); open != 0 {
			return fmt.Sprintf("%v streams still open", open)
		}
		endGoroutines, endRSS = px.vitals(t, debug)
		if endGoroutines > baseGoroutines+2 {
			return fmt.Sprintf("goroutines %d, baseline %d", endGoroutines, baseGoroutines)
		}
		return ""
	})
	t.Logf("%d streams opened in %s", n, opened.Round(time.Millisecond))
	t.Logf("fledge process: goroutines %d → %d with the streams → %d after (%.1f per stream); RSS %.1f → %.1f MiB (%.1f KiB per stream) → %.1f MiB after",
		baseGoroutines, openGoroutines, endGoroutines, float64(openGoroutines-baseGoroutines)/float64(n),
		baseRSS, openRSS, (openRSS-baseRSS)*1024/float64(n), endRSS)
	t.Logf("event from queue-change to every stream: p50 %s, p99 %s, max %s; %.2f%% within 1 s",
		pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), arrivals[n-1].Round(time.Microsecond),
		100*float64(within)/float64(n))
	t.Logf("streams closed and goroutines back within %s of the clients leaving", time.Since(leave).Round(time.Millisecond))
	if p99 := pct(0.99); p99 > time.Second {
		t.Errorf("p99 %s: want 99%% of streams within 1 s", p99)
	}
}

// raiseFileLimit lifts the test process's open-file limit to at least n
// (within the hard limit), for the client ends of the streams.
func raiseFileLimit(t *testing.T, n int) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= uint64(n) {
		return
	}
	lim.Cur = min(max(lim.Cur, uint64(n)), lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < uint64(n) {
		t.Fatalf("open-file limit %d (hard), need %d: raise it (ulimit -Hn)", lim.Max, n)
	}
}

// rawStream is a stream read off a bare connection: a goroutine and a
// small buffer per stream, so that the client side stays light.
type rawStream struct {
	conn net.Conn
	br   *bufio.Reader
}

func openRawStream(addr, request string) (*rawStream, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		conn.Close()
		return nil, err
	}
	s := &rawStream{conn: conn, br: bufio.NewReaderSize(conn, 512)}
	resp, err := http.ReadResponse(s.br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	// Chunked framing: lines other than events and data are skipped.
	if err := s.nextEvent(); err != nil { // the current version, on connect
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return s, nil
}

// nextEvent reads up to the end of the next environment_updated event.
func (s *rawStream) nextEvent() error {
	seen := false
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(line, "event: environment_updated"):
			seen = true
		case seen && strings.HasPrefix(line, "retry:"):
			return nil
		}
	}
}

// vitals reads the process's goroutines (/debug/vars) and RSS in MiB.
func (p *proxy) vitals(t *testing.T, debug string) (int, float64) {
	t.Helper()
	resp, err := http.Get(debug + "/debug/vars")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Goroutines int `json:"goroutines"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var rss float64
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			rss = kb / 1024
		}
	}
	return v.Goroutines, rss
}

// metric reads one unlabelled series from /metrics.
func (p *proxy) metric(t *testing.T, debug, name string) float64 {
	t.Helper()
	resp, err := http.Get(debug + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}
