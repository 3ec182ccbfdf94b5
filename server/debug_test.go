package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestDebugHandler(t *testing.T) {
	h, _ := newTestHandler(t, nil)
	debug := DebugHandler(h.opt.Registry)

	vars := do(debug, "GET", "/debug/vars", "")
	if vars.Code != http.StatusOK || vars.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("/debug/vars: %d %q", vars.Code, vars.Header().Get("Content-Type"))
	}
	var v debugVars
	if err := json.Unmarshal(vars.Body.Bytes(), &v); err != nil {
		t.Fatalf("/debug/vars is not JSON: %v\n%s", err, vars.Body.Bytes())
	}
	if v.Goroutines < 1 || v.HeapAlloc == 0 || v.Sys == 0 {
		t.Errorf("implausible figures: %+v", v)
	}
	if len(v.Environments) != 1 || !v.Environments[0].Loaded || v.Environments[0].UpdatedAt == nil {
		t.Errorf("environments: %+v", v.Environments)
	}
	// Keys appear redacted only, server keys not at all.
	if strings.Contains(vars.Body.String(), clientKey) || strings.Contains(vars.Body.String(), serverKey) {
		t.Errorf("/debug/vars shows a key in full: %s", vars.Body.Bytes())
	}

	if idx := do(debug, "GET", "/debug/pprof/", ""); idx.Code != http.StatusOK || !strings.Contains(idx.Body.String(), "goroutine") {
		t.Errorf("/debug/pprof/: %d", idx.Code)
	}
	if g := do(debug, "GET", "/debug/pprof/goroutine?debug=1", ""); g.Code != http.StatusOK || !strings.Contains(g.Body.String(), "goroutine profile: total") {
		t.Errorf("goroutine profile: %d", g.Code)
	}
	if post := do(debug, "POST", "/debug/vars", ""); post.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /debug/vars: %d", post.Code)
	}
	// The SDK listener never serves diagnostics.
	for _, path := range []string{"/debug/vars", "/debug/pprof/"} {
		if r := do(h, "GET", path, "", "X-Environment-Key", serverKey); r.Code != http.StatusNotFound {
			t.Errorf("SDK listener %s: %d, want 404", path, r.Code)
		}
	}
}
