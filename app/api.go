package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/fledge-flags/fledge/admin"
	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/edge"
	"github.com/fledge-flags/fledge/identity/dynamo"
	"github.com/fledge-flags/fledge/metrics"
	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/server"
)

// apiRole adds the Edge API to the proxy's handler options: the identity
// store, the persisting identify stage and the api role's routes.
func apiRole(ctx context.Context, cfg *config.Config, reg *registry.Registry, opts *server.Options, rec metrics.Recorder, logger *slog.Logger) (io.Closer, error) {
	raw, err := OpenStore(ctx, cfg, logger, rec)
	if err != nil {
		return nil, err
	}
	store := metrics.InstrumentStore(raw, rec)
	id := &edge.Identifier{
		Store:                       store,
		Logger:                      logger,
		EvaluateBlockedClientTraits: cfg.API.EvaluateDisallowedClientTraits,
	}
	opts.Edge = true
	opts.Identifier = id
	opts.Traits = id
	opts.SigningKey = []byte(cfg.Forwarding.SigningKey)
	// docs renders the environment document with the store's identity
	// overrides, for local-evaluation SDKs.
	docs := admin.NewDocumentOverrides(store, admin.DocumentOptions{MaxAge: documentOverridesMaxAge})
	opts.Document = docs.Document
	opts.Routes = edgeRoutes(cfg, reg, store, docs, logger)
	if r, ok := raw.(*dynamo.Regions); ok {
		opts.StoreStatus = func() any { return storeStatus{Type: "dynamodb", RegionsStatus: r.Status()} }
	}
	return store, nil
}

// documentOverridesMaxAge bounds how stale the document's identity
// overrides may be when another process writes the store.
const documentOverridesMaxAge = 30 * time.Second

var errNoStore = errors.New("no such store type")
