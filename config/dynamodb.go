package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Settings of the DynamoDB identity store (store.type: dynamodb).

// Defaults of store.dynamodb.
const (
	DefaultDynamoDBRequestTimeout      = 5
	DefaultDynamoDBFailoverBudget      = 1
	DefaultDynamoDBHealthCheckInterval = 5
)

// Flagsmith's table names, and the variables Flagsmith's core reads them
// from (exact case, as core reads os.environ). identity/dynamo has the
// same defaults; app's tests check that they agree.
const (
	DefaultIdentitiesTable     = "flagsmith_identities"
	DefaultEnvironmentsTable   = "flagsmith_environments"
	DefaultEnvironmentsV2Table = "flagsmith_environments_v2"
	DefaultAPIKeysTable        = "flagsmith_environment_api_key"

	IdentitiesTableVar     = "IDENTITIES_TABLE_NAME_DYNAMO"
	EnvironmentsTableVar   = "ENVIRONMENTS_TABLE_NAME_DYNAMO"
	EnvironmentsV2TableVar = "ENVIRONMENTS_V2_TABLE_NAME_DYNAMO"
	APIKeysTableVar        = "ENVIRONMENTS_API_KEY_TABLE_NAME_DYNAMO"
)

// DynamoDB configures the DynamoDB identity store.
type DynamoDB struct {
	// Regions in order of preference, the node's own first. Empty: one
	// region, the AWS configuration's (AWS_REGION, the shared config file).
	Regions []DynamoDBRegion `json:"regions"`
	// Tables: Flagsmith's names, or core's variables when set; a name set
	// here wins over both.
	Tables DynamoDBTables `json:"tables"`
	// RequestTimeoutSeconds bounds one identity-store call over all
	// regions; past it the SDK request answers 503.
	RequestTimeoutSeconds float64 `json:"request_timeout_seconds"`
	// FailoverBudgetSeconds is how long a region may keep failing
	// (throttled, 5xx, timing out, unreachable) before calls move to the
	// next region. It also bounds each DynamoDB request.
	FailoverBudgetSeconds float64 `json:"failover_budget_seconds"`
	// HealthCheckIntervalSeconds is how often every region is probed in
	// the background; the node returns to the first healthy one.
	HealthCheckIntervalSeconds float64 `json:"health_check_interval_seconds"`
	// EnvironmentKeys are the client-side keys of the environments served
	// with environment_source "dynamodb"; empty: every environment in the
	// environments table.
	EnvironmentKeys []string `json:"environment_keys"`
}

// DynamoDBRegion is one region's DynamoDB.
type DynamoDBRegion struct {
	// Region is the AWS region, e.g. eu-west-2.
	Region string `json:"region"`
	// Endpoint overrides the regional endpoint (DynamoDB Local, a VPC
	// endpoint); empty uses AWS's.
	Endpoint string `json:"endpoint"`
}

// DynamoDBTables names Flagsmith's edge tables.
type DynamoDBTables struct {
	Identities     string `json:"identities"`
	Environments   string `json:"environments"`
	EnvironmentsV2 string `json:"environments_v2"`
	APIKeys        string `json:"api_keys"`
}

// RequestTimeout is RequestTimeoutSeconds as a duration.
func (d DynamoDB) RequestTimeout() time.Duration { return seconds(d.RequestTimeoutSeconds) }

// FailoverBudget is FailoverBudgetSeconds as a duration.
func (d DynamoDB) FailoverBudget() time.Duration { return seconds(d.FailoverBudgetSeconds) }

// HealthCheckInterval is HealthCheckIntervalSeconds as a duration.
func (d DynamoDB) HealthCheckInterval() time.Duration { return seconds(d.HealthCheckIntervalSeconds) }

func defaultDynamoDB() DynamoDB {
	return DynamoDB{
		Regions: []DynamoDBRegion{},
		Tables: DynamoDBTables{
			Identities:     DefaultIdentitiesTable,
			Environments:   DefaultEnvironmentsTable,
			EnvironmentsV2: DefaultEnvironmentsV2Table,
			APIKeys:        DefaultAPIKeysTable,
		},
		RequestTimeoutSeconds:      DefaultDynamoDBRequestTimeout,
		FailoverBudgetSeconds:      DefaultDynamoDBFailoverBudget,
		HealthCheckIntervalSeconds: DefaultDynamoDBHealthCheckInterval,
		EnvironmentKeys:            []string{},
	}
}

// tableVars pairs each table setting with core's variable.
func (t *DynamoDBTables) tableVars() []struct {
	setting, variable string
	dst               *string
} {
	return []struct {
		setting, variable string
		dst               *string
	}{
		{"identities", IdentitiesTableVar, &t.Identities},
		{"environments", EnvironmentsTableVar, &t.Environments},
		{"environments_v2", EnvironmentsV2TableVar, &t.EnvironmentsV2},
		{"api_keys", APIKeysTableVar, &t.APIKeys},
	}
}

