package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzHandler sends arbitrary requests to every endpoint, with and without
// the identity cache. Whatever arrives, the answer is one of the documented
// statuses with a JSON body (never a 500, which is what a recovered panic
// gives), and a fixed probe afterwards still gets the same bytes: no pooled
// buffer or cache entry was corrupted by the request before it.
func FuzzHandler(f *testing.F) {
	seeds := []struct {
		method      uint8
		path, query string
		key         uint8
		body        string
		encoding    string
		cache       bool
	}{
		{0, "/api/v1/flags/", "", 0, "", "", false},
		{0, "/api/v1/flags/", "feature=new_checkout", 1, "", "gzip", false},
		{1, "/api/v1/identities/", "", 0, `{"identifier":"u1","traits":[{"trait_key":"plan","trait_value":"pro"}]}`, "gzip", true},
		{1, "/api/v1/identities", "", 1, `{"identifier":"u1","traits":[{"trait_key":"plan","trait_value":null}],"transient":true}`, "", false},
		{0, "/api/v1/identities/", "identifier=%ff%fe", 0, "", "", true},
		{1, "/api/v1/identities/", "", 0, `{"identifier":"` + strings.Repeat("x", 2001) + `"}`, "", false},
		{1, "/api/v1/identities/", "", 0, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`, "", false},
		{1, "/api/v1/identities/", "", 0, "{\"identifier\":\"\xff\"}", "", false},
		{0, "/api/v1/environment-document/", "", 1, "", "gzip;q=0", false},
		{0, "/api/v1/environment-document/", "", 0, "", "", false},
		{1, "/api/v1/analytics/flags/", "", 0, `{"f":1}`, "", false},
		{2, "/proxy/health/readiness", "", 2, "", "", false},
		{3, "/api/v1/flags/", "", 0, "", "", false},
		{4, "/nope", "", 3, "x", "*", false},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.key, []byte(s.body), s.encoding, s.cache)
	}
	plain, _ := newTestHandler(f, nil)
	cached, _ := newTestHandler(f, func(o *Options) { o.IdentityCacheSize = 8 })
	const probeBody = `{"identifier":"probe-user","traits":[{"trait_key":"plan","trait_value":"enterprise"}]}`
	probe := func(h http.Handler) []byte {
		return do(h, "POST", "/api/v1/identities/", probeBody, "X-Environment-Key", clientKey).Body.Bytes()
	}
	wantProbe := probe(plain)
	methods := []string{"GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE"}
	keys := []string{clientKey, serverKey, "", "ser.not-a-key", clientKey + " "}

	f.Fuzz(func(t *testing.T, method uint8, path, query string, key uint8, body []byte, encoding string, cache bool) {
		h := plain
		if cache {
			h = cached
		}
		req := &http.Request{
			Method:        methods[int(method)%len(methods)],
			URL:           &url.URL{Path: path, RawQuery: query},
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        http.Header{},
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
			RemoteAddr:    "192.0.2.1:1234",
			Host:          "fledge.test",
		}
		req.Header.Set("X-Environment-Key", keys[int(key)%len(keys)])
		if encoding != "" {
			req.Header.Set("Accept-Encoding", encoding)
		}
		if key%2 == 1 {
			req.Header.Set("Origin", "https://app.example.com")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		switch rec.Code {
		case 200, 304, 400, 401, 404, 405, 413, 422, 503:
		default:
			t.Fatalf("%s %q?%q: status %d\n%s", req.Method, path, query, rec.Code, rec.Body.Bytes())
		}
		got := rec.Body.Bytes()
		if cl := rec.Header().Get("Content-Length"); cl != "" && req.Method != "HEAD" && cl != strconv.Itoa(len(got)) {
			t.Fatalf("Content-Length %s for %d bytes", cl, len(got))
		}
		if req.Method == "HEAD" || rec.Code == 304 || (req.Method == "OPTIONS" && rec.Code == 200) || len(got) == 0 && rec.Code == 200 {
			// No body: HEAD, Not Modified, a CORS preflight, an analytics ack.
		} else {
			if rec.Header().Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(got))
				if err != nil {
					t.Fatalf("bad gzip: %v", err)
				}
				if got, err = io.ReadAll(zr); err != nil {
					t.Fatalf("bad gzip: %v", err)
				}
			}
			if !json.Valid(got) {
				t.Fatalf("%s %q: status %d, body not JSON: %q", req.Method, path, rec.Code, got)
			}
		}
		if p := probe(h); !bytes.Equal(p, wantProbe) {
			t.Fatalf("after %s %q the probe got\n%s\nwant\n%s", req.Method, path, p, wantProbe)
		}
	})
}
