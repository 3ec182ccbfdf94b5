package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDynamoDBDefaults(t *testing.T) {
	c := mustLoad(t, onePair)
	d := c.Store.DynamoDB
	want := DynamoDB{
		Regions: []DynamoDBRegion{},
		Tables: DynamoDBTables{
			Identities:     "flagsmith_identities",
			Environments:   "flagsmith_environments",
			EnvironmentsV2: "flagsmith_environments_v2",
			APIKeys:        "flagsmith_environment_api_key",
		},
		RequestTimeoutSeconds:      5,
		FailoverBudgetSeconds:      1,
		HealthCheckIntervalSeconds: 5,
		EnvironmentKeys:            []string{},
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("got  %+v\nwant %+v", d, want)
	}
	if d.RequestTimeout() != 5*time.Second || d.FailoverBudget() != time.Second || d.HealthCheckInterval() != 5*time.Second {
		t.Errorf("durations: %v %v %v", d.RequestTimeout(), d.FailoverBudget(), d.HealthCheckInterval())
	}
}

func TestDynamoDBSettings(t *testing.T) {
	file := withPairFile(`"store": {"type": "DynamoDB", "dynamodb": {
		"regions": [{"region": "eu-west-2"}, {"region": "us-east-1", "endpoint": " http://127.0.0.1:4567 "}],
		"tables": {"identities": "ids"},
		"request_timeout_seconds": 2.5, "failover_budget_seconds": 0.5, "health_check_interval_seconds": 3}}`)
	tests := []struct {
		name   string
		env    []string
		tables DynamoDBTables
	}{
		{"file", nil, DynamoDBTables{"ids", "flagsmith_environments", "flagsmith_environments_v2", "flagsmith_environment_api_key"}},
		{
			"core's variables below Fledge's setting",
			[]string{"IDENTITIES_TABLE_NAME_DYNAMO=core_ids", "ENVIRONMENTS_TABLE_NAME_DYNAMO=envs", "ENVIRONMENTS_V2_TABLE_NAME_DYNAMO=envs2", "ENVIRONMENTS_API_KEY_TABLE_NAME_DYNAMO=keys"},
			DynamoDBTables{"ids", "envs", "envs2", "keys"},
		},
		{"core's variables are exact-case", []string{"environments_table_name_dynamo=lower"}, DynamoDBTables{"ids", "flagsmith_environments", "flagsmith_environments_v2", "flagsmith_environment_api_key"}},
		{"empty variable keeps the default", []string{"ENVIRONMENTS_TABLE_NAME_DYNAMO="}, DynamoDBTables{"ids", "flagsmith_environments", "flagsmith_environments_v2", "flagsmith_environment_api_key"}},
		{"STORE variable merges", []string{`STORE={"dynamodb":{"tables":{"api_keys":"keys2"}}}`}, DynamoDBTables{"ids", "flagsmith_environments", "flagsmith_environments_v2", "keys2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, file, tt.env...)
			d := c.Store.DynamoDB
			if c.Store.Type != "dynamodb" {
				t.Errorf("type %q", c.Store.Type)
			}
			wantRegions := []DynamoDBRegion{{Region: "eu-west-2"}, {Region: "us-east-1", Endpoint: "http://127.0.0.1:4567"}}
			if !reflect.DeepEqual(d.Regions, wantRegions) {
				t.Errorf("regions %+v", d.Regions)
			}
			if d.Tables != tt.tables {
				t.Errorf("tables %+v; want %+v", d.Tables, tt.tables)
			}
			if d.RequestTimeout() != 2500*time.Millisecond || d.FailoverBudget() != 500*time.Millisecond || d.HealthCheckInterval() != 3*time.Second {
				t.Errorf("durations %v %v %v", d.RequestTimeout(), d.FailoverBudget(), d.HealthCheckInterval())
			}
		})
	}
}

func withPairFile(rest string) string {
	return `{"environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}], ` + rest + `}`
}

func TestDynamoDBErrors(t *testing.T) {
	dd := func(block string) string {
		return withPairFile(`"store": {"type": "dynamodb", "dynamodb": ` + block + `}`)
	}
	tests := []struct {
		name string
		file string
		env  []string
		want string
	}{
		{"region missing", dd(`{"regions": [{"endpoint": "http://x"}]}`), nil, "store.dynamodb.regions[0].region: required"},
		{"region empty", dd(`{"regions": [{"region": ""}]}`), nil, "store.dynamodb.regions[0].region: must be an AWS region"},
		{"region upper case", dd(`{"regions": [{"region": "EU-WEST-2"}]}`), nil, "store.dynamodb.regions[0].region: must be an AWS region"},
		{"region duplicate", dd(`{"regions": [{"region": "eu-west-2"}, {"region": "eu-west-2", "endpoint": "http://x"}]}`), nil, "store.dynamodb.regions[1].region: duplicate of store.dynamodb.regions[0].region"},
		{"regions not a list", dd(`{"regions": "eu-west-2"}`), nil, "store.dynamodb.regions: must be an array"},
		{"endpoint scheme", dd(`{"regions": [{"region": "eu-west-2", "endpoint": "dynamodb.local:8000"}]}`), nil, "store.dynamodb.regions[0].endpoint: must be an http or https URL"},
		{"endpoint no host", dd(`{"regions": [{"region": "eu-west-2", "endpoint": "http:///x"}]}`), nil, "store.dynamodb.regions[0].endpoint: must include a host"},
		{"table name", dd(`{"tables": {"identities": "a b"}}`), nil, "store.dynamodb.tables.identities: must be 3–255 characters"},
		{"table name from core's variable", withPairFile(`"store": {"type": "dynamodb"}`), []string{"ENVIRONMENTS_API_KEY_TABLE_NAME_DYNAMO=x"}, "store.dynamodb.tables.api_keys: must be 3–255 characters of A–Z, a–z, 0–9, _, - and . (set there or by ENVIRONMENTS_API_KEY_TABLE_NAME_DYNAMO)"},
		{"request timeout zero", dd(`{"request_timeout_seconds": 0}`), nil, "store.dynamodb.request_timeout_seconds: must be greater than 0"},
		{"budget negative", dd(`{"failover_budget_seconds": -1}`), nil, "store.dynamodb.failover_budget_seconds: must be greater than 0"},
		{"interval wrong type", dd(`{"health_check_interval_seconds": "often"}`), nil, "store.dynamodb.health_check_interval_seconds: must be a number"},
		{"budget above request timeout", dd(`{"request_timeout_seconds": 1, "failover_budget_seconds": 2}`), nil, "store.dynamodb.failover_budget_seconds: must not exceed store.dynamodb.request_timeout_seconds (1)"},
		{"block not an object", dd(`[]`), nil, "store.dynamodb: must be an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadString(tt.file, tt.env...)
			if err == nil {
				t.Fatalf("no error; store %+v", c.Store)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not *config.Error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}
