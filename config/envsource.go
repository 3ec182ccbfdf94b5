package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Where environment documents come from. "api" (the default) polls
// api_url for each of environment_key_pairs (or discovers them with
// proxy_key), unless environments lists offline files; "dynamodb" reads
// them, and their server-side keys, from the DynamoDB tables Flagsmith's
// core writes (store.dynamodb: regions, tables, environment_keys).
const (
	EnvironmentSourceAPI      = "api"
	EnvironmentSourceDynamoDB = "dynamodb"
)

// EnvironmentsFromDynamoDB reports whether environment_source is
// "dynamodb".
func (c *Config) EnvironmentsFromDynamoDB() bool {
	return c.EnvironmentSource == EnvironmentSourceDynamoDB
}

func (c *Config) validateEnvironmentSource() error {
	c.EnvironmentSource = strings.ToLower(strings.TrimSpace(c.EnvironmentSource))
	switch c.EnvironmentSource {
	case "":
		c.EnvironmentSource = EnvironmentSourceAPI
	case EnvironmentSourceAPI, EnvironmentSourceDynamoDB:
	default:
		return settingError("environment_source", `must be "api" or "dynamodb", not `+strconv.Quote(clip(c.EnvironmentSource)))
	}
	keys := c.Store.DynamoDB.EnvironmentKeys
	if !c.EnvironmentsFromDynamoDB() {
		if len(keys) > 0 {
			return settingError("store.dynamodb.environment_keys", `is only used with environment_source "dynamodb"`)
		}
		return nil
	}
	const why = `cannot be set with environment_source "dynamodb": environments and their server-side keys come from the DynamoDB tables`
	switch {
	case len(c.EnvironmentKeyPairs) > 0:
		return settingError("environment_key_pairs", why+" (store.dynamodb.environment_keys chooses which environments to serve)")
	case c.offline():
		return settingError("environments", why)
	case c.ProxyKeyEnabled():
		return settingError("proxy_key", why)
	}
	seen := map[string]int{}
	for i, k := range keys {
		at := "store.dynamodb.environment_keys[" + strconv.Itoa(i) + "]"
		switch {
		case k == "":
			return settingError(at, "must not be empty")
		case strings.HasPrefix(k, "ser."):
			return settingError(at, `must be a client-side key, not a server-side one ("ser.…")`)
		case strings.ContainsAny(k, " \t\r\n"):
			return settingError(at, "must not contain spaces")
		}
		if j, dup := seen[k]; dup {
			return settingError(at, fmt.Sprintf("duplicate of store.dynamodb.environment_keys[%d]", j))
		}
		seen[k] = i
	}
	return nil
}
