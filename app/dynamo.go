package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/dynamo"
)

// dynamoRegions builds one store per configured region, in order. With no
// regions configured there is one, the AWS configuration's (AWS_REGION).
// Credentials come from the standard AWS chain (AWS_* variables, shared
// files, the instance or task role).
func dynamoRegions(ctx context.Context, cfg *config.Config, logger *slog.Logger) ([]dynamo.Region, error) {
	dc := cfg.Store.DynamoDB
	opts := dynamo.Options{
		Tables: dynamo.Tables{
			Identities:     dc.Tables.Identities,
			Environments:   dc.Tables.Environments,
			EnvironmentsV2: dc.Tables.EnvironmentsV2,
			APIKeys:        dc.Tables.APIKeys,
		},
		Logger: logger,
	}
	regions := dc.Regions
	if len(regions) == 0 {
		regions = []config.DynamoDBRegion{{}}
	}
	var out []dynamo.Region
	for i, r := range regions {
		o := opts
		o.Region, o.Endpoint = r.Region, r.Endpoint
		c, err := dynamo.NewClient(ctx, o)
		if err != nil {
			setting := "store.dynamodb.regions"
			if len(dc.Regions) > 0 {
				setting = fmt.Sprintf("store.dynamodb.regions[%d]", i)
			}
			return nil, errStore(setting, err)
		}
		out = append(out, dynamo.Region{Name: c.Options().Region, Store: dynamo.New(c, o)})
	}
	return out, nil
}

// openDynamo opens the dynamodb store: Regions over every configured
// region, failing over and back as dynamo.Regions describes.
func openDynamo(ctx context.Context, cfg *config.Config, logger *slog.Logger) (identity.Store, error) {
	regions, err := dynamoRegions(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	dc := cfg.Store.DynamoDB
	r, err := dynamo.NewRegions(regions, dynamo.RegionsOptions{
		RequestTimeout: dc.RequestTimeout(),
		FailoverBudget: dc.FailoverBudget(),
		HealthInterval: dc.HealthCheckInterval(),
		Logger:         logger,
	})
	if err != nil {
		return nil, errStore("store.dynamodb.regions", err)
	}
	names := make([]string, len(regions))
	for i, reg := range regions {
		names[i] = reg.Name
	}
	logger.Info("identity store: dynamodb", "regions", names, "identities_table", dc.Tables.Identities,
		"request_timeout", dc.RequestTimeout(), "failover_budget", dc.FailoverBudget())
	return r, nil
}

// storeStatus is the readiness answer's "store" field for DynamoDB.
type storeStatus struct {
	Type string `json:"type"`
	dynamo.RegionsStatus
}

// CreateTables creates Flagsmith's tables, with their indexes and
// on-demand billing, in every configured region (fledge api
// --create-tables). Tables that exist are left as they are.
func CreateTables(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	if cfg.Store.Type != "dynamodb" {
		return errStore("store.type", fmt.Errorf("is %q: --create-tables needs the dynamodb store", cfg.Store.Type))
	}
	regions, err := dynamoRegions(ctx, cfg, logger)
	if err != nil {
		return err
	}
	for _, r := range regions {
		if err := r.Store.CreateTables(ctx); err != nil {
			return fmt.Errorf("creating tables in %s: %w", r.Name, err)
		}
		t := r.Store.Tables()
		logger.Info("dynamodb tables ready", "region", r.Name,
			"tables", []string{t.Identities, t.Environments, t.EnvironmentsV2, t.APIKeys})
	}
	return nil
}
