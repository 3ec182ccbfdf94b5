package fakeapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	serverKey = "ser.AbCdEfGhIjKlMnOpQrStUv"
	clientKey = "AQ9T6LixPqYMJkuqGJy3t2"
	updatedAt = "2025-11-16T13:28:31.244331+00:00"
	// lastModified is updatedAt truncated to the second, as an HTTP date.
	lastModified = "Sun, 16 Nov 2025 13:28:31 GMT"
	// updatedAtEpoch is updatedAt as X-Flagsmith-Document-Updated-At.
	updatedAtEpoch = "1763299711.244331"
)

// testDoc returns a document with n identity overrides. One value holds HTML
// characters to catch re-encoding that escapes them.
func testDoc(n int) []byte {
	overrides := make([]any, n)
	for i := range overrides {
		overrides[i] = map[string]any{
			"identifier":          fmt.Sprintf("user-%02d", i),
			"identity_uuid":       fmt.Sprintf("00000000-0000-0000-0000-%012d", i),
			"environment_api_key": clientKey,
			"identity_features": []any{map[string]any{
				"feature":             map[string]any{"id": 1, "name": "banner", "type": "STANDARD"},
				"enabled":             true,
				"feature_state_value": fmt.Sprintf("value-%d", i),
			}},
		}
	}
	doc := map[string]any{
		"id":         49268,
		"api_key":    clientKey,
		"name":       "Development",
		"updated_at": updatedAt,
		"project": map[string]any{
			"id": 19368, "name": "Example", "hide_disabled_flags": false,
			"organisation": map[string]any{"id": 13, "name": "Acme"},
			"segments":     []any{},
		},
		"feature_states": []any{map[string]any{
			"feature":             map[string]any{"id": 1, "name": "banner", "type": "STANDARD"},
			"enabled":             true,
			"feature_state_value": "<b>Tom & Jerry</b>",
		}},
		"identity_overrides": overrides,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ") // not the compact form fakeapi re-encodes to
	if err := enc.Encode(doc); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func newServer(t *testing.T) *Server {
	t.Helper()
	s := New()
	t.Cleanup(s.Close)
	return s
}

// newClient returns a client with its own connection pool, so keep-alive
// state never leaks between tests.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type result struct {
	resp *http.Response
	body []byte
}

// do sends a request and reads the whole body.
func do(t *testing.T, c *http.Client, method, rawURL string, header map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, rawURL, err)
	}
	return result{resp, body}
}

func getDoc(t *testing.T, c *http.Client, s *Server, query string, header map[string]string) result {
	t.Helper()
	h := map[string]string{"X-Environment-Key": serverKey}
	for k, v := range header {
		h[k] = v
	}
	return do(t, c, http.MethodGet, s.URL()+"/environment-document/"+query, h)
}

func decodeObject(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%.300s", err, b)
	}
	return m
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compact: %v", err)
	}
	return buf.String()
}

func TestURL(t *testing.T) {
	s := newServer(t)
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Path != "/api/v1" {
		t.Errorf("URL() = %q, want http://127.0.0.1:PORT/api/v1", s.URL())
	}
}

func TestAuthentication(t *testing.T) {
	s := newServer(t)
	s.SetDocument(serverKey, testDoc(1))
	c := newClient(t)

	tests := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"registered server key", map[string]string{"X-Environment-Key": serverKey}, http.StatusOK},
		{"missing key", nil, http.StatusForbidden},
		{"empty key", map[string]string{"X-Environment-Key": ""}, http.StatusForbidden},
		{"unknown server key", map[string]string{"X-Environment-Key": "ser.unknown"}, http.StatusForbidden},
		{"client key of the document", map[string]string{"X-Environment-Key": clientKey}, http.StatusForbidden},
		{"server key without prefix", map[string]string{"X-Environment-Key": strings.TrimPrefix(serverKey, "ser.")}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, c, http.MethodGet, s.URL()+"/environment-document/", tt.header)
			if r.resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", r.resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusForbidden {
				if got := string(r.body); got != body403 {
					t.Errorf("body = %s, want %s", got, body403)
				}
				if ct := r.resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
			}
		})
	}
}

