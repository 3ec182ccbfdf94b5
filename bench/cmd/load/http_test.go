package main

import (
	"bufio"
	"strings"
	"testing"
)

func TestReadResponse(t *testing.T) {
	cases := []struct {
		name, raw string
		head      bool
		status    int
		size      int64
		keep      bool
		encoding  string
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, 200, 5, true, ""},
		{"chunked", "HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nTrailer: 1\r\n\r\n", false, 200, 5, true, "gzip"},
		{"close", "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno", false, 503, 2, false, ""},
		{"http/1.0 until EOF", "HTTP/1.0 200 OK\r\n\r\nuntil eof", false, 200, 9, false, ""},
		{"not modified", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", false, 304, 0, true, ""},
		{"head", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true, 200, 0, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := c.raw
			if c.keep { // a second response follows on the connection
				raw += "HTTP/1.1 204 No Content\r\n\r\n"
			}
			r := bufio.NewReader(strings.NewReader(raw))
			resp, keep, err := readResponse(r, c.head)
			if err != nil {
				t.Fatal(err)
			}
			if resp.status != c.status || resp.bodySize != c.size || keep != c.keep || resp.encoding != c.encoding {
				t.Fatalf("got status %d size %d keep %v encoding %q", resp.status, resp.bodySize, keep, resp.encoding)
			}
			if keep { // the next response starts right after this one
				if next, _, err := readResponse(r, false); err != nil || next.status != 204 {
					t.Fatalf("next response: %+v, %v", next, err)
				}
			}
		})
	}
	for _, bad := range []string{"garbage\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"} {
		if _, _, err := readResponse(bufio.NewReader(strings.NewReader(bad)), false); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestNewTargetOnlyLoopback(t *testing.T) {
	o := options{method: "post", headers: stringList{"Content-Type: application/json"}}
	tg, err := newTarget("http://127.0.0.1:8000/api/v1/identities/?x=1", o, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "POST /api/v1/identities/?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: fledge-bench-load\r\n" +
		"Content-Type: application/json\r\nContent-Length: 0\r\n\r\n"
	if string(tg.request) != want {
		t.Fatalf("request:\n%q\nwant\n%q", tg.request, want)
	}
	for _, u := range []string{"http://example.com/", "http://10.0.0.1:80/", "https://127.0.0.1/", "http://[::1]:1/"} {
		_, err := newTarget(u, options{method: "GET"}, nil)
		if (err == nil) != (u == "http://[::1]:1/") {
			t.Errorf("%s: err = %v", u, err)
		}
	}
}
