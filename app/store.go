package app

import (
	"context"
	"log/slog"

	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/identity"
)

// OpenStore opens the configured identity store.
func OpenStore(ctx context.Context, cfg *config.Config, logger *slog.Logger) (identity.Store, error) {
	switch cfg.Store.Type {
	case "embedded", "":
		return openEmbedded(ctx, cfg, logger)
	case "dynamodb":
		return openDynamo(ctx, cfg, logger)
	}
	return nil, errStore("store.type", errNoStore)
}
