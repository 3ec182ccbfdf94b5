package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/metrics"
	"github.com/fledge-flags/fledge/migrate"
)

// MigrateOptions is what `fledge migrate` asks for beyond the configuration
// (which names the destination store).
type MigrateOptions struct {
	// FromDatabase is Core's PostgreSQL DSN; FromAPI and Token read Core's
	// admin API instead. Exactly one of the two.
	FromDatabase    string
	FromAPI, Token  string
	ProjectID       int64
	EnvironmentKeys []string
	DryRun, Restart bool
	// Checkpoint is the checkpoint file; "" puts it beside the embedded
	// store (migrate-checkpoint.json), or in the working directory.
	Checkpoint string
	Progress   io.Writer
}

// ErrMigrateUsage marks option errors (exit status 2).
var ErrMigrateUsage = errors.New("usage")

// Migrate copies a Flagsmith Core's identities into the configured store.
func Migrate(ctx context.Context, cfg *config.Config, mo MigrateOptions, logger *slog.Logger) (migrate.Report, error) {
	if (mo.FromDatabase == "") == (mo.FromAPI == "") {
		return migrate.Report{}, fmt.Errorf("%w: give exactly one of --from-database and --from-api", ErrMigrateUsage)
	}
	if mo.ProjectID == 0 && len(mo.EnvironmentKeys) == 0 {
		return migrate.Report{}, fmt.Errorf("%w: give --project or at least one --environment", ErrMigrateUsage)
	}
	var (
		src    migrate.Source
		closer func() error
	)
	if mo.FromDatabase != "" {
		pg, err := migrate.NewPostgres(ctx, migrate.PostgresConfig{DSN: mo.FromDatabase, ProjectID: mo.ProjectID, EnvironmentKeys: mo.EnvironmentKeys})
		if err != nil {
			return migrate.Report{}, fmt.Errorf("--from-database: %w", err)
		}
		src, closer = pg, pg.Close
	} else {
		if mo.Token == "" {
			return migrate.Report{}, fmt.Errorf("%w: --from-api needs --token", ErrMigrateUsage)
		}
		if mo.ProjectID == 0 {
			return migrate.Report{}, fmt.Errorf("%w: --from-api needs --project (features are listed per project)", ErrMigrateUsage)
		}
		rest, err := migrate.NewREST(migrate.RESTConfig{BaseURL: mo.FromAPI, Token: mo.Token, ProjectID: mo.ProjectID, EnvironmentKeys: mo.EnvironmentKeys, Logger: logger})
		if err != nil {
			return migrate.Report{}, fmt.Errorf("--from-api: %w", err)
		}
		src = rest
	}
	if closer != nil {
		defer func() { _ = closer() }()
	}
	var store identity.Store
	if !mo.DryRun {
		var err error
		if store, err = OpenStore(ctx, cfg, logger, metrics.Nop{}); err != nil {
			return migrate.Report{}, err
		}
		defer store.Close()
	}
	checkpoint := mo.Checkpoint
	if checkpoint == "" && !mo.DryRun {
		dir := "."
		if cfg.Store.Type == "embedded" {
			dir = cfg.Store.Path
		}
		checkpoint = filepath.Join(dir, "migrate-checkpoint.json")
	}
	return migrate.Run(ctx, migrate.Options{
		Source:         src,
		Store:          store,
		DryRun:         mo.DryRun,
		CheckpointPath: checkpoint,
		Restart:        mo.Restart,
		Progress:       mo.Progress,
		Logger:         logger,
	})
}
