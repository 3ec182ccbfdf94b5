package fakeapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxRequestBody bounds the request bodies the server reads and records.
const maxRequestBody = 1 << 20

// AnalyticsReport is one flag analytics report the server took, as core's
// POST /api/v1/analytics/flags/ does (api.md §2.7): the body is a flat
// object of feature name to evaluation count; entries whose count is not a
// JSON integer (booleans and floats included) or whose name is not a
// feature of the environment are skipped, the rest kept.
type AnalyticsReport struct {
	// EnvironmentKey is the X-Environment-Key it was sent with, and
	// ServerKey that of the document it authenticated against.
	EnvironmentKey string
	ServerKey      string
	// Counts are the entries core keeps.
	Counts map[string]int64
	// Skipped maps the names of skipped entries to the reason.
	Skipped map[string]string
}

func (a AnalyticsReport) clone() AnalyticsReport {
	a.Counts = cloneMap(a.Counts)
	a.Skipped = cloneMap(a.Skipped)
	return a
}

func cloneMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// AnalyticsReports returns a copy of every analytics report taken so far, in
// arrival order.
func (s *Server) AnalyticsReports() []AnalyticsReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AnalyticsReport, len(s.analytics))
	for i, a := range s.analytics {
		out[i] = a.clone()
	}
	return out
}

// AnalyticsTotals sums the counts of every report taken for the environment
// whose document is registered under serverKey.
func (s *Server) AnalyticsTotals(serverKey string) map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	for _, a := range s.analytics {
		if a.ServerKey != serverKey {
			continue
		}
		for name, n := range a.Counts {
			out[name] += n
		}
	}
	return out
}

// analyticsEnvironment finds the document a key authenticates against:
// core's SDK authentication accepts the client-side key (the document's
// api_key) or a server-side key.
func (s *Server) analyticsEnvironment(key string) (string, *document) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.docs[key]; d != nil {
		return key, d
	}
	for serverKey, d := range s.docs {
		if key != "" && d.apiKey == key {
			return serverKey, d
		}
	}
	return "", nil
}

func (s *Server) serveAnalytics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		body := fmt.Sprintf(`{"detail":"Method \"%s\" not allowed."}`, r.Method)
		writeBody(w, r, http.StatusMethodNotAllowed, contentJSON, []byte(body))
		return
	}
	key := r.Header.Get("X-Environment-Key")
	serverKey, d := s.analyticsEnvironment(key)
	if d == nil {
		writeBody(w, r, http.StatusForbidden, contentJSON, []byte(body403))
		return
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}") // DRF's request.data for an empty body
	}
	if !json.Valid(raw) {
		writeBody(w, r, http.StatusBadRequest, contentJSON, []byte(`{"detail":"JSON parse error"}`))
		return
	}
	var entries map[string]json.RawMessage
	if json.Unmarshal(raw, &entries) != nil || entries == nil {
		writeBody(w, r, http.StatusBadRequest, contentJSON, []byte(`{"non_field_errors":["Expected a JSON object."]}`))
		return
	}
	report := AnalyticsReport{EnvironmentKey: key, ServerKey: serverKey, Counts: map[string]int64{}, Skipped: map[string]string{}}
	for name, v := range entries {
		n, reason := pythonInt(v)
		switch {
		case reason != "":
			report.Skipped[name] = reason
		case !d.features[name]:
			report.Skipped[name] = "not a feature of the environment"
		default:
			report.Counts[name] = n
		}
	}
	s.mu.Lock()
	s.analytics = append(s.analytics, report)
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// pythonInt applies core's test, type(count) is int, to a JSON value: an
// integer literal (any sign) is an int; a fraction or exponent makes a
// float; true and false are bools. reason is empty when it is an int.
func pythonInt(v json.RawMessage) (int64, string) {
	s := string(bytes.TrimSpace(v))
	if s == "" || strings.ContainsAny(s, ".eE") || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return 0, "count is not an integer"
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// A Python int, but one this stand-in cannot hold.
		return 0, "count does not fit in int64"
	}
	return n, ""
}

// readBody reads and keeps the body of a request that has one, leaving a
// copy in r.Body for the handler.
func readBody(r *http.Request) ([]byte, error) {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}
