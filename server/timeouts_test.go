package server

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// slack is how late past its limit a connection may be cut and still pass:
// the watchdog itself is at most ~2 ticks late, the rest absorbs -race and
// busy CI machines. Tests that tell two limits apart keep them further apart.
const slack = time.Second

// okHandler answers every request with a short body.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, "ok")
})

// tlsOptions points opt at a fresh self-signed certificate and returns a
// client configuration that trusts it.
func tlsOptions(t testing.TB, opt *HTTPOptions) *tls.Config {
	t.Helper()
	dir := t.TempDir()
	certPEM := selfSigned(t, dir)
	opt.TLSCert, opt.TLSKey = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// dial opens a connection to the server at url; with clientTLS it is a TLS
// client whose handshake happens on first use (or now, with handshake).
func dial(t testing.TB, url string, clientTLS *tls.Config, handshake bool) net.Conn {
	t.Helper()
	_, addr, _ := strings.Cut(url, "://")
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	if clientTLS == nil {
		return raw
	}
	c := tls.Client(raw, clientTLS)
	if handshake {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := c.Handshake(); err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Time{})
	}
	return c
}

// get sends one GET on conn and reads the whole response.
func get(conn net.Conn, br *bufio.Reader) error {
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// roundTrip is get with a bound, so a stuck server fails the test rather
// than hanging it.
func roundTrip(conn net.Conn, br *bufio.Reader) error {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	return get(conn, br)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// openUntil returns nil if the server keeps conn open until then, or the
// error that told it closed. Data received meanwhile is discarded.
func openUntil(conn net.Conn, until time.Time) error {
	_ = conn.SetReadDeadline(until)
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, 4096)
	for {
		if _, err := conn.Read(buf); err != nil {
			if isTimeout(err) {
				return nil
			}
			return err
		}
	}
}

// closedBefore waits until the server closes conn and returns when it saw
// that, or fails the test if conn is still open at the deadline.
func closedBefore(t testing.TB, conn net.Conn, deadline time.Time) time.Time {
	t.Helper()
	if err := openUntil(conn, deadline); err == nil {
		t.Fatalf("connection still open %s past the deadline", slack)
	}
	return time.Now()
}

// watchdogRunning reports whether a watchdog goroutine exists.
func watchdogRunning() bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Contains(buf[:n], []byte("(*watchdog).run("))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestFreshConnectionHeaderTimeout: a connection that never completes its
// first header (never starts it, or stalls in or after the TLS handshake)
// is cut once the header limit, counted from Accept, has passed; not before.
func TestFreshConnectionHeaderTimeout(t *testing.T) {
	const limit = 300 * time.Millisecond
	for _, tc := range []struct {
		name           string
		opt            HTTPOptions
		tls, handshake bool
	}{
		{"read header timeout", HTTPOptions{ReadHeaderTimeout: limit, IdleTimeout: 10 * limit}, false, false},
		{"falls back to read timeout", HTTPOptions{ReadTimeout: limit}, false, false},
		{"TLS, no handshake", HTTPOptions{ReadHeaderTimeout: limit}, true, false},
		{"TLS, handshake, no request", HTTPOptions{ReadHeaderTimeout: limit}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var clientTLS *tls.Config
			if tc.tls {
				clientTLS = tlsOptions(t, &tc.opt)
			}
			url, _, _ := serve(t, okHandler, tc.opt)
			// Let the watchdog's clock move on from zero, so that a start
			// stamped from anything but the current clock shows.
			time.Sleep(limit)
			var conn net.Conn
			start := time.Now()
			if tc.handshake {
				conn = dial(t, url, clientTLS, true)
			} else {
				conn = dial(t, url, nil, false) // TLS or not, it says nothing
			}
			if err := openUntil(conn, start.Add(limit/2)); err != nil {
				t.Fatalf("closed after %s, before half the %s limit: %v", time.Since(start), limit, err)
			}
			closed := closedBefore(t, conn, start.Add(limit+slack))
			if el := closed.Sub(start); el < limit {
				t.Fatalf("closed after %s, before the %s limit", el, limit)
			}
		})
	}
}

