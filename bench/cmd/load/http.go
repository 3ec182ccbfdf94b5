package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// target is a parsed URL and the request bytes sent on every iteration
// (with -template, the template each connection builds its request from).
type target struct {
	url     string
	addr    string
	request []byte
	tmpl    *reqTemplate // nil: request is sent as it is
	head    bool
	pid     int // server process, for its CPU time; 0 = unknown
}

// newTarget builds the request. seq is the run's {{seq}} counter, shared
// by every target.
func newTarget(rawURL string, o options, seq *atomic.Uint64) (*target, error) {
	if o.template && strings.Contains(strings.SplitN(rawURL, "?", 2)[0], "{{") {
		return nil, fmt.Errorf("-url %q: placeholders go in the query string or the body only", rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("-url: only http:// is supported, got %q", rawURL)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
	}
	if !isLoopback(host) {
		return nil, fmt.Errorf("-url: %q is not a loopback host; load only targets this machine", host)
	}
	var body []byte
	if o.bodyFile != "" {
		if body, err = os.ReadFile(o.bodyFile); err != nil {
			return nil, err
		}
	}
	method := strings.ToUpper(o.method)
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fledge-bench-load\r\n", method, u.RequestURI(), u.Host)
	for _, h := range o.headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(h, "\r\n") {
			return nil, fmt.Errorf("-H %q: want 'Name: value'", h)
		}
		fmt.Fprintf(&b, "%s: %s\r\n", strings.TrimSpace(name), strings.TrimSpace(value))
	}
	withLength := body != nil || method == "POST" || method == "PUT" || method == "PATCH"
	t := &target{url: rawURL, addr: net.JoinHostPort(host, port), head: method == "HEAD"}
	if o.template {
		if t.tmpl, err = newReqTemplate(b.Bytes(), body, withLength, o.randMax, seq); err != nil {
			return nil, err
		}
		return t, nil
	}
	if withLength {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	t.request = b.Bytes()
	return t, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// conn is one keep-alive connection.
type conn struct {
	t        *target
	timeout  time.Duration
	c        net.Conn
	r        *bufio.Reader
	deadline time.Time
	// With a template: this connection's request, the places of its
	// per-request values, and its random source.
	req   []byte
	slots []slot
	rng   *rand.Rand
}

// newConn prepares connection number n to t (it dials on first use).
func newConn(t *target, n int, timeout time.Duration) *conn {
	c := &conn{t: t, timeout: timeout}
	if t.tmpl != nil {
		c.req, c.slots = t.tmpl.build(n)
		c.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return c
}

func (c *conn) close() {
	if c.c != nil {
		_ = c.c.Close()
		c.c = nil
	}
}

// response is what the load generator keeps of a response.
type response struct {
	status   int
	bodySize int64
	encoding string
}

// do sends the request and reads the whole response. On any error the
// connection is closed, and the next call dials again.
func (c *conn) do(now time.Time) (response, error) {
	if c.c == nil {
		nc, err := net.DialTimeout("tcp", c.t.addr, c.timeout)
		if err != nil {
			return response{}, err
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c.c = nc
		if c.r == nil {
			c.r = bufio.NewReaderSize(nc, 64<<10)
		} else {
			c.r.Reset(nc)
		}
		c.deadline = time.Time{}
	}
	// Moving a deadline costs a timer update, so it is pushed forward at
	// most once a second: requests time out after timeout..timeout+1s.
	if now.Add(c.timeout).After(c.deadline) {
		c.deadline = now.Add(c.timeout + time.Second)
		_ = c.c.SetDeadline(c.deadline)
	}
	req := c.t.request
	if c.t.tmpl != nil {
		c.t.tmpl.fill(c.req, c.slots, c.rng)
		req = c.req
	}
	if _, err := c.c.Write(req); err != nil {
		c.close()
		return response{}, err
	}
	resp, keep, err := readResponse(c.r, c.t.head)
	if err != nil || !keep {
		c.close()
	}
	return resp, err
}

var (
	errMalformed   = errors.New("malformed HTTP response")
	errUnsupported = errors.New("response without Content-Length or chunked framing")
)

// readResponse reads one HTTP/1.1 response, discarding the body. keep is
// false when the server asked to close the connection.
func readResponse(r *bufio.Reader, head bool) (resp response, keep bool, err error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return resp, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return resp, false, errMalformed
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return resp, false, errMalformed
	}
	resp.status = code
	keep = line[7] == '1' // HTTP/1.1 defaults to keep-alive
	length, chunked := int64(-1), false
	for {
		line, err = r.ReadSlice('\n')
		if err != nil {
			return resp, false, err
		}
		if len(line) <= 2 {
			break // "\r\n": end of headers
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return resp, false, errMalformed
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 {
				return resp, false, errMalformed
			}
			length = n
		case asciiEqualFold(name, "transfer-encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "connection"):
			if asciiEqualFold(value, "close") {
				keep = false
			}
		case asciiEqualFold(name, "content-encoding"):
			resp.encoding = string(value)
		}
	}
	switch {
	case head || code/100 == 1 || code == 204 || code == 304:
		return resp, keep, nil
	case chunked:
		resp.bodySize, err = discardChunked(r)
		return resp, keep && err == nil, err
	case length >= 0:
		n, err := r.Discard(int(length))
		resp.bodySize = int64(n)
		return resp, keep && err == nil, err
	case !keep:
		n, err := io.Copy(io.Discard, r)
		resp.bodySize = n
		return resp, false, err
	default:
		return resp, false, errUnsupported
	}
}

func discardChunked(r *bufio.Reader) (int64, error) {
	var total int64
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return total, err
		}
		line = bytes.TrimSpace(line)
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(line), 16, 64)
		if err != nil || size < 0 {
			return total, errMalformed
		}
		if size == 0 {
			for { // trailers, then the empty line
				line, err = r.ReadSlice('\n')
				if err != nil {
					return total, err
				}
				if len(line) <= 2 {
					return total, nil
				}
			}
		}
		if _, err := r.Discard(int(size)); err != nil {
			return total, err
		}
		total += size
		if _, err := r.Discard(2); err != nil { // CRLF after the chunk
			return total, err
		}
	}
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
