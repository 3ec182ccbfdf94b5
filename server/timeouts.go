package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The connection timeouts of HTTPOptions are enforced here rather than by
// net/http: with its timeouts set, net/http arms socket deadlines on every
// request (about a dozen clock reads and four runtime timer updates), which
// profiling put at ~4% of throughput. Instead, each connection records its
// phase and when the phase began in one atomic word, stamped from a coarse
// clock, and a single watchdog goroutine closes the connections that have
// outlived their phase's limit. The per-request cost is a few atomic loads
// and stores.
//
// The phases mirror the deadlines net/http would set:
//
//	fresh  accepted; TLS handshake and first header not yet read (header limit, from Accept)
//	idle   keep-alive, between requests (idle limit)
//	header first bytes of the next request seen (header limit, from those bytes)
//	active header read; handler running, response being written (WriteTimeout)
//	stream a long-lived response (server-sent events) the handler declared
//	       with StartStream: never cut; the handler bounds its own writes
//
// A connection is never closed before its limit has really elapsed, and is
// closed about two watchdog ticks after it at the latest (later only if the
// watchdog itself ran late).

// phase is a tracked connection's stage, stored in the low bits of its state.
type phase uint64

const (
	phaseGone   phase = iota // closed, hijacked or cut: no longer policed
	phaseFresh               // accepted, first request's header incomplete
	phaseIdle                // keep-alive, waiting for the next request
	phaseHeader              // next request's first bytes arrived
	phaseActive              // header read; handler and response under way
	phaseStream              // a streaming response (StartStream): no limit
	numPhases
)

const (
	phaseBits = 3
	phaseMask = 1<<phaseBits - 1
)

// pack puts a phase and its start (nanoseconds on the watchdog's clock) in
// one word, so that a transition is a single atomic store and the watchdog
// never sees a phase paired with another phase's start.
func pack(p phase, start int64) uint64 { return uint64(start)<<phaseBits | uint64(p) }

func unpack(s uint64) (phase, int64) { return phase(s & phaseMask), int64(s >> phaseBits) }

const (
	minTick = 10 * time.Millisecond
	maxTick = time.Second
)

// watchdog polices the connections accepted through its listener.
type watchdog struct {
	base   time.Time
	clock  atomic.Int64 // nanoseconds since base, as of the last tick
	limits [numPhases]int64
	tick   time.Duration
	// maxLimit bounds how long a clock delay can matter (see margin).
	maxLimit int64

	// mu guards conns. It is taken only when a connection is accepted or
	// let go, and once per tick, never per request.
	mu    sync.Mutex
	conns map[*trackedConn]struct{}

	// Owned by the watchdog goroutine.
	published int64   // the clock value stored at the last tick
	gaps      []gapAt // recent clock gaps, decreasing (a sliding-window maximum)
	cut       []*trackedConn
}

// gapAt is how stale the clock could have been read before a tick: the time
// from the previous clock value to just after the tick's new value was stored.
type gapAt struct{ at, gap int64 }

// newWatchdog returns nil when no limit is set, so that a server without
// timeouts wraps nothing and runs no watchdog. Limits fall back as net/http's
// do: the header and idle limits to ReadTimeout. Zero (or negative, which
// configuration rejects) means no limit.
func newWatchdog(opt HTTPOptions) *watchdog {
	header := opt.ReadHeaderTimeout
	if header == 0 {
		header = opt.ReadTimeout
	}
	idle := opt.IdleTimeout
	if idle == 0 {
		idle = opt.ReadTimeout
	}
	w := &watchdog{base: time.Now(), conns: make(map[*trackedConn]struct{})}
	w.limits[phaseFresh] = int64(max(header, 0))
	w.limits[phaseHeader] = int64(max(header, 0))
	w.limits[phaseIdle] = int64(max(idle, 0))
	w.limits[phaseActive] = int64(max(opt.WriteTimeout, 0))
	w.limits[phaseStream] = 0 // streams bound their own writes (StartStream)
	var smallest int64
	for _, l := range w.limits {
		if l > 0 && (smallest == 0 || l < smallest) {
			smallest = l
		}
		w.maxLimit = max(w.maxLimit, l)
	}
	if smallest == 0 {
		return nil
	}
	w.tick = min(max(time.Duration(smallest/10), minTick), maxTick)
	return w
}

// start runs the watchdog until the returned stop is called; stop returns
// once the goroutine has exited.
func (w *watchdog) start() (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(quit)
	}()
	return func() {
		close(quit)
		<-done
	}
}

func (w *watchdog) run(quit <-chan struct{}) {
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		prev := w.published
		w.published = int64(time.Since(w.base))
		w.clock.Store(w.published)
		// Measured after the store: every transition that read prev did so
		// before now, so now-prev bounds how early its recorded start can be.
		now := int64(time.Since(w.base))
		w.scan(now, now-prev)
	}
}

// scan closes the connections whose phase has outlived its limit. gap is
// how stale the clock could have been since the previous scan.
func (w *watchdog) scan(now, gap int64) {
	margin := w.margin(now, gap)
	w.mu.Lock()
	for c := range w.conns {
		s := c.state.Load()
		p, start := unpack(s)
		limit := w.limits[p]
		if limit == 0 || now-start <= limit+margin {
			continue
		}
		// The swap fails if the connection moved on meanwhile (a request
		// arrived): it is then judged afresh next tick.
		if c.state.CompareAndSwap(s, pack(phaseGone, 0)) {
			delete(w.conns, c)
			w.cut = append(w.cut, c)
		}
	}
	w.mu.Unlock()
	for i, c := range w.cut {
		// Closed outside the lock: Close may block, and net/http's own
		// Close of the connection will call forget.
		_ = c.Conn.Close()
		w.cut[i] = nil
	}
	w.cut = w.cut[:0]
}