// TestHeaderTimeoutFromFirstBytes: on a keep-alive connection the header
// limit runs from the next request's first bytes, not from the previous
// response (the idle limit is longer here, to tell the two apart), and
// dribbling header bytes does not extend it.
func TestHeaderTimeoutFromFirstBytes(t *testing.T) {
	const limit = 300 * time.Millisecond
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			opt := HTTPOptions{ReadHeaderTimeout: limit, IdleTimeout: 10 * limit}
			var clientTLS *tls.Config
			if useTLS {
				clientTLS = tlsOptions(t, &opt)
			}
			url, _, _ := serve(t, okHandler, opt)
			conn := dial(t, url, clientTLS, false)
			if err := roundTrip(conn, bufio.NewReader(conn)); err != nil {
				t.Fatal(err)
			}
			// Idle for longer than the header limit: not cut, it is idle.
			if err := openUntil(conn, time.Now().Add(limit+limit/2)); err != nil {
				t.Fatalf("idle connection cut before the idle limit: %v", err)
			}
			first := time.Now()
			if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
				t.Fatal(err)
			}
			var closed time.Time
			for closed.IsZero() {
				if time.Since(first) > limit+slack {
					t.Fatalf("dribbling header still open after %s", time.Since(first))
				}
				if _, err := io.WriteString(conn, "X-Dribble: y\r\n"); err != nil {
					closed = time.Now()
					break
				}
				if err := openUntil(conn, time.Now().Add(50*time.Millisecond)); err != nil {
					closed = time.Now()
				}
			}
			if el := closed.Sub(first); el < limit {
				t.Fatalf("cut %s after the first header bytes, before the %s limit", el, limit)
			}
		})
	}
}

// TestIdleTimeout: an idle keep-alive connection is cut after the idle
// limit, not before, and not after the (longer) header limit.
func TestIdleTimeout(t *testing.T) {
	const limit = 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		opt  HTTPOptions
		tls  bool
	}{
		{"idle timeout", HTTPOptions{IdleTimeout: limit, ReadHeaderTimeout: 10 * limit}, false},
		{"falls back to read timeout", HTTPOptions{ReadTimeout: limit, ReadHeaderTimeout: 10 * limit}, false},
		{"TLS", HTTPOptions{IdleTimeout: limit, ReadHeaderTimeout: 10 * limit}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var clientTLS *tls.Config
			if tc.tls {
				clientTLS = tlsOptions(t, &tc.opt)
			}
			url, _, _ := serve(t, okHandler, tc.opt)
			conn := dial(t, url, clientTLS, true)
			sent := time.Now() // before the server went idle
			if err := roundTrip(conn, bufio.NewReader(conn)); err != nil {
				t.Fatal(err)
			}
			answered := time.Now() // after it did
			if err := openUntil(conn, answered.Add(limit/2)); err != nil {
				t.Fatalf("cut %s after the response, before half the %s limit: %v", time.Since(answered), limit, err)
			}
			closed := closedBefore(t, conn, answered.Add(limit+slack))
			if el := closed.Sub(sent); el < limit {
				t.Fatalf("cut %s after the request, before the %s idle limit", el, limit)
			}
		})
	}
}

// TestWriteTimeoutSlowReader: a client that stops reading a large response
// is cut after the write limit (the handler's Write fails), not before.
func TestWriteTimeoutSlowReader(t *testing.T) {
	const limit = 300 * time.Millisecond
	type result struct {
		err     error
		written int
		at      time.Time
	}
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			done := make(chan result, 1)
			big := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				chunk := make([]byte, 64<<10)
				var res result
				for res.written < 64<<20 && res.err == nil {
					var n int
					n, res.err = w.Write(chunk)
					res.written += n
				}
				res.at = time.Now()
				done <- res
			})
			opt := HTTPOptions{WriteTimeout: limit}
			var clientTLS *tls.Config
			if useTLS {
				clientTLS = tlsOptions(t, &opt)
			}
			url, _, _ := serve(t, big, opt)
			conn := dial(t, url, clientTLS, true)
			sent := time.Now()
			if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			// The client never reads.
			var res result
			select {
			case res = <-done:
				t.Fatalf("handler done %s after the request, before half the %s limit: wrote %d bytes, err %v",
					res.at.Sub(sent), limit, res.written, res.err)
			case <-time.After(limit / 2):
			}
			select {
			case res = <-done:
			case <-time.After(limit + slack):
				t.Fatalf("handler still writing %s after the %s write limit", slack, limit)
			}
			if res.err == nil {
				t.Fatalf("all %d bytes written to a client that never reads", res.written)
			}
			if el := res.at.Sub(sent); el < limit {
				t.Fatalf("cut %s after the request, before the %s write limit", el, limit)
			}
		})
	}
}

