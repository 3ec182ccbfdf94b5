package app

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/identity/dynamo"
)

// TestTableDefaultsAgree: config shows the table names identity/dynamo
// uses when nothing is set.
func TestTableDefaultsAgree(t *testing.T) {
	c := config.Default().Store.DynamoDB.Tables
	d := dynamo.DefaultTables()
	got := dynamo.Tables{Identities: c.Identities, Environments: c.Environments, EnvironmentsV2: c.EnvironmentsV2, APIKeys: c.APIKeys}
	if got != d {
		t.Fatalf("config defaults %+v; identity/dynamo %+v", got, d)
	}
	vars := map[string]string{
		config.IdentitiesTableVar:     dynamo.EnvIdentitiesTable,
		config.EnvironmentsTableVar:   dynamo.EnvEnvironmentsTable,
		config.EnvironmentsV2TableVar: dynamo.EnvEnvironmentsV2Table,
		config.APIKeysTableVar:        dynamo.EnvAPIKeysTable,
	}
	for a, b := range vars {
		if a != b {
			t.Errorf("variable %s in config, %s in identity/dynamo", a, b)
		}
	}
}

func TestDynamoRegions(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg := config.Default()
	cfg.Store.Type = "dynamodb"
	cfg.Store.DynamoDB.Regions = []config.DynamoDBRegion{{Region: "eu-west-2"}, {Region: "us-east-1", Endpoint: "http://127.0.0.1:9"}}
	cfg.Store.DynamoDB.Tables.Identities = "ids"
	regions, err := dynamoRegions(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if len(regions) != 2 || regions[0].Name != "eu-west-2" || regions[1].Name != "us-east-1" {
		t.Fatalf("regions %+v", regions)
	}
	if got := regions[1].Store.Tables().Identities; got != "ids" {
		t.Errorf("identities table %q", got)
	}
	if ep := regions[1].Store.Client().Options().BaseEndpoint; ep == nil || *ep != "http://127.0.0.1:9" {
		t.Errorf("endpoint %v", ep)
	}
}

func TestCreateTablesNeedsDynamoDB(t *testing.T) {
	cfg := config.Default()
	err := CreateTables(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "store.type") {
		t.Fatalf("CreateTables on the embedded store: %v", err)
	}
}
