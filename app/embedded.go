package app

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/bolt"
	"github.com/fledge-flags/fledge/metrics"
)

// embeddedFile is the database file inside store.path.
const embeddedFile = "identities.db"

func openEmbedded(_ context.Context, cfg *config.Config, logger *slog.Logger, rec metrics.Recorder) (identity.Store, error) {
	opts := bolt.Options{Logger: logger}
	if metrics.Enabled(rec) {
		opts.OnCommit = rec.StoreCommit
	}
	s, err := bolt.Open(filepath.Join(cfg.Store.Path, embeddedFile), opts)
	if err != nil {
		return nil, errStore("store.path", err)
	}
	logger.Info("identity store: embedded", "path", cfg.Store.Path)
	return s, nil
}
