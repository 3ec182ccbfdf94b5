package app

import (
	"context"
	"log/slog"

	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/identity/dynamo"
	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/source"
)

// dynamoEnvironments serves the environments of Flagsmith's DynamoDB
// tables (environment_source dynamodb): a source.Dynamo over every
// configured region, failing over as the identity store does, refreshed
// every api_poll_frequency_seconds until ctx ends. The set is discovered:
// readiness, which the returned Freshness gives, waits for the first
// complete read.
func dynamoEnvironments(ctx context.Context, role Role, cfg *config.Config, logger *slog.Logger) (*registry.Registry, *source.Freshness, *source.Dynamo, error) {
	regions, err := dynamoRegions(ctx, cfg, logger)
	if err != nil {
		return nil, nil, nil, err
	}
	dc := cfg.Store.DynamoDB
	reader, err := dynamo.NewRegions(regions, dynamo.RegionsOptions{
		RequestTimeout: dc.RequestTimeout(),
		FailoverBudget: dc.FailoverBudget(),
		HealthInterval: dc.HealthCheckInterval(),
		Logger:         logger,
	})
	if err != nil {
		return nil, nil, nil, errStore("store.dynamodb.regions", err)
	}
	reg := registry.New(nil)
	fresh := source.NewFreshness(reg)
	fresh.EnableDiscovery()
	var snapshots *source.SnapshotDir
	if cfg.SnapshotDir != "" {
		snapshots = &source.SnapshotDir{Dir: cfg.SnapshotDir}
	}
	src := &source.Dynamo{
		Reader:    reader,
		Registry:  reg,
		Freshness: fresh,
		Keys:      dc.EnvironmentKeys,
		// The api role on the dynamodb store merges the same v2 override
		// items into the served document (admin.DocumentOverrides);
		// everywhere else the source does.
		MergeOverrides: !(role == API && cfg.Store.Type == "dynamodb"),
		Interval:       cfg.PollInterval(),
		Timeout:        cfg.PollTimeout(),
		Logger:         logger,
		Snapshots:      snapshots,
	}
	go func() {
		src.Run(ctx)
		if err := reader.Close(); err != nil {
			logger.Error("closing the dynamodb environment source", "error", err.Error())
		}
	}()
	which := "every environment in " + dc.Tables.Environments
	if len(dc.EnvironmentKeys) > 0 {
		which = "store.dynamodb.environment_keys"
	}
	logger.Info("environments from dynamodb", "environments", which, "api_keys_table", dc.Tables.APIKeys,
		"refresh_seconds", cfg.APIPollFrequencySeconds, "identity_overrides_merged", src.MergeOverrides)
	return reg, fresh, src, nil
}
