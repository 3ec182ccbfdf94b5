package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestStreamNotCut: a response declared a stream with StartStream outlives
// write_timeout while it keeps writing, plain and TLS; a response that does
// not declare it is cut as usual; and once the stream's handler returns, the
// connection is policed again (an idle keep-alive is closed).
func TestStreamNotCut(t *testing.T) {
	const limit = 200 * time.Millisecond
	for _, tc := range []struct {
		name   string
		stream bool
		tls    bool
	}{
		{"stream", true, false},
		{"stream over TLS", true, true},
		{"not a stream", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started := make(chan bool, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.stream {
					started <- StartStream(r)
				}
				rc := http.NewResponseController(w)
				w.Header().Set("Content-Type", "text/event-stream")
				for i := range 15 { // 15 × limit/3 = 5 limits
					if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
						return
					}
					if rc.Flush() != nil {
						return
					}
					time.Sleep(limit / 3)
				}
			})
			opt := HTTPOptions{ReadHeaderTimeout: limit, IdleTimeout: limit, WriteTimeout: limit}
			var clientTLS *tls.Config
			if tc.tls {
				clientTLS = tlsOptions(t, &opt)
			}
			url, _, _ := serve(t, h, opt)
			conn := dial(t, url, clientTLS, false)
			br := bufio.NewReader(conn)
			if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			body, err := io.ReadAll(resp.Body)
			lived := time.Since(start)
			if !tc.stream {
				if err == nil {
					t.Fatalf("a plain response wrote for %s past the %s write limit uncut", lived, limit)
				}
				return
			}
			if !<-started {
				t.Fatal("StartStream reported no watchdog")
			}
			if err != nil {
				t.Fatalf("stream cut after %s (limit %s): %v; got %q", lived, limit, err, body)
			}
			if lived < 4*limit {
				t.Fatalf("stream ended after %s", lived)
			}
			// Back to idle: the watchdog closes the keep-alive connection.
			_ = conn.SetReadDeadline(time.Now().Add(limit + slack))
			if n, err := br.Read(make([]byte, 1)); err == nil || isTimeout(err) {
				t.Fatalf("connection still open after the stream and an idle limit (read %d, %v)", n, err)
			}
		})
	}
}

// TestStartStreamWithoutWatchdog: no timeouts, no watchdog: StartStream
// reports false and does nothing.
func TestStartStreamWithoutWatchdog(t *testing.T) {
	got := make(chan bool, 1)
	url, _, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- StartStream(r)
	}), HTTPOptions{})
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if <-got {
		t.Fatal("StartStream reported a watchdog where none runs")
	}
}
