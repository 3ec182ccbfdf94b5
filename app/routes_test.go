package app

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/identity/memstore"
	"github.com/fledge-flags/fledge/registry"
)

func TestEdgeRoutesMountsAdmin(t *testing.T) {
	raw := []byte(`{"id":1,"api_key":"envkey","project":{"segments":[]},"feature_states":[]}`)
	doc, err := environment.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := environment.Compile(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.SetDocumentJSON(raw); err != nil {
		t.Fatal(err)
	}
	reg := registry.New([]registry.Pair{{ClientKey: "envkey"}})
	reg.Env("envkey").Store(snap)
	const token = "a-long-admin-token-123"
	get := func(cfg *config.Config, path string) (int, string) {
		h := edgeRoutes(cfg, reg, memstore.New(), nil, slog.New(slog.DiscardHandler))
		req := httptest.NewRequestWithContext(t.Context(), "GET", path, nil)
		req.Header.Set("Authorization", "Token "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	on, off := &config.Config{}, &config.Config{}
	on.Admin.Tokens = []string{token}
	list := "/api/v1/environments/envkey/edge-identities/"
	if code, body := get(on, list); code != 200 || !strings.Contains(body, `"results":[]`) {
		t.Fatalf("with a token: %d %s", code, body)
	}
	if code, body := get(off, list); code != 404 || !strings.Contains(body, "not_found") {
		t.Fatalf("without tokens: %d %s", code, body)
	}
	if code, body := get(on, "/api/v1/elsewhere/"); code != 404 || !strings.Contains(body, "not_found") {
		t.Fatalf("unknown path: %d %s", code, body)
	}
}