// fromCoreVars applies core's table-name variables (KEY=VALUE entries,
// exact case) over the defaults, before any Fledge setting is applied.
func (t *DynamoDBTables) fromCoreVars(env []string) {
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			continue
		}
		for _, tv := range t.tableVars() {
			if k == tv.variable {
				*tv.dst = v
			}
		}
	}
}

func (d *decoder) dynamodb(dst *DynamoDB) setter {
	return func(v any, key, shown string) {
		d.object(v, key, shown, []field{
			{names: []string{"regions"}, set: d.dynamoRegions(&dst.Regions)},
			{names: []string{"tables"}, set: d.dynamoTables(&dst.Tables)},
			{names: []string{"request_timeout_seconds"}, set: d.number(&dst.RequestTimeoutSeconds)},
			{names: []string{"failover_budget_seconds"}, set: d.number(&dst.FailoverBudgetSeconds)},
			{names: []string{"health_check_interval_seconds"}, set: d.number(&dst.HealthCheckIntervalSeconds)},
			{names: []string{"environment_keys"}, set: d.strList(&dst.EnvironmentKeys)},
		})
	}
}

func (d *decoder) dynamoRegions(dst *[]DynamoDBRegion) setter {
	return func(v any, key, shown string) {
		list, ok := v.([]any)
		if !ok {
			d.fail(key, shown, mustBe("an array", v))
			return
		}
		d.clear(key, true) // a list replaces the previous one wholesale
		regions := make([]DynamoDBRegion, len(list))
		for i, item := range list {
			r := &regions[i]
			idx := "[" + strconv.Itoa(i) + "]"
			d.object(item, key+idx, shown+idx, []field{
				{names: []string{"region"}, required: true, set: d.trimmedStr(&r.Region)},
				{names: []string{"endpoint"}, set: d.trimmedStr(&r.Endpoint)},
			})
		}
		*dst = regions
	}
}

func (d *decoder) dynamoTables(dst *DynamoDBTables) setter {
	return func(v any, key, shown string) {
		var fields []field
		for _, tv := range dst.tableVars() {
			fields = append(fields, field{names: []string{tv.setting}, set: d.trimmedStr(tv.dst)})
		}
		d.object(v, key, shown, fields)
	}
}

func (c *Config) validateDynamoDB() error {
	const at = "store.dynamodb"
	dd := &c.Store.DynamoDB
	seen := map[string]int{}
	for i, r := range dd.Regions {
		idx := at + ".regions[" + strconv.Itoa(i) + "]"
		if !validRegion(r.Region) {
			return settingError(idx+".region", fmt.Sprintf("must be an AWS region such as eu-west-2, got %q", clip(r.Region)))
		}
		if j, dup := seen[r.Region]; dup {
			return settingError(idx+".region", fmt.Sprintf("duplicate of %s.regions[%d].region", at, j))
		}
		seen[r.Region] = i
		if r.Endpoint != "" {
			u, err := url.Parse(r.Endpoint)
			switch {
			case err != nil:
				return &Error{Setting: idx + ".endpoint", Msg: "malformed URL: " + unwrapURLError(err), Err: err, key: idx + ".endpoint"}
			case u.Scheme != "http" && u.Scheme != "https":
				return settingError(idx+".endpoint", "must be an http or https URL, got scheme "+strconv.Quote(u.Scheme))
			case u.Hostname() == "":
				return settingError(idx+".endpoint", "must include a host")
			}
		}
	}
	for _, tv := range dd.Tables.tableVars() {
		if !validTableName(*tv.dst) {
			return settingError(at+".tables."+tv.setting, fmt.Sprintf("must be 3–255 characters of A–Z, a–z, 0–9, _, - and . (set there or by %s), got %q", tv.variable, clip(*tv.dst)))
		}
	}
	for _, s := range []struct {
		name string
		v    float64
	}{
		{at + ".request_timeout_seconds", dd.RequestTimeoutSeconds},
		{at + ".failover_budget_seconds", dd.FailoverBudgetSeconds},
		{at + ".health_check_interval_seconds", dd.HealthCheckIntervalSeconds},
	} {
		if err := positiveSeconds(s.name, s.v); err != nil {
			return err
		}
	}
	if dd.FailoverBudgetSeconds > dd.RequestTimeoutSeconds {
		return settingError(at+".failover_budget_seconds", fmt.Sprintf("must not exceed %s.request_timeout_seconds (%s), or no call could fail over, got %s",
			at, formatFloat(dd.RequestTimeoutSeconds), formatFloat(dd.FailoverBudgetSeconds)))
	}
	return nil
}

// validRegion accepts AWS region names: lower-case letters, digits and
// dashes (eu-west-2, us-gov-west-1, local names for DynamoDB Local).
func validRegion(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// validTableName is DynamoDB's rule for table names.
func validTableName(s string) bool {
	if len(s) < 3 || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