// TestBusyConnectionNotCut: a connection in use keeps changing phase, so
// however long it lives in all, it is not cut while each phase is short.
func TestBusyConnectionNotCut(t *testing.T) {
	const limit = 200 * time.Millisecond
	for _, tc := range []struct {
		name  string
		pause time.Duration
		tls   bool
	}{
		{"back to back", 0, false},
		{"pauses under the idle limit", limit / 2, false},
		{"TLS, pauses under the idle limit", limit / 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := HTTPOptions{ReadHeaderTimeout: limit, ReadTimeout: limit, WriteTimeout: limit, IdleTimeout: limit}
			var clientTLS *tls.Config
			if tc.tls {
				clientTLS = tlsOptions(t, &opt)
			}
			url, _, _ := serve(t, okHandler, opt)
			conn := dial(t, url, clientTLS, false)
			br := bufio.NewReader(conn)
			start := time.Now()
			n := 0
			for time.Since(start) < 3*limit {
				if err := roundTrip(conn, br); err != nil {
					t.Fatalf("request %d, %s into a busy connection: %v", n, time.Since(start), err)
				}
				n++
				time.Sleep(tc.pause)
			}
			t.Logf("%d requests in %s on one connection", n, time.Since(start))
		})
	}
}

// TestManyConnections: busy connections and idling ones side by side, under
// -race: the busy ones are never cut, all idling ones are, and the watchdog
// goroutine ends with Serve.
func TestManyConnections(t *testing.T) {
	const limit = 200 * time.Millisecond
	opt := HTTPOptions{ReadHeaderTimeout: limit, IdleTimeout: limit, WriteTimeout: 5 * limit}
	url, cancel, done := serve(t, okHandler, opt)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { // busy: requests back to back for 3× the limits
			conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			br := bufio.NewReader(conn)
			for start := time.Now(); time.Since(start) < 3*limit; {
				if err := roundTrip(conn, br); err != nil {
					t.Errorf("busy connection %d cut after %s: %v", i, time.Since(start), err)
					return
				}
			}
		})
	}
	for i := range 50 {
		wg.Go(func() { // idling: silent from the start, or after one request
			start := time.Now()
			conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			if i%2 == 1 {
				if err := roundTrip(conn, bufio.NewReader(conn)); err != nil {
					t.Errorf("idling connection %d: %v", i, err)
					return
				}
			}
			if err := openUntil(conn, start.Add(limit+slack)); err == nil {
				t.Errorf("idling connection %d still open after %s", i, time.Since(start))
			} else if el := time.Since(start); el < limit {
				t.Errorf("idling connection %d cut after %s, before the %s limit", i, el, limit)
			}
		})
	}
	wg.Wait()
	// Serve has served, so it started its watchdog; it is still serving.
	if !watchdogRunning() {
		t.Error("no watchdog goroutine while serving with limits")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// Serve waits for the watchdog to stop before it returns.
	if watchdogRunning() {
		t.Fatal("watchdog goroutine still running after Serve returned")
	}
}

// TestNoLimitsNoWatchdog: zero limits mean none, as in net/http: no
// watchdog runs and quiet connections stay open.
func TestNoLimitsNoWatchdog(t *testing.T) {
	opt := HTTPOptions{MaxHeaderBytes: 1 << 20, ShutdownTimeout: time.Second}
	if w := newWatchdog(opt); w != nil {
		t.Fatalf("watchdog with limits %v for options without timeouts", w.limits)
	}
	url, _, _ := serve(t, okHandler, opt)
	idle := dial(t, url, nil, false)
	if err := roundTrip(idle, bufio.NewReader(idle)); err != nil {
		t.Fatal(err)
	}
	fresh := dial(t, url, nil, false)
	time.Sleep(500 * time.Millisecond)
	for name, conn := range map[string]net.Conn{"idle keep-alive": idle, "fresh": fresh} {
		// A close during the sleep is waiting to be read.
		if err := openUntil(conn, time.Now().Add(50*time.Millisecond)); err != nil {
			t.Fatalf("%s connection closed without any timeout set: %v", name, err)
		}
	}
	if watchdogRunning() {
		t.Fatal("a watchdog goroutine runs without any limit")
	}
}