func TestDocumentResponse(t *testing.T) {
	s := newServer(t)
	doc := testDoc(3)
	s.SetDocument(serverKey, doc)
	c := newClient(t)

	for _, path := range []string{"/environment-document/", "/environment-document"} {
		t.Run(path, func(t *testing.T) {
			r := do(t, c, http.MethodGet, s.URL()+path, map[string]string{"X-Environment-Key": serverKey})
			if r.resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200", r.resp.StatusCode)
			}
			if !bytes.Equal(r.body, doc) {
				t.Errorf("unpaginated body differs from the registered bytes")
			}
			want := map[string]string{
				"Content-Type":                    "application/json",
				"Last-Modified":                   lastModified,
				"X-Flagsmith-Document-Updated-At": updatedAtEpoch,
				"Link":                            "",
			}
			for k, v := range want {
				if got := r.resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestUpdatedAtHeader(t *testing.T) {
	tests := []struct{ updatedAt, wantEpoch, wantLastModified string }{
		{"2025-11-16T13:28:31.244331+00:00", "1763299711.244331", "Sun, 16 Nov 2025 13:28:31 GMT"},
		{"2025-11-16T13:28:31Z", "1763299711.000000", "Sun, 16 Nov 2025 13:28:31 GMT"},
		{"2025-11-16T15:28:31.000001+02:00", "1763299711.000001", "Sun, 16 Nov 2025 13:28:31 GMT"},
		{"2025-11-16T13:28:31.999999999+00:00", "1763299711.999999", "Sun, 16 Nov 2025 13:28:31 GMT"},
	}
	for _, tt := range tests {
		d := parseDocument([]byte(`{"updated_at":"` + tt.updatedAt + `"}`))
		if got := d.updatedAtHeader(); got != tt.wantEpoch {
			t.Errorf("%s: X-Flagsmith-Document-Updated-At = %s, want %s", tt.updatedAt, got, tt.wantEpoch)
		}
		if got := d.lastModified(); got != tt.wantLastModified {
			t.Errorf("%s: Last-Modified = %s, want %s", tt.updatedAt, got, tt.wantLastModified)
		}
	}
}

func TestIfModifiedSince(t *testing.T) {
	s := newServer(t)
	s.SetDocument(serverKey, testDoc(3))
	s.SetPageSize(2)
	c := newClient(t)
	page2 := "?page_id=" + url.QueryEscape(cursorFor(1, "user-01"))

	tests := []struct {
		name  string
		query string
		ims   string
		want  int
	}{
		{"equal to truncated updated_at", "", lastModified, http.StatusNotModified},
		{"newer", "", "Sun, 16 Nov 2025 13:28:32 GMT", http.StatusNotModified},
		{"much newer", "", "Thu, 01 Jan 2099 00:00:00 GMT", http.StatusNotModified},
		{"older by one second", "", "Sun, 16 Nov 2025 13:28:30 GMT", http.StatusOK},
		{"much older", "", "Thu, 01 Jan 1970 00:00:00 GMT", http.StatusOK},
		{"RFC 850 form", "", "Sunday, 16-Nov-25 13:28:31 GMT", http.StatusNotModified},
		{"ANSI C form", "", "Sun Nov 16 13:28:31 2025", http.StatusNotModified},
		{"malformed", "", "yesterday", http.StatusOK},
		{"RFC 3339 is not an HTTP date", "", updatedAt, http.StatusOK},
		{"empty", "", "", http.StatusOK},
		{"page_id ignores it", page2, lastModified, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.ims != "" {
				h["If-Modified-Since"] = tt.ims
			}
			r := getDoc(t, c, s, tt.query, h)
			if r.resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", r.resp.StatusCode, tt.want)
			}
			switch tt.want {
			case http.StatusNotModified:
				if len(r.body) != 0 {
					t.Errorf("304 body = %q, want empty", r.body)
				}
				if got := r.resp.Header.Get("Last-Modified"); got != lastModified {
					t.Errorf("Last-Modified = %q", got)
				}
			case http.StatusOK:
				decodeObject(t, r.body)
			}
		})
	}
}

func TestIfModifiedSinceWithoutUpdatedAt(t *testing.T) {
	s := newServer(t)
	s.SetDocument(serverKey, []byte(`{"api_key":"x","identity_overrides":[]}`))
	r := getDoc(t, newClient(t), s, "", map[string]string{"If-Modified-Since": "Thu, 01 Jan 2099 00:00:00 GMT"})
	if r.resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", r.resp.StatusCode)
	}
	for _, h := range []string{"Last-Modified", "X-Flagsmith-Document-Updated-At"} {
		if v := r.resp.Header.Get(h); v != "" {
			t.Errorf("%s = %q, want none", h, v)
		}
	}
}

var linkRE = regexp.MustCompile(`^<(/api/v1/environment-document/\?page_id=[^>]+)>; rel="next"$`)

// fetchAll follows Link headers from page 1 and returns every page's body.
func fetchAll(t *testing.T, c *http.Client, s *Server) (pages [][]byte, links []string) {
	t.Helper()
	origin := strings.TrimSuffix(s.URL(), "/api/v1")
	next := s.URL() + "/environment-document/"
	for len(pages) < 100 {
		r := do(t, c, http.MethodGet, next, map[string]string{"X-Environment-Key": serverKey})
		if r.resp.StatusCode != http.StatusOK {
			t.Fatalf("page %d: status %d", len(pages)+1, r.resp.StatusCode)
		}
		pages = append(pages, r.body)
		link := r.resp.Header.Get("Link")
		if link == "" {
			return pages, links
		}
		m := linkRE.FindStringSubmatch(link)
		if m == nil {
			t.Fatalf("page %d: Link %q is not an absolute /api/v1 path with page_id", len(pages), link)
		}
		links = append(links, m[1])
		next = origin + m[1]
	}
	t.Fatal("more than 100 pages")
	return nil, nil
}

func TestPagination(t *testing.T) {
	tests := []struct {
		overrides, pageSize int
		wantSizes           []int
	}{
		{7, 3, []int{3, 3, 1}},
		{6, 3, []int{3, 3}},
		{6, 2, []int{2, 2, 2}},
		{3, 1, []int{1, 1, 1}},
		{5, 5, []int{5}},
		{5, 10, []int{5}},
		{5, 0, []int{5}},
		{5, -1, []int{5}},
		{0, 3, []int{0}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d overrides by %d", tt.overrides, tt.pageSize), func(t *testing.T) {
			s := newServer(t)
			doc := testDoc(tt.overrides)
			s.SetDocument(serverKey, doc)
			s.SetPageSize(tt.pageSize)
			pages, links := fetchAll(t, newClient(t), s)

			if len(pages) == 1 && !bytes.Equal(pages[0], doc) {
				t.Errorf("single page differs from the registered bytes")
			}
			want := decodeObject(t, doc)
			var wantOverrides, merged []json.RawMessage
			if err := json.Unmarshal(want["identity_overrides"], &wantOverrides); err != nil {
				t.Fatal(err)
			}
			var sizes []int
			for i, p := range pages {
				got := decodeObject(t, p)
				var part []json.RawMessage
				if err := json.Unmarshal(got["identity_overrides"], &part); err != nil || part == nil {
					t.Fatalf("page %d: identity_overrides = %s (%v), want a list", i+1, got["identity_overrides"], err)
				}
				sizes = append(sizes, len(part))
				merged = append(merged, part...)
				// Every page repeats the rest of the document.
				if len(got) != len(want) {
					t.Errorf("page %d has %d members, want %d", i+1, len(got), len(want))
				}
				for k, v := range want {
					if k != "identity_overrides" && compact(t, got[k]) != compact(t, v) {
						t.Errorf("page %d: %s = %s, want %s", i+1, k, got[k], v)
					}
				}
			}
			if !reflect.DeepEqual(sizes, tt.wantSizes) {
				t.Errorf("page sizes = %v, want %v", sizes, tt.wantSizes)
			}
			if len(merged) != len(wantOverrides) {
				t.Fatalf("merged %d overrides, want %d", len(merged), len(wantOverrides))
			}
			for i := range merged {
				if compact(t, merged[i]) != compact(t, wantOverrides[i]) {
					t.Errorf("override %d = %s, want %s", i, merged[i], wantOverrides[i])
				}
			}
			if len(links) != len(pages)-1 {
				t.Errorf("%d Link headers for %d pages", len(links), len(pages))
			}
		})
	}
}

