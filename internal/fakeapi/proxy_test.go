package fakeapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	proxyKey = "pk_test_0123456789"
	uuid1    = "0b0c2f0e-5a8d-4c4e-9e43-2f6a3b1c9d01"
	uuid2    = "7d1c3e5a-9b2f-4a6d-8c0e-1f2a3b4c5d6e"
)

// TestProxyConfig: the configuration answers the frozen contract shape
// (§2.2) to the right proxy key only.
func TestProxyConfig(t *testing.T) {
	s := newServer(t)
	s.SetProxyKey(proxyKey)
	exp := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	s.SetProxyEnvironments([]ProxyEnvironment{{
		ID: 30, Name: "Test Environment", ClientSideKey: "abc123", ProjectID: 35, OrganisationID: 82,
		ServerSideKeys: []ProxyServerKey{{Key: "ser.abc", Active: true}, {Key: "ser.new", Active: true, ExpiresAt: &exp}},
	}})
	c := newClient(t)
	tests := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no key", nil, http.StatusUnauthorized},
		{"wrong key", map[string]string{"X-Proxy-Key": "pk_other"}, http.StatusUnauthorized},
		{"environment key instead", map[string]string{"X-Environment-Key": proxyKey}, http.StatusUnauthorized},
		{"proxy key", map[string]string{"X-Proxy-Key": proxyKey}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, c, http.MethodGet, s.URL()+"/proxy/config/", tt.header)
			if r.resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", r.resp.StatusCode, tt.want, r.body)
			}
		})
	}
	r := do(t, c, http.MethodGet, s.URL()+"/proxy/config/", map[string]string{"X-Proxy-Key": proxyKey})
	want := `[{"id":30,"name":"Test Environment","client_side_key":"abc123",` +
		`"server_side_keys":[{"key":"ser.abc","active":true,"expires_at":null},{"key":"ser.new","active":true,"expires_at":"2026-09-01T00:00:00Z"}],` +
		`"updated_at":"2026-08-15T08:57:43.311081Z","project_id":35,"organisation_id":82}]`
	if string(r.body) != want {
		t.Errorf("body:\n got %s\nwant %s", r.body, want)
	}
	s.SetProxyEnvironments(nil)
	if r := do(t, c, http.MethodGet, s.URL()+"/proxy/config", map[string]string{"X-Proxy-Key": proxyKey}); string(r.body) != "[]" {
		t.Errorf("no environments: %s, want []", r.body)
	}
	reqs := s.Requests()
	if got := reqs[len(reqs)-1].ProxyKey; got != proxyKey {
		t.Errorf("recorded X-Proxy-Key %q", got)
	}
}

// TestProxyConfigRevokesKeys: a server key listed as inactive or expired no
// longer fetches documents; the active one does.
func TestProxyConfigRevokesKeys(t *testing.T) {
	s := newServer(t)
	past := time.Now().Add(-time.Minute)
	for _, k := range []string{"ser.active", "ser.inactive", "ser.expired"} {
		s.SetDocument(k, testDoc(0))
	}
	s.SetProxyEnvironments([]ProxyEnvironment{{ClientSideKey: clientKey, ServerSideKeys: []ProxyServerKey{
		{Key: "ser.active", Active: true}, {Key: "ser.inactive"}, {Key: "ser.expired", Active: true, ExpiresAt: &past},
	}}})
	c := newClient(t)
	for key, want := range map[string]int{"ser.active": 200, "ser.inactive": 403, "ser.expired": 403} {
		if r := getDoc(t, c, s, "", map[string]string{"X-Environment-Key": key}); r.resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", key, r.resp.StatusCode, want)
		}
	}
}

func postUsage(t *testing.T, c *http.Client, s *Server, header map[string]string, body string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+"/proxy/usage/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return result{resp, buf.Bytes()}
}

