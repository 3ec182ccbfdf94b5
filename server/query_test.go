package server

import (
	"net/http"
	"strings"
	"testing"
)

func TestQueryIdentifier(t *testing.T) {
	h, _ := newTestHandler(t, nil)
	tests := []struct {
		query string
		code  int
		want  string // substring of the body
	}{
		{"identifier=qa-alice", 200, `"identifier":"qa-alice"`},
		{"identifier=%C3%A9t%C3%A9", 200, `"identifier":"été"`},
		{"identifier=a+b", 200, `"identifier":"a b"`},
		{"x=%zz&identifier=ok", 200, `"identifier":"ok"`}, // another parameter's fault is not ours
		{"identifier=first&identifier=second", 200, `"identifier":"first"`},
		{"identifier=%zz", 422, "malformed percent-encoding"},
		{"identifier=a%2", 422, "malformed percent-encoding"},
		{"identifier=%ff", 422, "not valid UTF-8"},
		{"identifier=%C3", 422, "not valid UTF-8"},
		{"identifier=", 422, "Field required"},
		{"other=1", 422, "Field required"},
	}
	for _, tt := range tests {
		rec := do(h, "GET", "/api/v1/identities/?"+tt.query, "", "X-Environment-Key", clientKey)
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("?%s: %d %s; want %d with %q", tt.query, rec.Code, rec.Body, tt.code, tt.want)
		}
		if rec.Code == http.StatusUnprocessableEntity && !strings.Contains(rec.Body.String(), `"loc":["query","identifier"]`) {
			t.Errorf("?%s: the error does not name the field: %s", tt.query, rec.Body)
		}
	}
}