// TestWatchdogLimits: the limits and fallbacks are net/http's, and the tick
// stays within its bounds.
func TestWatchdogLimits(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name                       string
		opt                        HTTPOptions
		header, idle, active, tick time.Duration
	}{
		{"defaults", HTTPOptions{ReadHeaderTimeout: 10 * s, ReadTimeout: 30 * s, WriteTimeout: 30 * s}, 10 * s, 30 * s, 30 * s, s},
		{"all set", HTTPOptions{ReadHeaderTimeout: 2 * s, ReadTimeout: 30 * s, WriteTimeout: 4 * s, IdleTimeout: 3 * s}, 2 * s, 3 * s, 4 * s, 200 * time.Millisecond},
		{"read timeout only", HTTPOptions{ReadTimeout: 300 * time.Millisecond}, 300 * time.Millisecond, 300 * time.Millisecond, 0, 30 * time.Millisecond},
		{"write timeout only, tick floor", HTTPOptions{WriteTimeout: 50 * time.Millisecond}, 0, 0, 50 * time.Millisecond, minTick},
		{"tick ceiling", HTTPOptions{IdleTimeout: time.Hour}, 0, time.Hour, 0, maxTick},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWatchdog(tc.opt)
			if w == nil {
				t.Fatal("no watchdog")
			}
			want := [numPhases]int64{phaseFresh: int64(tc.header), phaseHeader: int64(tc.header), phaseIdle: int64(tc.idle), phaseActive: int64(tc.active)}
			if w.limits != want || w.tick != tc.tick {
				t.Fatalf("limits %v tick %s, want %v tick %s", w.limits, w.tick, want, tc.tick)
			}
		})
	}
}

// TestWatchdogNeverCutsEarly drives scan with a made-up clock. A start is
// stamped from the coarse clock, so it may be early by as much as the time
// until the next tick: when that tick came late, the cut must wait for the
// late gap too, and only as long as it matters.
func TestWatchdogNeverCutsEarly(t *testing.T) {
	const limit = 300 * time.Millisecond
	ms := int64(time.Millisecond)
	for _, tc := range []struct {
		name      string
		firstTick int64 // after the idle transition at clock 0; then every 30ms
		wantCut   int64
	}{
		// Cut at the first tick past limit + tick.
		{"ticks on time", 30 * ms, 360 * ms},
		// The transition may really have happened just before the late
		// tick, at ~500ms: the limit runs out at ~800ms.
		{"late tick", 500 * ms, 830 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWatchdog(HTTPOptions{IdleTimeout: limit})
			if w.tick != 30*time.Millisecond {
				t.Fatalf("tick %s", w.tick)
			}
			a, b := net.Pipe()
			defer b.Close()
			c := w.track(a)
			c.state.Store(pack(phaseIdle, 0))
			prev := int64(0)
			for now := tc.firstTick; now <= 2*time.Second.Nanoseconds(); now += 30 * ms {
				w.scan(now, now-prev)
				prev = now
				w.mu.Lock()
				_, tracked := w.conns[c]
				w.mu.Unlock()
				if tracked {
					continue
				}
				if now != tc.wantCut {
					t.Fatalf("cut at %dms, want %dms", now/ms, tc.wantCut/ms)
				}
				if _, err := b.Read(make([]byte, 1)); err != io.EOF {
					t.Fatalf("cut connection not closed: read %v", err)
				}
				return
			}
			t.Fatal("never cut")
		})
	}
}

