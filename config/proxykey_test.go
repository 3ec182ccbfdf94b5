package config

import (
	"strings"
	"testing"
	"time"
)

func TestProxyKeySettings(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		env      []string
		enabled  bool
		key      string
		interval time.Duration
	}{
		{"off by default", onePair, nil, false, "", 60 * time.Second},
		{"only a proxy key is a valid config", `{"proxy_key": "pk_secret"}`, nil, true, "pk_secret", 60 * time.Second},
		{"null is off", `{"proxy_key": null}`, nil, false, "", 60 * time.Second},
		{"beside static pairs", onePair[:len(onePair)-1] + `, "proxy_key": "pk", "usage_flush_interval_seconds": 5}`, nil, true, "pk", 5 * time.Second},
		{"trimmed", `{"proxy_key": " pk\n"}`, nil, true, "pk", 60 * time.Second},
		{"environment variable", noFile, []string{"PROXY_KEY=pk_env", "USAGE_FLUSH_INTERVAL_SECONDS=2"}, true, "pk_env", 2 * time.Second},
		{"environment variable beats the file", `{"proxy_key": "pk_file"}`, []string{"proxy_key=pk_env"}, true, "pk_env", 60 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.file, tt.env...)
			if c.ProxyKeyEnabled() != tt.enabled || c.ProxyKeyValue() != tt.key {
				t.Errorf("proxy key = %v %q, want %v %q", c.ProxyKeyEnabled(), c.ProxyKeyValue(), tt.enabled, tt.key)
			}
			if got := c.UsageFlushInterval(); got != tt.interval {
				t.Errorf("UsageFlushInterval = %v, want %v", got, tt.interval)
			}
			if len(c.Unknown) != 0 {
				t.Errorf("unknown keys %v", c.Unknown)
			}
			for _, w := range c.Warnings() {
				if tt.enabled && strings.Contains(w, "every SDK request will get 401") {
					t.Errorf("warning with a proxy key set: %s", w)
				}
			}
		})
	}
}

func TestProxyKeyErrors(t *testing.T) {
	tests := []struct {
		name, file string
		env        []string
		want       string
	}{
		{"empty", `{"proxy_key": ""}`, nil, "proxy_key: must not be empty"},
		{"blank", `{"proxy_key": "  "}`, nil, "proxy_key: must not be empty"},
		{"empty variable", `{}`, []string{"PROXY_KEY="}, "proxy_key: must not be empty"},
		{"not a string", `{"proxy_key": 12}`, nil, "proxy_key: must be a string or null, got number 12"},
		{"spaces", `{"proxy_key": "a b"}`, nil, "proxy_key: must not contain spaces"},
		{"offline", `{"environments": ["env.json"], "proxy_key": "pk"}`, nil, "proxy_key: cannot be set in offline mode"},
		{"interval 0", `{"proxy_key": "pk", "usage_flush_interval_seconds": 0}`, nil, "usage_flush_interval_seconds: must be between 1 and"},
		{"interval not a number", `{"usage_flush_interval_seconds": "soon"}`, nil, `usage_flush_interval_seconds: must be a number, got string "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadString(tt.file, tt.env...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestProxyKeyRedacted(t *testing.T) {
	c := mustLoad(t, `{"proxy_key": "pk_abcdefghijklmnop"}`)
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "abcdefghijklmnop") || !strings.Contains(string(out), `"proxy_key": "pk_a…"`) {
		t.Errorf("proxy key not redacted:\n%s", out)
	}
	if c.ProxyKeyValue() != "pk_abcdefghijklmnop" {
		t.Error("Redacted modified the config")
	}
}
