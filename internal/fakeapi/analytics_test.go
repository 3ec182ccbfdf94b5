package fakeapi

import (
	"bytes"
	"net/http"
	"reflect"
	"testing"
)

func postAnalytics(t *testing.T, c *http.Client, s *Server, path, key, body string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-Environment-Key", key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return result{resp, buf.Bytes()}
}

// TestAnalytics: core's v1 analytics endpoint (api.md §2.7) authenticates
// either key, keeps integer counts of the environment's features and
// skips every other entry, answering 200 with an empty body.
func TestAnalytics(t *testing.T) {
	s := newServer(t)
	s.SetDocument(serverKey, testDoc(0))
	c := newClient(t)

	r := postAnalytics(t, c, s, "/analytics/flags/", clientKey,
		`{"banner":3,"nope":1,"f":1.5,"b":true,"s":"2","e":1e2,"banner ":1}`)
	if r.resp.StatusCode != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("status %d body %q, want 200 and no body", r.resp.StatusCode, r.body)
	}
	r = postAnalytics(t, c, s, "/analytics/flags", serverKey, `{"banner":-2}`)
	if r.resp.StatusCode != http.StatusOK {
		t.Fatalf("server key: status %d", r.resp.StatusCode)
	}
	reports := s.AnalyticsReports()
	if len(reports) != 2 {
		t.Fatalf("%d reports, want 2", len(reports))
	}
	first := reports[0]
	if first.EnvironmentKey != clientKey || first.ServerKey != serverKey {
		t.Errorf("keys = %q/%q, want %q/%q", first.EnvironmentKey, first.ServerKey, clientKey, serverKey)
	}
	if want := map[string]int64{"banner": 3}; !reflect.DeepEqual(first.Counts, want) {
		t.Errorf("counts = %v, want %v", first.Counts, want)
	}
	for _, name := range []string{"nope", "f", "b", "s", "e", "banner "} {
		if first.Skipped[name] == "" {
			t.Errorf("entry %q was not skipped (skipped: %v)", name, first.Skipped)
		}
	}
	// Core keeps negative integers; the sum shows it.
	if got := s.AnalyticsTotals(serverKey); !reflect.DeepEqual(got, map[string]int64{"banner": 1}) {
		t.Errorf("totals = %v, want banner:1", got)
	}
	if got := s.Requests()[0].Body; !bytes.Contains(got, []byte(`"banner":3`)) {
		t.Errorf("recorded body = %q", got)
	}

	errs := []struct {
		name, key, body string
		status          int
		wantBody        string
	}{
		{"unknown key", "nope", `{}`, http.StatusForbidden, body403},
		{"no key", "", `{}`, http.StatusForbidden, body403},
		{"not an object", clientKey, `[1]`, http.StatusBadRequest, `{"non_field_errors":["Expected a JSON object."]}`},
		{"not JSON", clientKey, `{"banner":`, http.StatusBadRequest, `{"detail":"JSON parse error"}`},
	}
	for _, tt := range errs {
		r := postAnalytics(t, c, s, "/analytics/flags/", tt.key, tt.body)
		if r.resp.StatusCode != tt.status || string(r.body) != tt.wantBody {
			t.Errorf("%s: %d %s, want %d %s", tt.name, r.resp.StatusCode, r.body, tt.status, tt.wantBody)
		}
	}
	if n := len(s.AnalyticsReports()); n != 2 {
		t.Errorf("%d reports after refused ones, want 2", n)
	}
	get := do(t, c, http.MethodGet, s.URL()+"/analytics/flags/", map[string]string{"X-Environment-Key": clientKey})
	if get.resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", get.resp.StatusCode)
	}
}

// TestAnalyticsFault: faults apply to analytics like to any request, and
// a faulted report is not taken.
func TestAnalyticsFault(t *testing.T) {
	s := newServer(t)
	s.SetDocument(serverKey, testDoc(0))
	c := newClient(t)
	s.Fail(Fault500, 1)
	if r := postAnalytics(t, c, s, "/analytics/flags/", clientKey, `{"banner":1}`); r.resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", r.resp.StatusCode)
	}
	if r := postAnalytics(t, c, s, "/analytics/flags/", clientKey, `{"banner":2}`); r.resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", r.resp.StatusCode)
	}
	if got := s.AnalyticsTotals(serverKey); !reflect.DeepEqual(got, map[string]int64{"banner": 2}) {
		t.Errorf("totals = %v, want banner:2", got)
	}
}