// TestTrackedConnPhases: the transitions, step by step, on one connection.
func TestTrackedConnPhases(t *testing.T) {
	w := newWatchdog(HTTPOptions{ReadHeaderTimeout: time.Second})
	a, b := net.Pipe()
	defer b.Close()
	w.clock.Store(100)
	c := w.track(a)
	peerSends := func() {
		go func() { _, _ = b.Write([]byte("x")) }()
		if n, err := c.Read(make([]byte, 1)); n != 1 || err != nil {
			t.Fatalf("read %d, %v", n, err)
		}
	}
	tlsView := tls.Server(c, &tls.Config{}) // what ConnState gets for TLS
	steps := []struct {
		name  string
		clock int64
		do    func()
		phase phase
		start int64
	}{
		{"accepted", 100, func() {}, phaseFresh, 100},
		{"reads while fresh (handshake, header)", 150, peerSends, phaseFresh, 100},
		{"active", 200, func() { w.connState(c, http.StateActive) }, phaseActive, 200},
		{"background read while active", 250, peerSends, phaseActive, 200},
		{"idle", 300, func() { w.connState(c, http.StateIdle) }, phaseIdle, 300},
		{"first bytes of the next request", 400, peerSends, phaseHeader, 400},
		{"more header bytes", 500, peerSends, phaseHeader, 400},
		{"active, seen through TLS", 600, func() { w.connState(tlsView, http.StateActive) }, phaseActive, 600},
		{"idle, seen through TLS", 700, func() { w.connState(tlsView, http.StateIdle) }, phaseIdle, 700},
		{"hijacked", 800, func() { w.connState(c, http.StateHijacked) }, phaseGone, 0},
		{"reads after hijack", 900, peerSends, phaseGone, 0},
	}
	for _, s := range steps {
		w.clock.Store(s.clock)
		s.do()
		if p, start := unpack(c.state.Load()); p != s.phase || start != s.start {
			t.Fatalf("%s: phase %d from %d, want %d from %d", s.name, p, start, s.phase, s.start)
		}
	}
	w.mu.Lock()
	n := len(w.conns)
	w.mu.Unlock()
	if n != 0 {
		t.Fatalf("hijacked connection still tracked")
	}

	// Close lets go and may be repeated.
	d := w.track(a)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	_ = d.Close()
	w.connState(d, http.StateClosed)
	if p, _ := unpack(d.state.Load()); p != phaseGone || len(w.conns) != 0 {
		t.Fatalf("closed connection: phase %d, %d tracked", p, len(w.conns))
	}
}

// TestCloseWriteForwarded: net/http half-closes before closing a connection
// it rejects; the wrapper must not hide that from it.
func TestCloseWriteForwarded(t *testing.T) {
	w := newWatchdog(HTTPOptions{ReadHeaderTimeout: time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sc, err := w.listener(ln).Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	cw, ok := sc.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("no CloseWrite")
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read after CloseWrite: %v, want EOF", err)
	}
	// Only the write side is closed.
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(sc, make([]byte, 1)); err != nil {
		t.Fatalf("read after CloseWrite: %v", err)
	}

	p, _ := net.Pipe()
	defer p.Close()
	if err := w.track(p).CloseWrite(); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("CloseWrite without support: %v", err)
	}
}

// BenchmarkKeepAliveRequests: one keep-alive loopback client doing GETs on a
// tiny handler, with the timeouts as net/http's deadlines (the old way), as
// the watchdog, and with none.
func BenchmarkKeepAliveRequests(b *testing.B) {
	timeouts := HTTPOptions{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
	deadlines := func(b *testing.B) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: okHandler, ReadHeaderTimeout: timeouts.ReadHeaderTimeout, ReadTimeout: timeouts.ReadTimeout,
			WriteTimeout: timeouts.WriteTimeout, IdleTimeout: timeouts.IdleTimeout}
		go func() { _ = srv.Serve(ln) }()
		b.Cleanup(func() { _ = srv.Close() })
		return "http://" + ln.Addr().String()
	}
	for _, bc := range []struct {
		name  string
		start func(b *testing.B) string
	}{
		{"deadlines", deadlines},
		{"watchdog", func(b *testing.B) string { u, _, _ := serve(b, okHandler, timeouts); return u }},
		{"none", func(b *testing.B) string { u, _, _ := serve(b, okHandler, HTTPOptions{}); return u }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			conn := dial(b, bc.start(b), nil, false)
			br := bufio.NewReader(conn)
			b.ReportAllocs()
			for b.Loop() {
				if err := get(conn, br); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
