package config

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

var fuzzEnvNames = []string{
	"ENVIRONMENT_KEY_PAIRS", "API_URL", "api_poll_frequency", "API_POLL_TIMEOUT_SECONDS",
	"ALLOW_ORIGINS", "ENDPOINT_CACHES", "LOGGING", "SERVER", "HEALTH_CHECK",
	"ENVIRONMENTS", "SNAPSHOT_DIR", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS",
}

// FuzzLoad feeds arbitrary file bytes and one arbitrary environment value.
// Loading must never panic, every failure must be a *Error, and every
// success must render (Redacted) and survive a marshal/load round trip,
// since --print-config output is meant to be reusable as a config file.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(onePair), uint8(0), `[{"server_side_key":"ser.x","client_side_key":"y"}]`)
	f.Add([]byte(`{}`), uint8(0), `[{"server_side_key":"ser.x","client_side_key":"ser.y"}]`)
	f.Add([]byte(onePair), uint8(6), `{"log_level":"warn","override":{"a":{"b":[1]}}}`)
	f.Add([]byte(onePair), uint8(7), `{"port":"8080","host":"::1","tls_cert":"c","tls_key":"k"}`)
	f.Add([]byte(onePair), uint8(8), `{"environment_update_grace_period_seconds":null}`)
	f.Add([]byte(onePair), uint8(12), `10.0.0.0/8, *`)
	f.Add([]byte(onePair), uint8(2), `1e-3`)
	f.Add([]byte(`{"environments":["a.json"],"api_poll_frequency":2.5,"endpoint_caches":null}`), uint8(4), `https://a,https://b`)
	f.Add([]byte("{\n\"server\": {\"port\": 80,}\n}"), uint8(1), "http://u:p@h/")
	f.Add([]byte("\xEF\xBB\xBF"+onePair), uint8(11), "4")
	f.Add([]byte{0xff, '{'}, uint8(3), "\xff")
	f.Fuzz(func(t *testing.T, data []byte, which uint8, val string) {
		env := []string{fuzzEnvNames[int(which)%len(fuzzEnvNames)] + "=" + val}
		c, err := load("config.json", data, env)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("error lacks prefix: %v", err)
			}
			return
		}
		if _, err := c.Redacted(); err != nil {
			t.Fatalf("Redacted: %v", err)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		again, err := load("config.json", b, nil)
		if err != nil {
			t.Fatalf("reloading %s: %v", b, err)
		}
		c.Unknown, again.Unknown = nil, nil
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, again)
		}
	})
}
