package config

import (
	"strconv"
	"strings"
	"time"
)

// Proxy-key mode, as in Flagsmith's Rust edge proxy: with proxy_key set,
// environments are discovered at run time from the upstream's
// /proxy/config/, document fetches carry X-Proxy-Key, and usage is
// reported to /proxy/usage/.

// DefaultUsageFlushInterval is usage_flush_interval_seconds' default, the
// Rust proxy's.
const DefaultUsageFlushInterval = 60

// minUsageFlushInterval is the Rust proxy's minimum (0 is rejected).
const minUsageFlushInterval = 1

// ProxyKeyEnabled reports whether proxy-key mode is on.
func (c *Config) ProxyKeyEnabled() bool { return c.ProxyKey != nil }

// ProxyKeyValue is the proxy key, "" when proxy-key mode is off.
func (c *Config) ProxyKeyValue() string {
	if c.ProxyKey == nil {
		return ""
	}
	return *c.ProxyKey
}

// UsageFlushInterval is the time between usage reports.
func (c *Config) UsageFlushInterval() time.Duration { return seconds(c.UsageFlushIntervalSeconds) }

// nullableTrimmedStr sets a string that may be absent or null (nil),
// trimming surrounding whitespace as keys are trimmed.
func (d *decoder) nullableTrimmedStr(dst **string) setter {
	return func(v any, key, shown string) {
		if v == nil {
			*dst = nil
			d.clear(key, true)
			return
		}
		s, ok := v.(string)
		if !ok {
			d.fail(key, shown, mustBe("a string or null", v))
			return
		}
		s = strings.TrimSpace(s)
		*dst = &s
		d.clear(key, true)
	}
}

func (c *Config) validateProxyKey() error {
	if c.UsageFlushIntervalSeconds < minUsageFlushInterval || c.UsageFlushIntervalSeconds > maxSeconds {
		return settingError("usage_flush_interval_seconds", "must be between "+strconv.Itoa(minUsageFlushInterval)+
			" and "+formatFloat(maxSeconds)+" seconds, got "+formatFloat(c.UsageFlushIntervalSeconds))
	}
	if c.ProxyKey == nil {
		return nil
	}
	switch k := *c.ProxyKey; {
	case k == "":
		return settingError("proxy_key", "must not be empty (leave it out, or null, to turn proxy-key mode off)")
	case strings.ContainsAny(k, " \t\r\n"):
		return settingError("proxy_key", "must not contain spaces")
	}
	if c.offline() {
		return settingError("proxy_key", "cannot be set in offline mode (environments is set): there is no upstream to discover environments from")
	}
	return nil
}