// TestUsage: rows are taken once per Idempotency-Key; malformed reports and
// a wrong proxy key are refused.
func TestUsage(t *testing.T) {
	s := newServer(t)
	s.SetProxyKey(proxyKey)
	c := newClient(t)
	good := `[{"client_side_key":"abc","resource":"flags","count":2},{"client_side_key":"abc","resource":"environment-document","count":1}]`
	hdr := func(key, idem string) map[string]string {
		return map[string]string{"X-Proxy-Key": key, "Idempotency-Key": idem}
	}
	rows := func(n int) string {
		var b strings.Builder
		b.WriteString("[")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"client_side_key":"k%d","resource":"identities","count":1}`, i)
		}
		return b.String() + "]"
	}
	tests := []struct {
		name   string
		header map[string]string
		body   string
		want   int
	}{
		{"accepted", hdr(proxyKey, uuid1), good, 204},
		{"repeat of the same batch", hdr(proxyKey, uuid1), good, 204},
		{"wrong proxy key", hdr("nope", uuid2), good, 401},
		{"no idempotency key", hdr(proxyKey, ""), good, 400},
		{"idempotency key not a v4 UUID", hdr(proxyKey, "0b0c2f0e-5a8d-1c4e-9e43-2f6a3b1c9d01"), good, 400},
		{"upper-case UUID", hdr(proxyKey, strings.ToUpper(uuid2)), good, 400},
		{"object, not array", hdr(proxyKey, uuid2), `{"client_side_key":"abc","resource":"flags","count":1}`, 400},
		{"unknown resource", hdr(proxyKey, uuid2), `[{"client_side_key":"abc","resource":"traits","count":1}]`, 400},
		{"zero count", hdr(proxyKey, uuid2), `[{"client_side_key":"abc","resource":"flags","count":0}]`, 400},
		{"float count", hdr(proxyKey, uuid2), `[{"client_side_key":"abc","resource":"flags","count":1.0}]`, 400},
		{"extra field", hdr(proxyKey, uuid2), `[{"client_side_key":"abc","resource":"flags","count":1,"x":1}]`, 400},
		{"over the row cap", hdr(proxyKey, uuid2), rows(MaxUsageRows + 1), 400},
		{"at the row cap", hdr(proxyKey, uuid2), rows(MaxUsageRows), 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := postUsage(t, c, s, tt.header, tt.body); r.resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", r.resp.StatusCode, tt.want, r.body)
			}
		})
	}
	totals := s.UsageTotals()
	if want := map[string]int64{"flags": 2, "environment-document": 1}; !reflect.DeepEqual(totals["abc"], want) {
		t.Errorf("totals for abc = %v, want %v (the repeat counted once)", totals["abc"], want)
	}
	if len(totals) != 1+MaxUsageRows {
		t.Errorf("%d client keys in totals, want %d", len(totals), 1+MaxUsageRows)
	}
	reports := s.UsageReports()
	if len(reports) != len(tests) || !reports[1].Duplicate || reports[0].Duplicate {
		t.Fatalf("reports: %d, duplicate flags %v %v", len(reports), reports[0].Duplicate, reports[1].Duplicate)
	}
	if r := reports[0]; r.ProxyKey != proxyKey || r.IdempotencyKey != uuid1 || r.ContentType != "application/json" || len(r.Rows) != 2 {
		t.Errorf("first report recorded as %+v", r)
	}
}

// TestFailUsage: scripted answers come first, one per POST, and do not
// remember the Idempotency-Key, so the retry is taken.
func TestFailUsage(t *testing.T) {
	s := newServer(t)
	s.SetProxyKey(proxyKey)
	s.FailUsage(500, 307)
	c := newClient(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	body := `[{"client_side_key":"abc","resource":"flags","count":1}]`
	h := map[string]string{"X-Proxy-Key": proxyKey, "Idempotency-Key": uuid1}
	for _, want := range []int{500, 307, 204, 204} {
		r := postUsage(t, c, s, h, body)
		if r.resp.StatusCode != want {
			t.Fatalf("status %d, want %d", r.resp.StatusCode, want)
		}
		if want == 307 && r.resp.Header.Get("Location") == "" {
			t.Error("307 without Location")
		}
	}
	if got := s.UsageTotals()["abc"]["flags"]; got != 1 {
		t.Errorf("flags counted %d times, want 1", got)
	}
	var statuses []int
	for _, u := range s.UsageReports() {
		statuses = append(statuses, u.Status)
	}
	if !reflect.DeepEqual(statuses, []int{500, 307, 204, 204}) {
		t.Errorf("statuses %v", statuses)
	}
	var rows []UsageRow
	if err := json.Unmarshal([]byte(body), &rows); err != nil || !reflect.DeepEqual(s.UsageReports()[2].Rows, rows) {
		t.Errorf("rows recorded as %v", s.UsageReports()[2].Rows)
	}
}