// margin is how early a recorded start may be. A start is the clock value
// read at the transition, so it can precede the real one by up to the gap
// until the next tick stored a newer value: one tick normally, more when the
// watchdog was delayed (GC, an overloaded CPU). Adding the largest gap that
// can still matter keeps the promise never to cut before the limit. A gap
// stops mattering maxLimit after it ended: by then every start it affected
// is more than maxLimit old in real time.
func (w *watchdog) margin(now, gap int64) int64 {
	for n := len(w.gaps); n > 0 && w.gaps[n-1].gap <= gap; n-- {
		w.gaps = w.gaps[:n-1]
	}
	w.gaps = append(w.gaps, gapAt{at: now, gap: gap})
	for w.gaps[0].at < now-w.maxLimit {
		w.gaps = w.gaps[1:]
	}
	return max(w.gaps[0].gap, int64(w.tick))
}

// listener makes ln's connections tracked from the moment they are
// accepted, so the header limit counts from Accept as net/http's does.
func (w *watchdog) listener(ln net.Listener) net.Listener {
	return &trackingListener{Listener: ln, w: w}
}

type trackingListener struct {
	net.Listener
	w *watchdog
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.w.track(c), nil
}

func (w *watchdog) track(nc net.Conn) *trackedConn {
	c := &trackedConn{Conn: nc, w: w}
	c.state.Store(pack(phaseFresh, w.clock.Load()))
	w.mu.Lock()
	w.conns[c] = struct{}{}
	w.mu.Unlock()
	return c
}

// forget stops policing c. Idempotent.
func (w *watchdog) forget(c *trackedConn) {
	w.mu.Lock()
	delete(w.conns, c)
	c.state.Store(pack(phaseGone, 0))
	w.mu.Unlock()
}

// connState is the http.Server's ConnState hook: net/http reports the
// request boundaries the phases need (it runs on the connection's own
// goroutine, once per request for Active and for Idle).
func (w *watchdog) connState(nc net.Conn, st http.ConnState) {
	c := trackedOf(nc)
	if c == nil {
		return
	}
	switch st {
	case http.StateActive:
		c.state.Store(pack(phaseActive, w.clock.Load()))
	case http.StateIdle:
		c.state.Store(pack(phaseIdle, w.clock.Load()))
	case http.StateHijacked:
		// Its new owner's to police now.
		w.forget(c)
	case http.StateClosed:
		// Usually forgotten by Close already; the check saves the lock.
		if p, _ := unpack(c.state.Load()); p != phaseGone {
			w.forget(c)
		}
	}
}

// connContext is the http.Server's ConnContext hook: it makes the tracked
// connection reachable from its requests' contexts, for StartStream.
func (w *watchdog) connContext(ctx context.Context, nc net.Conn) context.Context {
	if c := trackedOf(nc); c != nil {
		return context.WithValue(ctx, trackedConnKey{}, c)
	}
	return ctx
}

type trackedConnKey struct{}

// StartStream tells the connection watchdog that r's response is a stream
// (server-sent events) meant to outlive write_timeout_seconds: the
// connection is not cut while the handler runs. Its phase returns to the
// usual ones when the handler returns (net/http then reports the
// connection idle), so a keep-alive connection is policed again after the
// stream. The handler takes over what the watchdog guarded: it must bound
// each write itself (a write deadline through http.ResponseController) and
// end the stream eventually. It reports whether the request was under the
// watchdog (false when no connection timeout is set, or for requests that
// did not come through Serve).
func StartStream(r *http.Request) bool {
	c, _ := r.Context().Value(trackedConnKey{}).(*trackedConn)
	if c == nil {
		return false
	}
	for {
		s := c.state.Load()
		if p, _ := unpack(s); p != phaseActive {
			// Cut already (gone), or stream already: nothing to do.
			return p == phaseStream
		}
		if c.state.CompareAndSwap(s, pack(phaseStream, c.w.clock.Load())) {
			return true
		}
	}
}

// trackedOf finds the tracked connection under what net/http hands the
// ConnState hook: the connection itself, or the *tls.Conn wrapping it.
func trackedOf(nc net.Conn) *trackedConn {
	switch c := nc.(type) {
	case *trackedConn:
		return c
	case *tls.Conn:
		t, _ := c.NetConn().(*trackedConn)
		return t
	}
	return nil
}

// trackedConn is an accepted connection the watchdog polices.
type trackedConn struct {
	net.Conn
	w     *watchdog
	state atomic.Uint64 // pack(phase, start)
}

// Read notices the first bytes of a request on an idle connection: net/http
// starts the header deadline there too, so that a keep-alive connection's
// idle time is not charged to its next request's header.
func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		if s := c.state.Load(); phase(s&phaseMask) == phaseIdle {
			// Not a plain store: it must not undo a concurrent transition
			// (or the watchdog's cut).
			c.state.CompareAndSwap(s, pack(phaseHeader, c.w.clock.Load()))
		}
	}
	return n, err
}

// Close lets the connection go. It may be called more than once (net/http
// closes a connection the watchdog has cut); later calls return the
// underlying connection's error.
func (c *trackedConn) Close() error {
	c.w.forget(c)
	return c.Conn.Close()
}

// CloseWrite is forwarded because net/http half-closes (sends FIN) before
// closing connections it rejects, and embedding would hide it.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// ReadFrom is forwarded so that responses copied from files or sockets keep
// the sendfile/splice path net/http takes when the connection has it.
func (c *trackedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}