func TestPaginationLinkTargets(t *testing.T) {
	s := newServer(t)
	s.SetDocument(serverKey, testDoc(7))
	s.SetPageSize(3)
	c := newClient(t)
	_, links := fetchAll(t, c, s)
	want := []string{
		"/api/v1/environment-document/?page_id=identity_override%3A2%3Auser-02",
		"/api/v1/environment-document/?page_id=identity_override%3A5%3Auser-05",
	}
	if !reflect.DeepEqual(links, want) {
		t.Errorf("links = %q, want %q", links, want)
	}

	// The cursor keeps working from the path form without a slash.
	r := do(t, c, http.MethodGet, s.URL()+"/environment-document?page_id="+url.QueryEscape(cursorFor(5, "user-05")),
		map[string]string{"X-Environment-Key": serverKey})
	if r.resp.StatusCode != http.StatusOK {
		t.Errorf("last page without slash: status %d", r.resp.StatusCode)
	}

	// The pager sent its key on every page.
	for _, req := range s.Requests() {
		if req.EnvironmentKey != serverKey {
			t.Errorf("request %s?%s without key", req.Path, req.Query.Encode())
		}
	}
}

func TestUnknownPageID(t *testing.T) {
	s := newServer(t)
	s.SetDocument(serverKey, testDoc(4))
	s.SetPageSize(2)
	c := newClient(t)
	for _, id := range []string{
		"",
		"nonsense",
		"identity_override:",
		"identity_override:x:user-00",
		"identity_override:-1:user-00",
		"identity_override:4:user-04",    // past the end
		"identity_override:1:user-02",    // identifier does not match the index
		"identity_override:1:user-01:xx", // extra suffix
	} {
		t.Run(id, func(t *testing.T) {
			r := getDoc(t, c, s, "?page_id="+url.QueryEscape(id), nil)
			if r.resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status = %d, want 404", r.resp.StatusCode)
			}
			if r.resp.Header.Get("Content-Type") != "application/json" || !json.Valid(r.body) {
				t.Errorf("404 is not JSON: %q %s", r.resp.Header.Get("Content-Type"), r.body)
			}
		})
	}
	// Authentication comes before cursor lookup.
	r := do(t, c, http.MethodGet, s.URL()+"/environment-document/?page_id=nonsense", nil)
	if r.resp.StatusCode != http.StatusForbidden {
		t.Errorf("keyless request with page_id: status %d, want 403", r.resp.StatusCode)
	}
}

