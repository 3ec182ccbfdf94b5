package config

import (
	"strings"
	"testing"
	"time"
)

func TestRealtimeSettings(t *testing.T) {
	const token = "0123456789abcdef0123"
	for _, tc := range []struct {
		name    string
		file    string
		env     []string
		check   func(*Config) bool
		wantErr string // the setting named by the error, "" for none
	}{
		{name: "defaults", file: onePair, check: func(c *Config) bool {
			r := c.Realtime
			return r.Enabled && r.MaxStreams == 10000 && r.MaxStreamAge() == 10*time.Minute &&
				r.KeepAlive() == 15*time.Second && r.QueueChangeToken == "" && !c.Metrics.OnMainPort && !c.MetricsOn()
		}},
		{name: "file", file: `{"environment_key_pairs":[{"server_side_key":"ser.abc123","client_side_key":"abc123"}],
			"realtime":{"enabled":false,"max_streams":5,"max_stream_age_seconds":0,"keepalive_seconds":0.5,"queue_change_token":" ` + token + ` "},
			"metrics":{"on_main_port":true}}`,
			check: func(c *Config) bool {
				r := c.Realtime
				return !r.Enabled && r.MaxStreams == 5 && r.MaxStreamAge() == 0 && r.KeepAlive() == 500*time.Millisecond &&
					r.QueueChangeToken == token && c.MetricsOn()
			}},
		{name: "environment merges", file: onePair, env: []string{`REALTIME={"max_streams":7}`},
			check: func(c *Config) bool { return c.Realtime.MaxStreams == 7 && c.Realtime.Enabled }},
		{name: "debug address turns metrics on", file: onePair, env: []string{`SERVER={"debug_address":"127.0.0.1:8001"}`},
			check: func(c *Config) bool { return c.MetricsOn() }},
		{name: "zero streams", file: onePair, env: []string{`REALTIME={"max_streams":0}`}, wantErr: "realtime.max_streams"},
		{name: "negative age", file: onePair, env: []string{`REALTIME={"max_stream_age_seconds":-1}`}, wantErr: "realtime.max_stream_age_seconds"},
		{name: "zero keepalive", file: onePair, env: []string{`REALTIME={"keepalive_seconds":0}`}, wantErr: "realtime.keepalive_seconds"},
		{name: "short token", file: onePair, env: []string{`REALTIME={"queue_change_token":"short"}`}, wantErr: "realtime.queue_change_token"},
		{name: "token with a space", file: onePair, env: []string{`REALTIME={"queue_change_token":"0123456789 abcdef0123"}`}, wantErr: "realtime.queue_change_token"},
		{name: "wrong type", file: onePair, env: []string{`REALTIME={"enabled":"maybe"}`}, wantErr: "realtime.enabled"},
		{name: "metrics wrong type", file: onePair, env: []string{`METRICS={"on_main_port":3}`}, wantErr: "metrics.on_main_port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadString(tc.file, tc.env...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("unexpected settings: %+v %+v", c.Realtime, c.Metrics)
			}
		})
	}
}

func TestRealtimeTokenRedacted(t *testing.T) {
	c := mustLoad(t, onePair, `REALTIME={"queue_change_token":"0123456789abcdef0123"}`)
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "0123456789abcdef0123") || !strings.Contains(string(out), `"queue_change_token": "0123…"`) {
		t.Fatalf("token not redacted:\n%s", out)
	}
}
