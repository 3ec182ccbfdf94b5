package config

import (
	"strings"
	"testing"
	"time"
)

func TestAnalyticsSettings(t *testing.T) {
	offline := `{"environments": ["env.json"], `
	tests := []struct {
		name        string
		file        string
		env         []string
		forwarding  bool
		interval    time.Duration
		maxFeatures int
	}{
		{"defaults with an upstream", onePair, nil, true, 10 * time.Second, 1000},
		{"defaults offline", `{"environments": ["env.json"]}`, nil, false, 10 * time.Second, 1000},
		{"explicitly off", onePair[:len(onePair)-1] + `, "analytics": {"forward": false}}`, nil, false, 10 * time.Second, 1000},
		{"null is the default", onePair[:len(onePair)-1] + `, "analytics": {"forward": null}}`, nil, true, 10 * time.Second, 1000},
		{"off offline", offline + `"analytics": {"forward": false}}`, nil, false, 10 * time.Second, 1000},
		{"set", onePair[:len(onePair)-1] + `, "analytics": {"flush_interval_seconds": 2.5, "max_features_per_environment": 50}}`, nil, true, 2500 * time.Millisecond, 50},
		{"environment variable merges", onePair[:len(onePair)-1] + `, "analytics": {"max_features_per_environment": 50}}`,
			[]string{`ANALYTICS={"forward":"no","flush_interval_seconds":1}`}, false, time.Second, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.file, tt.env...)
			if got := c.AnalyticsForwarding(); got != tt.forwarding {
				t.Errorf("AnalyticsForwarding = %v, want %v", got, tt.forwarding)
			}
			if got := c.Analytics.FlushInterval(); got != tt.interval {
				t.Errorf("FlushInterval = %v, want %v", got, tt.interval)
			}
			if got := c.Analytics.MaxFeaturesPerEnvironment; got != tt.maxFeatures {
				t.Errorf("MaxFeaturesPerEnvironment = %d, want %d", got, tt.maxFeatures)
			}
			if len(c.Unknown) != 0 {
				t.Errorf("unknown keys %v", c.Unknown)
			}
		})
	}
}

func TestAnalyticsErrors(t *testing.T) {
	withPair := func(rest string) string {
		return `{"environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}], ` + rest + `}`
	}
	tests := []struct {
		name, file, want string
	}{
		{"forward offline", `{"environments": ["env.json"], "analytics": {"forward": true}}`, "analytics.forward: cannot be true in offline mode"},
		{"interval below 1", withPair(`"analytics": {"flush_interval_seconds": 0.5}`), "analytics.flush_interval_seconds: must be between 1 and"},
		{"interval huge", withPair(`"analytics": {"flush_interval_seconds": 1e300}`), "analytics.flush_interval_seconds: must be between 1 and"},
		{"no features", withPair(`"analytics": {"max_features_per_environment": 0}`), "analytics.max_features_per_environment: must be between 1 and 1000000, got 0"},
		{"too many features", withPair(`"analytics": {"max_features_per_environment": 1000001}`), "analytics.max_features_per_environment: must be between 1 and 1000000"},
		{"forward not boolean", withPair(`"analytics": {"forward": "sometimes"}`), `analytics.forward: must be a boolean or null, got string "sometimes"`},
		{"not an object", withPair(`"analytics": true`), "analytics: must be an object"},
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