func TestGzip(t *testing.T) {
	s := newServer(t)
	doc := testDoc(5)
	s.SetDocument(serverKey, doc)

	t.Run("transparent", func(t *testing.T) {
		r := getDoc(t, newClient(t), s, "", nil)
		if !r.resp.Uncompressed {
			t.Errorf("Go's transport did not see a gzip-encoded body")
		}
		if !bytes.Equal(r.body, doc) {
			t.Errorf("decompressed body differs")
		}
		if got := s.Requests()[0].AcceptEncoding; got != "gzip" {
			t.Errorf("recorded Accept-Encoding = %q, want gzip", got)
		}
	})

	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(raw.CloseIdleConnections)
	tests := []struct {
		acceptEncoding string
		wantGzip       bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"br, gzip;q=0.5", true},
		{"deflate, br", false},
		{"gzip;q=0", false},
		{"*", true},
		{"identity", false},
	}
	for _, tt := range tests {
		t.Run("Accept-Encoding="+tt.acceptEncoding, func(t *testing.T) {
			h := map[string]string{}
			if tt.acceptEncoding != "" {
				h["Accept-Encoding"] = tt.acceptEncoding
			}
			r := getDoc(t, raw, s, "", h)
			enc := r.resp.Header.Get("Content-Encoding")
			body := r.body
			if tt.wantGzip {
				if enc != "gzip" {
					t.Fatalf("Content-Encoding = %q, want gzip", enc)
				}
				zr, err := gzip.NewReader(bytes.NewReader(r.body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			} else if enc != "" {
				t.Fatalf("Content-Encoding = %q, want none", enc)
			}
			if !bytes.Equal(body, doc) {
				t.Errorf("body differs from the document")
			}
		})
	}

	t.Run("paginated", func(t *testing.T) {
		s.SetPageSize(2)
		defer s.SetPageSize(0)
		pages, _ := fetchAll(t, newClient(t), s)
		if len(pages) != 3 {
			t.Errorf("%d pages, want 3", len(pages))
		}
	})
}

func TestOtherEndpoints(t *testing.T) {
	s := newServer(t)
	s.SetDocument(serverKey, testDoc(1))
	c := newClient(t)
	key := map[string]string{"X-Environment-Key": serverKey}
	tests := []struct {
		method, path string
		want         int
		wantBody     string
	}{
		{http.MethodGet, "/flags/", http.StatusNotFound, bodyNotImpl},
		{http.MethodGet, "/flags", http.StatusNotFound, bodyNotImpl},
		{http.MethodPost, "/identities/", http.StatusNotFound, bodyNotImpl},
		{http.MethodPost, "/identities", http.StatusNotFound, bodyNotImpl},
		{http.MethodGet, "/identities/?identifier=x", http.StatusNotFound, bodyNotImpl},
		{http.MethodGet, "/nowhere/", http.StatusNotFound, body404},
		{http.MethodPost, "/environment-document/", http.StatusMethodNotAllowed, `{"detail":"Method \"POST\" not allowed."}`},
		{http.MethodHead, "/environment-document/", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := do(t, c, tt.method, s.URL()+tt.path, key)
			if r.resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", r.resp.StatusCode, tt.want)
			}
			if string(r.body) != tt.wantBody {
				t.Errorf("body = %s, want %s", r.body, tt.wantBody)
			}
		})
	}
}

func TestSetDocument(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	s.SetDocument(serverKey, testDoc(1))
	if r := getDoc(t, c, s, "", map[string]string{"If-Modified-Since": lastModified}); r.resp.StatusCode != http.StatusNotModified {
		t.Fatalf("status = %d, want 304", r.resp.StatusCode)
	}

	newer := bytes.Replace(testDoc(2), []byte(updatedAt), []byte("2025-11-16T13:30:00.5+00:00"), 1)
	s.SetDocument(serverKey, newer)
	r := getDoc(t, c, s, "", map[string]string{"If-Modified-Since": lastModified})
	if r.resp.StatusCode != http.StatusOK || !bytes.Equal(r.body, newer) {
		t.Fatalf("after replacement: status %d, want 200 with the new document", r.resp.StatusCode)
	}
	if got := r.resp.Header.Get("Last-Modified"); got != "Sun, 16 Nov 2025 13:30:00 GMT" {
		t.Errorf("Last-Modified = %q", got)
	}

	// A registered document is a copy: later edits of the caller's slice
	// do not leak into responses.
	newer[0] = 'X'
	if r := getDoc(t, c, s, "", nil); r.body[0] != '{' {
		t.Errorf("SetDocument kept the caller's slice")
	}

	s.SetDocument(serverKey, nil)
	if r := getDoc(t, c, s, "", nil); r.resp.StatusCode != http.StatusForbidden {
		t.Errorf("after removal: status %d, want 403", r.resp.StatusCode)
	}

	for name, f := range map[string]func(){
		"client key":   func() { s.SetDocument(clientKey, testDoc(1)) },
		"invalid JSON": func() { s.SetDocument(serverKey, []byte(`{"id":`)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SetDocument with %s did not panic", name)
				}
			}()
			f()
		}()
	}
}

