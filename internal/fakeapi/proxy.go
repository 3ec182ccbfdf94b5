package fakeapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"
)

// Proxy-key endpoints, as shared/spec/proxy-key.md describes them (the Rust
// edge proxy's contract; core's side is known only from the proxy's tests):
//
//   - GET /api/v1/proxy/config/ with X-Proxy-Key answers a bare JSON array of
//     environments, each with its client-side key and server-side keys
//     ({key, active, expires_at}) (§2.1–2.2);
//   - POST /api/v1/proxy/usage/ with X-Proxy-Key and Idempotency-Key takes a
//     bare array of {client_side_key, resource, count} rows, at most
//     MaxUsageRows, answers 204, and counts a repeated Idempotency-Key once
//     (§3.2–3.5).
//
// A missing or wrong X-Proxy-Key gets 401 on both. Document fetches are
// not refused without X-Proxy-Key (core does not require it), but a server
// key that the proxy configuration lists as inactive or expired gets 403,
// as a revoked key does.

// MaxUsageRows is the server's cap on rows per usage report
// (MAX_USAGE_ROWS).
const MaxUsageRows = 1000

// ProxyEnvironment is one environment of the proxy configuration.
type ProxyEnvironment struct {
	ID             int
	Name           string
	ClientSideKey  string
	ServerSideKeys []ProxyServerKey
	UpdatedAt      time.Time
	ProjectID      int
	OrganisationID int
}

// ProxyServerKey is one server-side key of a ProxyEnvironment; a nil
// ExpiresAt never expires.
type ProxyServerKey struct {
	Key       string
	Active    bool
	ExpiresAt *time.Time
}

func (k ProxyServerKey) validAt(now time.Time) bool {
	return k.Active && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

// MarshalJSON writes the environment in the frozen contract shape (§2.2).
func (e ProxyEnvironment) MarshalJSON() ([]byte, error) {
	type key struct {
		Key       string  `json:"key"`
		Active    bool    `json:"active"`
		ExpiresAt *string `json:"expires_at"`
	}
	keys := make([]key, len(e.ServerSideKeys))
	for i, k := range e.ServerSideKeys {
		keys[i] = key{Key: k.Key, Active: k.Active}
		if k.ExpiresAt != nil {
			s := k.ExpiresAt.UTC().Format(time.RFC3339Nano)
			keys[i].ExpiresAt = &s
		}
	}
	updated := e.UpdatedAt
	if updated.IsZero() {
		updated = time.Date(2026, 8, 15, 8, 57, 43, 311081000, time.UTC)
	}
	return json.Marshal(struct {
		ID             int    `json:"id"`
		Name           string `json:"name"`
		ClientSideKey  string `json:"client_side_key"`
		ServerSideKeys []key  `json:"server_side_keys"`
		UpdatedAt      string `json:"updated_at"`
		ProjectID      int    `json:"project_id"`
		OrganisationID int    `json:"organisation_id"`
	}{e.ID, e.Name, e.ClientSideKey, keys, updated.UTC().Format(time.RFC3339Nano), e.ProjectID, e.OrganisationID})
}

// UsageRow is one row of a usage report.
type UsageRow struct {
	ClientSideKey string `json:"client_side_key"`
	Resource      string `json:"resource"`
	Count         int64  `json:"count"`
}

// UsageReport is one usage POST as the server received it.
type UsageReport struct {
	ProxyKey       string
	IdempotencyKey string
	ContentType    string
	Rows           []UsageRow
	// Status is what the server answered.
	Status int
	// Duplicate: the Idempotency-Key had been accepted before, so the rows
	// were not counted again.
	Duplicate bool
	// Error is why a 400 was answered.
	Error string
}

func (u UsageReport) clone() UsageReport {
	u.Rows = append([]UsageRow(nil), u.Rows...)
	return u
}

// SetProxyKey sets the proxy key the proxy endpoints accept; "" (the
// default) accepts none.
func (s *Server) SetProxyKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proxyKey = key
}

// SetProxyEnvironments replaces what GET /proxy/config/ lists. Documents
// are still registered with SetDocument, under each server key that should
// fetch one.
func (s *Server) SetProxyEnvironments(envs []ProxyEnvironment) {
	cp := make([]ProxyEnvironment, len(envs))
	for i, e := range envs {
		e.ServerSideKeys = append([]ProxyServerKey(nil), e.ServerSideKeys...)
		cp[i] = e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proxyEnvs = cp
}

// FailUsage makes the next usage POSTs answer the given statuses, one each
// in order, instead of being taken (their Idempotency-Key is not
// remembered). 3xx answers carry a Location elsewhere on the server.
func (s *Server) FailUsage(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.usageFaults = append(s.usageFaults, statuses...)
}

// UsageReports returns every usage POST so far, in arrival order.
func (s *Server) UsageReports() []UsageReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]UsageReport, len(s.usage))
	for i, u := range s.usage {
		out[i] = u.clone()
	}
	return out
}

