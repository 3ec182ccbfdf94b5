package app

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/bolt"
)

// embeddedFile is the database file inside store.path.
const embeddedFile = "identities.db"

func openEmbedded(_ context.Context, cfg *config.Config, logger *slog.Logger) (identity.Store, error) {
	s, err := bolt.Open(filepath.Join(cfg.Store.Path, embeddedFile), bolt.Options{Logger: logger})
	if err != nil {
		return nil, errStore("store.path", err)
	}
	logger.Info("identity store: embedded", "path", cfg.Store.Path)
	return s, nil
}