func TestFixtureDocument(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "fixtures", "environment-documents", "environment.json")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t)
	s.SetDocument(serverKey, doc)
	s.SetPageSize(1)
	pages, _ := fetchAll(t, newClient(t), s)
	if len(pages) != 1 || !bytes.Equal(pages[0], doc) {
		t.Errorf("fixture with one override: %d pages, want it served verbatim", len(pages))
	}
}

// faultCase describes one fault and how a plain client must observe it.
type faultCase struct {
	fault Fault
	check func(t *testing.T, resp *http.Response, body []byte, err error)
}

func wantStatus(code int, wantBody string) func(*testing.T, *http.Response, []byte, error) {
	return func(t *testing.T, resp *http.Response, body []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != code {
			t.Fatalf("status = %d, want %d", resp.StatusCode, code)
		}
		if wantBody != "*" && string(body) != wantBody {
			t.Errorf("body = %q, want %q", body, wantBody)
		}
	}
}

// fetch sends a document request and reads as much body as arrives.
func fetch(c *http.Client, rawURL string, header map[string]string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("X-Environment-Key", serverKey)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestFaults(t *testing.T) {
	doc := testDoc(2)
	tests := []faultCase{
		{Fault500, wantStatus(http.StatusInternalServerError, body500)},
		{Fault502, wantStatus(http.StatusBadGateway, body502)},
		{Fault403, wantStatus(http.StatusForbidden, body403)},
		{Fault304, wantStatus(http.StatusNotModified, "")},
		{FaultInvalidJSON, func(t *testing.T, resp *http.Response, body []byte, err error) {
			wantStatus(http.StatusOK, "*")(t, resp, body, err)
			if json.Valid(body) {
				t.Errorf("body is valid JSON: %s", body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		}},
		{FaultWrongShape, func(t *testing.T, resp *http.Response, body []byte, err error) {
			wantStatus(http.StatusOK, WrongShapes()[0])(t, resp, body, err)
		}},
		{FaultTruncated, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("read error = %v, want unexpected EOF", err)
			}
			if resp.ContentLength != int64(len(doc)) || len(body) != len(doc)/2 {
				t.Errorf("Content-Length %d, got %d bytes; want %d of %d", resp.ContentLength, len(body), len(doc)/2, len(doc))
			}
		}},
		{FaultRedirectLoop, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err == nil || !strings.Contains(err.Error(), "stopped after 10 redirects") {
				t.Errorf("err = %v, want a redirect loop", err)
			}
		}},
		{FaultLinkLoop, func(t *testing.T, resp *http.Response, body []byte, err error) {
			wantStatus(http.StatusOK, "*")(t, resp, body, err)
			if !bytes.Equal(body, doc) {
				t.Errorf("body is not the document")
			}
			want := `</api/v1/environment-document/?page_id=` + url.QueryEscape(cursorFor(0, "loop")) + `>; rel="next"`
			if got := resp.Header.Get("Link"); got != want {
				t.Errorf("Link = %q, want %q", got, want)
			}
		}},
		{FaultHang, func(t *testing.T, resp *http.Response, body []byte, err error) {
			var ne interface{ Timeout() bool }
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("err = %v, want a client timeout", err)
			}
		}},
		{FaultSlow, func(t *testing.T, resp *http.Response, body []byte, err error) {
			var ne interface{ Timeout() bool }
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("err = %v, want a client timeout", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fault.String(), func(t *testing.T) {
			s := newServer(t)
			s.SetDocument(serverKey, doc)
			s.SetDelay(5 * time.Second)
			s.Fail(tt.fault, -1)
			c := newClient(t)
			c.Timeout = 300 * time.Millisecond
			resp, body, err := fetch(c, s.URL()+"/environment-document/", nil)
			tt.check(t, resp, body, err)

			reqs := s.Requests()
			if len(reqs) == 0 || reqs[0].Fault != tt.fault {
				t.Fatalf("first request not recorded with %v: %+v", tt.fault, reqs)
			}
			s.Fail(FaultNone, 0)
			resp, body, err = fetch(c, s.URL()+"/environment-document/", nil)
			wantStatus(http.StatusOK, string(doc))(t, resp, body, err)
		})
	}
}

func TestFaultsApplyToEveryPath(t *testing.T) {
	s := newServer(t)
	s.Fail(Fault502, -1)
	c := newClient(t)
	for _, p := range []string{"/flags/", "/identities/", "/environment-document/", "/nowhere"} {
		if r := do(t, c, http.MethodGet, s.URL()+p, nil); r.resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%s: status %d, want 502", p, r.resp.StatusCode)
		}
	}
}

