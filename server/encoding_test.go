package server

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/fledge-flags/fledge/bench/workload"
	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/source"
)

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		header []string // Accept-Encoding lines; nil = none
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"gzip"}, true},
		{[]string{"GZIP"}, true},
		{[]string{"x-gzip"}, true},
		{[]string{"gzip, deflate, br"}, true},
		{[]string{"deflate,gzip"}, true},
		{[]string{"  gzip  ;  q=0.5 "}, true},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip; q=0.000"}, false},
		{[]string{"gzip;Q=0"}, false},
		{[]string{"gzip;q=1.0"}, true},
		{[]string{"gzip;q=abc"}, false}, // malformed weight: not acceptable
		{[]string{"gzip;q=2"}, false},   // out of range: not acceptable
		{[]string{"gzip;q=-1"}, false},
		{[]string{"gzip;level=1;q=0.1"}, true},
		{[]string{"identity"}, false},
		{[]string{"*"}, true},
		{[]string{"*;q=0"}, false},
		{[]string{"*, gzip;q=0"}, false}, // an explicit gzip entry wins over *
		{[]string{"gzip;q=0, *"}, false},
		{[]string{"*;q=0", "gzip"}, true}, // entries across header lines
		{[]string{"deflate", "gzip;q=0.1"}, true},
		{[]string{",,gzip,,"}, true},
		{[]string{"gzipx"}, false},
		{[]string{"br;q=1, identity;q=0.5"}, false},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		for _, v := range tc.header {
			r.Header.Add("Accept-Encoding", v)
		}
		if got := acceptsGzip(r); got != tc.want {
			t.Errorf("Accept-Encoding %q: acceptsGzip = %v, want %v", tc.header, got, tc.want)
		}
	}
}

// TestPreparedBodies checks the bodies served from their pre-compressed form
// (the flags list and the environment document): the right form for the
// request, headers that match it, and the same content either way.
func TestPreparedBodies(t *testing.T) {
	p := workload.P1
	clientKey, serverKey := workload.ClientKey(p), workload.ServerKey(p)
	snap, err := source.Build(workload.Document(p, 1), nil, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New([]registry.Pair{{ClientKey: clientKey, ServerKey: serverKey}})
	reg.Envs()[0].Store(snap)
	h := New(Options{Registry: reg, AllowOrigins: []string{"*"}})
	tests := []struct {
		name, path, key string
		want            []byte
	}{
		{"flags, client key", "/api/v1/flags/", clientKey, snap.FlagsJSON(environment.ClientKey)},
		{"flags, server key", "/api/v1/flags/", serverKey, snap.FlagsJSON(environment.ServerKey)},
		{"environment document", "/api/v1/environment-document/", serverKey, snap.Document.JSON},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.want) < 1000 {
				t.Fatalf("the example body is %d bytes, too short to be compressed: the test needs a bigger one", len(tc.want))
			}
			for _, c := range []struct {
				what     string
				headers  []string
				gzipped  bool
				wantVary string
			}{
				{"no Accept-Encoding", nil, false, "Accept-Encoding"},
				{"gzip", []string{"Accept-Encoding", "gzip, deflate"}, true, "Accept-Encoding"},
				{"gzip refused", []string{"Accept-Encoding", "gzip;q=0"}, false, "Accept-Encoding"},
				{"gzip with CORS", []string{"Accept-Encoding", "gzip", "Origin", "https://app.example.com"}, true, "Origin, Accept-Encoding"},
				{"plain with CORS", []string{"Origin", "https://app.example.com"}, false, "Origin, Accept-Encoding"},
			} {
				rec := do(h, "GET", tc.path, "", append([]string{"X-Environment-Key", tc.key}, c.headers...)...)
				if rec.Code != http.StatusOK {
					t.Fatalf("%s: status %d", c.what, rec.Code)
				}
				body := rec.Body.Bytes()
				if got := rec.Header().Get("Content-Length"); got != strconv.Itoa(len(body)) {
					t.Errorf("%s: Content-Length %q for %d bytes", c.what, got, len(body))
				}
				// Exactly one Vary line: some caches and CDNs read only the
				// first of several.
				if got := rec.Header()["Vary"]; c.wantVary == "" && len(got) != 0 || c.wantVary != "" && (len(got) != 1 || got[0] != c.wantVary) {
					t.Errorf("%s: Vary lines %q, want the one line %q", c.what, got, c.wantVary)
				}
				if got := rec.Header().Get("Content-Type"); got != "application/json" {
					t.Errorf("%s: Content-Type %q", c.what, got)
				}
				if c.gzipped {
					if got := rec.Header().Get("Content-Encoding"); got != "gzip" {
						t.Fatalf("%s: Content-Encoding %q", c.what, got)
					}
					zr, err := gzip.NewReader(bytes.NewReader(body))
					if err != nil {
						t.Fatalf("%s: %v", c.what, err)
					}
					if body, err = io.ReadAll(zr); err != nil {
						t.Fatalf("%s: %v", c.what, err)
					}
				} else if got := rec.Header().Get("Content-Encoding"); got != "" {
					t.Errorf("%s: Content-Encoding %q", c.what, got)
				}
				if !bytes.Equal(body, tc.want) {
					t.Errorf("%s: body differs from the snapshot's", c.what)
				}
			}
			// HEAD: the same headers, no body.
			head := do(h, "HEAD", tc.path, "", "X-Environment-Key", tc.key, "Accept-Encoding", "gzip")
			if head.Code != http.StatusOK || head.Body.Len() != 0 || head.Header().Get("Content-Encoding") != "gzip" {
				t.Errorf("HEAD: status %d, %d body bytes, encoding %q", head.Code, head.Body.Len(), head.Header().Get("Content-Encoding"))
			}
		})
	}
	// The shared header values must come out of every response unchanged.
	for range 3 {
		do(h, "GET", "/api/v1/flags/", "", "X-Environment-Key", clientKey, "Accept-Encoding", "gzip", "Origin", "https://a.example.com")
	}
	if got := joinValues(varyAcceptEncoding); got != "Accept-Encoding" {
		t.Errorf("shared Vary value changed to %q", got)
	}
	if len(snap.Flags(environment.ClientKey).GzipLength) != 1 || len(snap.UpdatedAtHeader) != 1 {
		t.Error("a snapshot's shared header values changed")
	}
}

// TestShortBodiesNotCompressed: a prepared body under the threshold has no
// gzip form, so it is served plain and does not vary on Accept-Encoding.
func TestShortBodiesNotCompressed(t *testing.T) {
	h, env := newTestHandler(t, nil)
	want := env.Snapshot().FlagsJSON(environment.ClientKey)
	if len(want) >= environment.GzipMinBytes {
		t.Fatalf("the example flags list is %d bytes: the test needs one under %d", len(want), environment.GzipMinBytes)
	}
	rec := do(h, "GET", "/api/v1/flags/", "", "X-Environment-Key", clientKey, "Accept-Encoding", "gzip")
	if rec.Header().Get("Content-Encoding") != "" || rec.Header().Get("Vary") != "" || !bytes.Equal(rec.Body.Bytes(), want) {
		t.Errorf("encoding %q, Vary %q, body %s", rec.Header().Get("Content-Encoding"), rec.Header().Get("Vary"), rec.Body.Bytes())
	}
}

func joinValues(v []string) string {
	var b bytes.Buffer
	for i, s := range v {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s)
	}
	return b.String()
}
