package app

import (
	"context"
	"errors"
	"log/slog"

	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/identity"
)

func openEmbedded(ctx context.Context, cfg *config.Config, logger *slog.Logger) (identity.Store, error) {
	return nil, errStore("store.path", errors.New("embedded store not built yet"))
}