func TestFaultCount(t *testing.T) {
	tests := []struct {
		count int
		want  []int
	}{
		{-1, []int{500, 500, 500, 500, 500}},
		{0, []int{200, 200}},
		{1, []int{500, 200, 200}},
		{3, []int{500, 500, 500, 200}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.count), func(t *testing.T) {
			s := newServer(t)
			s.SetDocument(serverKey, testDoc(1))
			s.Fail(Fault500, tt.count)
			c := newClient(t)
			var got []int
			for range tt.want {
				got = append(got, getDoc(t, c, s, "", nil).resp.StatusCode)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("statuses = %v, want %v", got, tt.want)
			}
			s.Fail(FaultNone, 0)
			if code := getDoc(t, c, s, "", nil).resp.StatusCode; code != http.StatusOK {
				t.Errorf("after FaultNone: %d", code)
			}
		})
	}
}

func TestFaultWrongShapeCycles(t *testing.T) {
	s := newServer(t)
	s.Fail(FaultWrongShape, -1)
	c := newClient(t)
	shapes := WrongShapes()
	for i := range 2 * len(shapes) {
		r := getDoc(t, c, s, "", nil)
		if want := shapes[i%len(shapes)]; string(r.body) != want {
			t.Errorf("request %d: body %s, want %s", i, r.body, want)
		}
		if !json.Valid(r.body) {
			t.Errorf("request %d: invalid JSON", i)
		}
		var doc struct {
			APIKey string `json:"api_key"`
		}
		if json.Unmarshal(r.body, &doc) == nil && doc.APIKey != "" {
			t.Errorf("request %d: decodes as a document", i)
		}
	}
}

func TestFault304WithoutDocument(t *testing.T) {
	s := newServer(t)
	s.Fail(Fault304, -1)
	r := do(t, newClient(t), http.MethodGet, s.URL()+"/environment-document/", nil)
	if r.resp.StatusCode != http.StatusNotModified {
		t.Errorf("status %d, want 304 even without key or If-Modified-Since", r.resp.StatusCode)
	}
}

func TestFaultRedirectTarget(t *testing.T) {
	s := newServer(t)
	s.Fail(FaultRedirectLoop, -1)
	c := newClient(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r := do(t, c, http.MethodGet, s.URL()+"/environment-document/?page_id=a%3Ab", nil)
	if r.resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302", r.resp.StatusCode)
	}
	if got := r.resp.Header.Get("Location"); got != "/api/v1/environment-document/?page_id=a%3Ab" {
		t.Errorf("Location = %q, want the request itself", got)
	}
}

func TestFaultLinkLoopFollowsItself(t *testing.T) {
	s := newServer(t)
	s.SetDocument(serverKey, testDoc(2))
	s.Fail(FaultLinkLoop, -1)
	c := newClient(t)
	origin := strings.TrimSuffix(s.URL(), "/api/v1")
	next := s.URL() + "/environment-document/"
	var seen []string
	for range 3 {
		r := getDoc(t, c, s, strings.TrimPrefix(next, s.URL()+"/environment-document/"), nil)
		m := linkRE.FindStringSubmatch(r.resp.Header.Get("Link"))
		if r.resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("status %d, Link %q", r.resp.StatusCode, r.resp.Header.Get("Link"))
		}
		seen = append(seen, m[1])
		next = origin + m[1]
	}
	if seen[0] != seen[1] || seen[1] != seen[2] {
		t.Errorf("Link targets %q, want the same page every time", seen)
	}
}

func TestFaultHuge(t *testing.T) {
	s := newServer(t)
	s.SetDocument(serverKey, testDoc(2))
	s.Fail(FaultHuge, 1)
	c := newClient(t)
	c.Timeout = time.Minute
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/environment-document/", nil)
	req.Header.Set("X-Environment-Key", serverKey)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != -1 || resp.Uncompressed {
		t.Errorf("ContentLength %d, Uncompressed %v: want a plain chunked stream", resp.ContentLength, resp.Uncompressed)
	}
	head := make([]byte, 64)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if total := n + int64(len(head)); total != HugeSize {
		t.Errorf("body is %d bytes, want %d", total, HugeSize)
	}
	if !bytes.HasPrefix(head, []byte(`{"api_key":"`+clientKey)) {
		t.Errorf("body starts %q, want the registered document's fields", head)
	}
}

// A client that stops reading early must not wedge the server.
func TestFaultHugeClientGivesUp(t *testing.T) {
	s := newServer(t)
	s.Fail(FaultHuge, -1)
	c := newClient(t)
	resp, err := c.Get(s.URL() + "/environment-document/")
	if err != nil {
		t.Fatal(err)
	}
	io.CopyN(io.Discard, resp.Body, 1<<20)
	resp.Body.Close()
	s.Close() // waits for the handler: fails the test by timeout if stuck
}

