package app

import (
	"log/slog"
	"net/http"

	"github.com/fledge-flags/fledge/admin"
	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/registry"
)

// edgeRoutes are the api role's endpoints beyond the proxy's: the
// edge-identities admin API (mounted only when admin tokens are
// configured; otherwise its paths answer 404) and the trait endpoints.
// docs, when not nil, is told of every override change the admin API
// makes.
func edgeRoutes(cfg *config.Config, reg *registry.Registry, store identity.Store, docs *admin.DocumentOverrides, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	if len(cfg.Admin.Tokens) > 0 {
		mux.Handle("/api/v1/environments/", admin.New(admin.Options{
			Registry:  reg,
			Store:     store,
			Tokens:    cfg.Admin.Tokens,
			Logger:    logger,
			Documents: docs,
		}))
	}
	mux.HandleFunc("/", notFound)
	return mux
}

// notFound answers in the server's error shape.
func notFound(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"status":"not_found","message":"no such endpoint"}`))
}
