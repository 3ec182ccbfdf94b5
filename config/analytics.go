package config

import (
	"strconv"
	"time"
)

// Flag analytics settings: the SDKs' flag-usage reports are summed per
// environment and forwarded to the upstream's /analytics/flags/.

// Defaults of the analytics block.
const (
	DefaultAnalyticsFlushInterval = 10
	DefaultAnalyticsMaxFeatures   = 1000
	minAnalyticsFlushInterval     = 1
	// maxAnalyticsFeatures keeps a typo from lifting the memory bound.
	maxAnalyticsFeatures = 1_000_000
)

// Analytics configures flag analytics forwarding.
type Analytics struct {
	// Forward: nil (null or unset) forwards when there is an upstream, that
	// is, except in offline mode.
	Forward *bool `json:"forward"`
	// FlushIntervalSeconds is the time between forwards (at least 1).
	FlushIntervalSeconds float64 `json:"flush_interval_seconds"`
	// MaxFeaturesPerEnvironment caps the distinct feature names kept per
	// environment between two forwards; more are dropped and logged.
	MaxFeaturesPerEnvironment int `json:"max_features_per_environment"`
}

func defaultAnalytics() Analytics {
	return Analytics{
		FlushIntervalSeconds:      DefaultAnalyticsFlushInterval,
		MaxFeaturesPerEnvironment: DefaultAnalyticsMaxFeatures,
	}
}

// offline reports whether documents come from files (environments), with
// no upstream to poll or forward to.
func (c *Config) offline() bool { return len(c.Environments) > 0 }

// AnalyticsForwarding reports whether flag analytics go to the upstream.
func (c *Config) AnalyticsForwarding() bool {
	if c.offline() {
		return false
	}
	return c.Analytics.Forward == nil || *c.Analytics.Forward
}

// FlushInterval is the time between analytics forwards.
func (a Analytics) FlushInterval() time.Duration { return seconds(a.FlushIntervalSeconds) }

func (d *decoder) analytics(dst *Analytics) setter {
	return func(v any, key, shown string) {
		d.object(v, key, shown, []field{
			{names: []string{"forward"}, set: d.nullableBool(&dst.Forward)},
			{names: []string{"flush_interval_seconds"}, set: d.number(&dst.FlushIntervalSeconds)},
			{names: []string{"max_features_per_environment"}, set: d.integer(&dst.MaxFeaturesPerEnvironment)},
		})
	}
}

func (d *decoder) nullableBool(dst **bool) setter {
	return func(v any, key, shown string) {
		if v == nil {
			*dst = nil
			d.clear(key, true)
			return
		}
		b, ok := asBool(v)
		if !ok {
			d.fail(key, shown, mustBe("a boolean or null", v))
			return
		}
		*dst = &b
		d.clear(key, true)
	}
}

func (c *Config) validateAnalytics() error {
	a := &c.Analytics
	if a.Forward != nil && *a.Forward && c.offline() {
		return settingError("analytics.forward", "cannot be true in offline mode (environments is set): there is no upstream to forward to")
	}
	if a.FlushIntervalSeconds < minAnalyticsFlushInterval || a.FlushIntervalSeconds > maxSeconds {
		return settingError("analytics.flush_interval_seconds", "must be between "+strconv.Itoa(minAnalyticsFlushInterval)+
			" and "+strconv.FormatFloat(maxSeconds, 'f', 0, 64)+" seconds, got "+strconv.FormatFloat(a.FlushIntervalSeconds, 'g', -1, 64))
	}
	if a.MaxFeaturesPerEnvironment < 1 || a.MaxFeaturesPerEnvironment > maxAnalyticsFeatures {
		return settingError("analytics.max_features_per_environment", "must be between 1 and "+strconv.Itoa(maxAnalyticsFeatures)+", got "+strconv.Itoa(a.MaxFeaturesPerEnvironment))
	}
	return nil
}