func TestWriteHugeIsExactValidJSON(t *testing.T) {
	prefixes := map[string][]byte{
		"registered": parseDocument(testDoc(3)).hugePrefix(),
		"fallback":   fallbackDocument.hugePrefix(),
		"empty":      parseDocument([]byte(`{}`)).hugePrefix(),
		"non-object": parseDocument([]byte(`[1]`)).hugePrefix(),
	}
	for name, prefix := range prefixes {
		for _, size := range []int{len(prefix) + 40, 2000, 2001, 2002, 2003, 10_007, 1 << 16} {
			var buf bytes.Buffer
			if err := writeHuge(&buf, prefix, size); err != nil {
				t.Fatal(err)
			}
			if buf.Len() != max(size, len(prefix)+2+len(`{"identifier":"huge-pad-","identity_features":[]}`)) {
				t.Errorf("%s/%d: wrote %d bytes", name, size, buf.Len())
			}
			var doc struct {
				IdentityOverrides []struct {
					Identifier string `json:"identifier"`
				} `json:"identity_overrides"`
			}
			if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
				t.Fatalf("%s/%d: invalid JSON: %v", name, size, err)
			}
			if len(doc.IdentityOverrides) == 0 {
				t.Errorf("%s/%d: no overrides", name, size)
			}
		}
	}
}