// UsageTotals sums the accepted, non-duplicate reports: client key →
// resource → count.
func (s *Server) UsageTotals() map[string]map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]int64{}
	for _, u := range s.usage {
		if u.Status != http.StatusNoContent || u.Duplicate {
			continue
		}
		for _, r := range u.Rows {
			if out[r.ClientSideKey] == nil {
				out[r.ClientSideKey] = map[string]int64{}
			}
			out[r.ClientSideKey][r.Resource] += r.Count
		}
	}
	return out
}

// proxyKeyOK reports whether the request carries the configured proxy key.
func (s *Server) proxyKeyOK(r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proxyKey != "" && r.Header.Get("X-Proxy-Key") == s.proxyKey
}

const bodyBadProxyKey = `{"detail":"Invalid or missing proxy key."}`

func (s *Server) serveProxyConfig(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeBody(w, r, http.StatusMethodNotAllowed, contentJSON, []byte(fmt.Sprintf(`{"detail":"Method \"%s\" not allowed."}`, r.Method)))
		return
	}
	if !s.proxyKeyOK(r) {
		writeBody(w, r, http.StatusUnauthorized, contentJSON, []byte(bodyBadProxyKey))
		return
	}
	s.mu.Lock()
	envs := s.proxyEnvs
	s.mu.Unlock()
	if envs == nil {
		envs = []ProxyEnvironment{}
	}
	body, err := json.Marshal(envs)
	if err != nil {
		panic("fakeapi: proxy config: " + err.Error())
	}
	writeBody(w, r, http.StatusOK, contentJSON, body)
}

// revokedByProxyConfig reports whether the proxy configuration lists key as
// a server key that is inactive or expired.
func (s *Server) revokedByProxyConfig(key string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.proxyEnvs {
		for _, k := range e.ServerSideKeys {
			if k.Key == key && !k.validAt(now) {
				return true
			}
		}
	}
	return false
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

var usageResources = map[string]bool{"flags": true, "identities": true, "environment-document": true}

func (s *Server) serveUsage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeBody(w, r, http.StatusMethodNotAllowed, contentJSON, []byte(fmt.Sprintf(`{"detail":"Method \"%s\" not allowed."}`, r.Method)))
		return
	}
	rep := UsageReport{
		ProxyKey:       r.Header.Get("X-Proxy-Key"),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		ContentType:    r.Header.Get("Content-Type"),
	}
	body, err := io.ReadAll(r.Body) // readBody kept a copy, at most maxRequestBody
	if err != nil {
		return
	}
	rows, parseErr := parseUsage(body)
	rep.Rows = rows
	keyOK := s.proxyKeyOK(r)

	s.mu.Lock()
	defer s.mu.Unlock()
	answer := func(status int, msg string) {
		rep.Status, rep.Error = status, msg
		s.usage = append(s.usage, rep)
		switch {
		case status == http.StatusNoContent:
			w.WriteHeader(status)
		case status >= 300 && status < 400:
			w.Header().Set("Location", "/api/v1/proxy/usage-moved/")
			w.WriteHeader(status)
		default:
			if msg == "" {
				msg = http.StatusText(status)
			}
			b, _ := json.Marshal(map[string]string{"detail": msg})
			writeBody(w, r, status, contentJSON, b)
		}
	}
	if len(s.usageFaults) > 0 {
		status := s.usageFaults[0]
		s.usageFaults = s.usageFaults[1:]
		answer(status, "")
		return
	}
	switch {
	case !keyOK:
		answer(http.StatusUnauthorized, "Invalid or missing proxy key.")
	case !uuidV4.MatchString(rep.IdempotencyKey):
		answer(http.StatusBadRequest, "Idempotency-Key must be a UUID v4")
	case parseErr != "":
		answer(http.StatusBadRequest, parseErr)
	default:
		if s.usageKeys == nil {
			s.usageKeys = map[string]bool{}
		}
		rep.Duplicate = s.usageKeys[rep.IdempotencyKey]
		s.usageKeys[rep.IdempotencyKey] = true
		answer(http.StatusNoContent, "")
	}
}

// parseUsage checks a usage body against §3.2: a bare array of at most
// MaxUsageRows rows, each exactly {client_side_key: non-empty string,
// resource: one of the three, count: positive integer}.
func parseUsage(body []byte) ([]UsageRow, string) {
	var raw []map[string]json.RawMessage
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '[' {
		return nil, "body must be a JSON array"
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, "invalid body: " + err.Error()
	}
	if len(raw) > MaxUsageRows {
		return nil, "more than " + strconv.Itoa(MaxUsageRows) + " rows"
	}
	rows := make([]UsageRow, 0, len(raw))
	for i, m := range raw {
		at := "row " + strconv.Itoa(i) + ": "
		if len(m) != 3 {
			return nil, at + "want exactly client_side_key, resource and count"
		}
		var row UsageRow
		if json.Unmarshal(m["client_side_key"], &row.ClientSideKey) != nil || row.ClientSideKey == "" {
			return nil, at + "client_side_key must be a non-empty string"
		}
		if json.Unmarshal(m["resource"], &row.Resource) != nil || !usageResources[row.Resource] {
			return nil, at + "resource must be flags, identities or environment-document"
		}
		n, reason := pythonInt(m["count"])
		if reason != "" || n <= 0 {
			return nil, at + "count must be a positive integer"
		}
		row.Count = n
		rows = append(rows, row)
	}
	return rows, ""
}
