package fakeapi

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// rebindTimeout bounds how long bringing the listener back up may retry.
// Re-binding a port we just released almost always succeeds at once (Go sets
// SO_REUSEADDR), but another socket may briefly hold it.
const rebindTimeout = 5 * time.Second

// switchListener is a net.Listener whose underlying TCP socket can be closed
// and re-opened on the same address. FaultDown needs real "connection refused"
// errors, which only a closed socket gives, while the server (and the URL the
// code under test was configured with) must survive the outage unchanged.
type switchListener struct {
	addr net.Addr

	mu      sync.Mutex
	cur     net.Listener  // nil while down
	changed chan struct{} // closed and replaced on every state change
	closed  bool
}

func newSwitchListener(network, address string) (*switchListener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return &switchListener{addr: ln.Addr(), cur: ln, changed: make(chan struct{})}, nil
}

// Accept waits while the listener is down instead of failing, because
// http.Server.Serve gives up for good on a non-temporary Accept error.
func (l *switchListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, net.ErrClosed
		}
		cur, changed := l.cur, l.changed
		l.mu.Unlock()

		if cur == nil {
			<-changed
			continue
		}
		c, err := cur.Accept()
		l.mu.Lock()
		stale := l.cur != cur && !l.closed
		l.mu.Unlock()
		if err != nil {
			if stale {
				continue // taken down on purpose: wait for it to come back
			}
			return nil, err
		}
		if stale {
			// Accepted just before going down: the outage must not leak a
			// working connection.
			c.Close()
			continue
		}
		return c, nil
	}
}

// down closes the socket so that new connections are refused by the kernel.
func (l *switchListener) down() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.cur == nil {
		return
	}
	l.cur.Close()
	l.cur = nil
	l.signal()
}

// up re-binds the original address. It panics if the port cannot be had back:
// a test relying on the same URL could not continue meaningfully.
func (l *switchListener) up() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.cur != nil {
		return
	}
	deadline := time.Now().Add(rebindTimeout)
	for {
		ln, err := net.Listen(l.addr.Network(), l.addr.String())
		if err == nil {
			l.cur = ln
			l.signal()
			return
		}
		if time.Now().After(deadline) {
			panic(fmt.Sprintf("fakeapi: cannot re-bind %s after FaultDown: %v", l.addr, err))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// signal wakes Accept calls waiting for a state change. Callers hold l.mu.
func (l *switchListener) signal() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *switchListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var err error
	if l.cur != nil {
		err = l.cur.Close()
		l.cur = nil
	}
	l.signal()
	return err
}

// Addr stays valid while down, so httptest and URL() keep reporting the port.
func (l *switchListener) Addr() net.Addr { return l.addr }