func TestFaultHangReleasedByFail(t *testing.T) {
	s := newServer(t)
	s.SetDocument(serverKey, testDoc(1))
	s.Fail(FaultHang, -1)
	c := newClient(t)
	type out struct {
		resp *http.Response
		body []byte
		err  error
	}
	done := make(chan out, 1)
	go func() {
		resp, body, err := fetch(c, s.URL()+"/environment-document/", nil)
		done <- out{resp, body, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitForRequests(ctx, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-done:
		t.Fatalf("hanging request answered: %v %v", o.resp.Status, o.err)
	case <-time.After(100 * time.Millisecond):
	}
	s.Fail(FaultNone, 0)
	o := <-done
	wantStatus(http.StatusOK, "*")(t, o.resp, o.body, o.err)
}

func TestFaultHangReleasedByClose(t *testing.T) {
	s := New()
	s.Fail(FaultHang, -1)
	errc := make(chan error, 1)
	go func() {
		_, _, err := fetch(&http.Client{}, s.URL()+"/environment-document/", nil)
		errc <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitForRequests(ctx, 1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := <-errc; err == nil {
		t.Errorf("hanging request succeeded after Close")
	}
}

func TestFaultSlow(t *testing.T) {
	s := newServer(t)
	s.SetDocument(serverKey, testDoc(1))
	s.SetDelay(200 * time.Millisecond)
	s.Fail(FaultSlow, -1)
	c := newClient(t)
	start := time.Now()
	r := getDoc(t, c, s, "", nil)
	if elapsed := time.Since(start); elapsed < 200*time.Millisecond {
		t.Errorf("answered after %v, want ≥ 200ms", elapsed)
	}
	if r.resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200 after the delay", r.resp.StatusCode)
	}
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

func TestFaultDownAndRecovery(t *testing.T) {
	s := newServer(t)
	s.SetDocument(serverKey, testDoc(1))
	c := newClient(t)
	base := s.URL()
	if r := getDoc(t, c, s, "", nil); r.resp.StatusCode != http.StatusOK {
		t.Fatalf("before: %d", r.resp.StatusCode)
	}
	before := s.RequestCount()

	for cycle := range 3 {
		s.Fail(FaultDown, 5) // count is ignored: stays down
		for i := range 7 {
			// c holds a keep-alive connection from before: it must not work.
			_, _, err := fetch(c, base+"/environment-document/", nil)
			if err == nil {
				t.Fatalf("cycle %d, request %d: succeeded while down", cycle, i)
			}
			if i > 0 && !isRefused(err) {
				t.Errorf("cycle %d, request %d: err = %v, want connection refused", cycle, i, err)
			}
		}
		if _, _, err := fetch(newClient(t), base+"/environment-document/", nil); !isRefused(err) {
			t.Errorf("cycle %d: fresh client err = %v, want connection refused", cycle, err)
		}
		s.Fail(FaultNone, 0)
		if s.URL() != base {
			t.Fatalf("URL changed from %s to %s", base, s.URL())
		}
		resp, body, err := fetch(c, base+"/environment-document/", nil)
		wantStatus(http.StatusOK, "*")(t, resp, body, err)
	}
	if got := s.RequestCount() - before; got != 3 {
		t.Errorf("%d requests recorded across outages, want 3 (refused ones are unseen)", got)
	}
}

func TestFaultDownDropsHangingRequest(t *testing.T) {
	s := newServer(t)
	s.Fail(FaultHang, -1)
	errc := make(chan error, 1)
	go func() {
		_, _, err := fetch(newClient(t), s.URL()+"/environment-document/", nil)
		errc <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitForRequests(ctx, 1); err != nil {
		t.Fatal(err)
	}
	s.Fail(FaultDown, -1)
	if err := <-errc; err == nil {
		t.Errorf("request in flight survived FaultDown")
	}
}

func TestCloseWhileDown(t *testing.T) {
	s := New()
	s.Fail(FaultDown, -1)
	s.Close()
	s.Fail(FaultNone, 0) // must not panic or re-open after Close
	if _, _, err := fetch(&http.Client{}, s.URL()+"/environment-document/", nil); err == nil {
		t.Errorf("request succeeded after Close")
	}
}

func TestRequests(t *testing.T) {
	s := newServer(t)
	s.SetDocument(serverKey, testDoc(1))
	c := newClient(t)
	getDoc(t, c, s, "?page_id=x", map[string]string{"If-Modified-Since": lastModified, "User-Agent": "fledge-test"})
	do(t, c, http.MethodPost, s.URL()+"/identities/", nil)

	reqs := s.Requests()
	if len(reqs) != 2 || s.RequestCount() != 2 {
		t.Fatalf("%d requests, count %d, want 2", len(reqs), s.RequestCount())
	}
	r := reqs[0]
	if r.Method != http.MethodGet || r.Path != "/api/v1/environment-document/" || r.Query.Get("page_id") != "x" ||
		r.EnvironmentKey != serverKey || r.IfModifiedSince != lastModified || r.AcceptEncoding != "gzip" ||
		r.Header.Get("User-Agent") != "fledge-test" || r.Fault != FaultNone {
		t.Errorf("recorded %+v", r)
	}
	if reqs[1].Method != http.MethodPost || reqs[1].Path != "/api/v1/identities/" || reqs[1].EnvironmentKey != "" {
		t.Errorf("recorded %+v", reqs[1])
	}

	// Requests returns copies.
	reqs[0].Header.Set("X-Environment-Key", "changed")
	reqs[0].Query.Set("page_id", "changed")
	if again := s.Requests()[0]; again.Header.Get("X-Environment-Key") != serverKey || again.Query.Get("page_id") != "x" {
		t.Errorf("Requests shares state with its callers")
	}
}

func TestWaitForRequests(t *testing.T) {
	s := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.WaitForRequests(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
	if err := s.WaitForRequests(context.Background(), 0); err != nil {
		t.Errorf("n=0: %v", err)
	}

	c := newClient(t)
	go func() {
		for range 3 {
			time.Sleep(10 * time.Millisecond)
			resp, err := c.Get(s.URL() + "/environment-document/")
			if err == nil {
				resp.Body.Close()
			}
		}
	}()
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitForRequests(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if n := s.RequestCount(); n < 3 {
		t.Errorf("RequestCount = %d after waiting for 3", n)
	}
}

func TestFaultString(t *testing.T) {
	for f := FaultNone; f <= FaultSlow; f++ {
		if s := f.String(); !strings.HasPrefix(s, "Fault") || strings.Contains(s, "(") {
			t.Errorf("Fault %d has no name: %q", int(f), s)
		}
	}
	if got := Fault(99).String(); got != "Fault(99)" {
		t.Errorf("Fault(99).String() = %q", got)
	}
}

// TestConcurrency hammers the server while the test goroutine reconfigures
// it; run with -race.
func TestConcurrency(t *testing.T) {
	s := newServer(t)
	s.SetDocument(serverKey, testDoc(5))
	s.SetDelay(time.Millisecond)
	c := newClient(t)

	const workers, perWorker = 8, 40
	var wg sync.WaitGroup
	errc := make(chan error, workers*perWorker)
	for range workers {
		wg.Go(func() {
			for range perWorker {
				resp, body, err := fetch(c, s.URL()+"/environment-document/", nil)
				if err != nil {
					errc <- err
					continue
				}
				switch resp.StatusCode {
				case http.StatusOK:
					if !json.Valid(body) {
						errc <- fmt.Errorf("200 with invalid body")
					}
				case http.StatusInternalServerError, http.StatusForbidden:
				default:
					errc <- fmt.Errorf("unexpected status %d", resp.StatusCode)
				}
				if link := resp.Header.Get("Link"); link != "" {
					m := linkRE.FindStringSubmatch(link)
					if m == nil {
						errc <- fmt.Errorf("bad Link %q", link)
						continue
					}
					origin := strings.TrimSuffix(s.URL(), "/api/v1")
					if resp, _, err := fetch(c, origin+m[1], nil); err == nil && resp.StatusCode != http.StatusOK &&
						resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusForbidden &&
						resp.StatusCode != http.StatusInternalServerError {
						errc <- fmt.Errorf("next page: status %d", resp.StatusCode)
					}
				}
			}
		})
	}
	stop := make(chan struct{})
	var toggler sync.WaitGroup
	toggler.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			switch i % 6 {
			case 0:
				s.SetDocument(serverKey, testDoc(i%7))
			case 1:
				s.SetPageSize(i % 4)
			case 2:
				s.Fail(Fault500, 2)
			case 3:
				s.Fail(FaultSlow, 3)
			case 4:
				_ = s.Requests()
				_ = s.RequestCount()
			case 5:
				s.Fail(FaultNone, 0)
			}
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	close(stop)
	toggler.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if n := s.RequestCount(); n < workers*perWorker {
		t.Errorf("RequestCount = %d, want ≥ %d", n, workers*perWorker)
	}
}
