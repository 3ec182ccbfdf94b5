package app

import (
	"context"
	"log/slog"

	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/metrics"
)

// OpenStore opens the configured identity store; rec hears of the
// embedded store's group commits.
func OpenStore(ctx context.Context, cfg *config.Config, logger *slog.Logger, rec metrics.Recorder) (identity.Store, error) {
	switch cfg.Store.Type {
	case "embedded", "":
		return openEmbedded(ctx, cfg, logger, rec)
	case "dynamodb":
		return openDynamo(ctx, cfg, logger)
	}
	return nil, errStore("store.type", errNoStore)
}
