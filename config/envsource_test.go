package config

import (
	"slices"
	"strings"
	"testing"
)

func TestEnvironmentSourceSettings(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		env    []string
		dynamo bool
		keys   []string
	}{
		{"api by default", onePair, nil, false, []string{}},
		{"explicit api", onePair[:len(onePair)-1] + `, "environment_source": "api"}`, nil, false, []string{}},
		{"dynamodb alone is a valid config", `{"environment_source": "dynamodb"}`, nil, true, []string{}},
		{"case and spaces", `{"environment_source": " DynamoDB "}`, nil, true, []string{}},
		{"with keys", `{"environment_source": "dynamodb", "store": {"dynamodb": {"environment_keys": ["envA", " envB "]}}}`, nil, true, []string{"envA", "envB"}},
		{"environment variable", noFile, []string{"ENVIRONMENT_SOURCE=dynamodb", `STORE={"dynamodb": {"environment_keys": "envA,envB"}}`}, true, []string{"envA", "envB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.file, tt.env...)
			if c.EnvironmentsFromDynamoDB() != tt.dynamo {
				t.Errorf("EnvironmentsFromDynamoDB = %v, want %v", c.EnvironmentsFromDynamoDB(), tt.dynamo)
			}
			if !slices.Equal(c.Store.DynamoDB.EnvironmentKeys, tt.keys) {
				t.Errorf("environment_keys = %q, want %q", c.Store.DynamoDB.EnvironmentKeys, tt.keys)
			}
			if len(c.Unknown) != 0 {
				t.Errorf("unknown keys %v", c.Unknown)
			}
			for _, w := range c.Warnings() {
				if tt.dynamo && strings.Contains(w, "every SDK request will get 401") {
					t.Errorf("warning with environments from DynamoDB: %s", w)
				}
			}
		})
	}
}

func TestEnvironmentSourceErrors(t *testing.T) {
	dyn := func(rest string) string { return `{"environment_source": "dynamodb"` + rest + `}` }
	tests := []struct {
		name, file string
		want       string
	}{
		{"unknown source", `{"environment_source": "files"}`, `environment_source: must be "api" or "dynamodb", not "files"`},
		{"not a string", `{"environment_source": true}`, "environment_source: must be a string"},
		{"keys without the source", withPairFile(`"store": {"dynamodb": {"environment_keys": ["envA"]}}`), `store.dynamodb.environment_keys: is only used with environment_source "dynamodb"`},
		{"key pairs", dyn(`, "environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}]`), `environment_key_pairs: cannot be set with environment_source "dynamodb"`},
		{"offline files", dyn(`, "environments": ["env.json"]`), `environments: cannot be set with environment_source "dynamodb"`},
		{"proxy key", dyn(`, "proxy_key": "pk"`), `proxy_key: cannot be set with environment_source "dynamodb"`},
		{"empty key", dyn(`, "store": {"dynamodb": {"environment_keys": ["a", ""]}}`), "store.dynamodb.environment_keys[1]: must not be empty"},
		{"server key", dyn(`, "store": {"dynamodb": {"environment_keys": ["ser.abc"]}}`), "store.dynamodb.environment_keys[0]: must be a client-side key"},
		{"duplicate", dyn(`, "store": {"dynamodb": {"environment_keys": ["a", "b", "a"]}}`), "store.dynamodb.environment_keys[2]: duplicate of store.dynamodb.environment_keys[0]"},
		{"not a list", dyn(`, "store": {"dynamodb": {"environment_keys": 3}}`), "store.dynamodb.environment_keys: must be an array of strings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadString(tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestEnvironmentKeysRedacted(t *testing.T) {
	c := mustLoad(t, `{"environment_source": "dynamodb", "store": {"dynamodb": {"environment_keys": ["pQuzvsMLQoOVAwITrTWDQJ"]}}}`)
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "pQuzvsMLQoOVAwITrTWDQJ") || !strings.Contains(string(out), `"environment_source": "dynamodb"`) {
		t.Errorf("redacted config:\n%s", out)
	}
	if c.Store.DynamoDB.EnvironmentKeys[0] != "pQuzvsMLQoOVAwITrTWDQJ" {
		t.Error("Redacted changed the configuration")
	}
}
