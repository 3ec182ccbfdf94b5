package app

import (
	"log/slog"
	"net/http"

	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/registry"
)

// edgeRoutes are the api role's endpoints beyond the proxy's: the
// edge-identities admin API and the trait endpoints.
func edgeRoutes(cfg *config.Config, reg *registry.Registry, store identity.Store, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	return mux
}
