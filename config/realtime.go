package config

import (
	"strconv"
	"strings"
	"time"
)

// Settings of the realtime (server-sent events) endpoints and of the
// Prometheus metrics, in both roles.

// Realtime defaults.
const (
	DefaultRealtimeMaxStreams       = 10000
	DefaultRealtimeMaxStreamAge     = 600
	DefaultRealtimeKeepAliveSeconds = 15
	// minQueueChangeTokenChars keeps guessable tokens out: a token lets its
	// holder make Fledge poll the upstream at will.
	minQueueChangeTokenChars = 16
)

// Realtime configures GET /sse/environments/{client_key}/stream and
// POST …/queue-change.
type Realtime struct {
	// Enabled serves the realtime endpoints (404 when off).
	Enabled bool `json:"enabled"`
	// MaxStreams caps the streams open at once; more get 503.
	MaxStreams int `json:"max_streams"`
	// MaxStreamAgeSeconds ends a stream after this long (up to 10% later),
	// so that clients reconnect, spreading over the fleet; 0: never.
	MaxStreamAgeSeconds float64 `json:"max_stream_age_seconds"`
	// KeepaliveSeconds is the interval of keep-alive comments.
	KeepaliveSeconds float64 `json:"keepalive_seconds"`
	// QueueChangeToken authenticates Flagsmith's queue-change calls
	// (its SSE_AUTHENTICATION_TOKEN); empty turns the endpoint off.
	QueueChangeToken string `json:"queue_change_token"`
}

// Metrics configures the Prometheus metrics, served at /metrics on the
// diagnostics listener (server.debug_address) and, with OnMainPort, on the
// main port. With neither, nothing is recorded.
type Metrics struct {
	// OnMainPort serves /metrics on the main listener too, for scrapers
	// that reach only it. Off by default: the main port is public.
	OnMainPort bool `json:"on_main_port"`
}

func defaultRealtime() Realtime {
	return Realtime{
		Enabled:             true,
		MaxStreams:          DefaultRealtimeMaxStreams,
		MaxStreamAgeSeconds: DefaultRealtimeMaxStreamAge,
		KeepaliveSeconds:    DefaultRealtimeKeepAliveSeconds,
	}
}

// MetricsOn reports whether /metrics is served anywhere, hence whether
// anything is recorded.
func (c *Config) MetricsOn() bool { return c.Server.DebugAddress != "" || c.Metrics.OnMainPort }

func (d *decoder) realtime(dst *Realtime) setter {
	return func(v any, key, shown string) {
		d.object(v, key, shown, []field{
			{names: []string{"enabled"}, set: d.boolean(&dst.Enabled)},
			{names: []string{"max_streams"}, set: d.integer(&dst.MaxStreams)},
			{names: []string{"max_stream_age_seconds"}, set: d.number(&dst.MaxStreamAgeSeconds)},
			{names: []string{"keepalive_seconds"}, set: d.number(&dst.KeepaliveSeconds)},
			{names: []string{"queue_change_token"}, set: d.trimmedStr(&dst.QueueChangeToken)},
		})
	}
}

func (d *decoder) metrics(dst *Metrics) setter {
	return func(v any, key, shown string) {
		d.object(v, key, shown, []field{
			{names: []string{"on_main_port"}, set: d.boolean(&dst.OnMainPort)},
		})
	}
}

func (c *Config) validateRealtime() error {
	r := &c.Realtime
	if r.MaxStreams < 1 {
		return settingError("realtime.max_streams", "must be at least 1, got "+strconv.Itoa(r.MaxStreams))
	}
	if err := nonNegativeSeconds("realtime.max_stream_age_seconds", r.MaxStreamAgeSeconds); err != nil {
		return err
	}
	if err := positiveSeconds("realtime.keepalive_seconds", r.KeepaliveSeconds); err != nil {
		return err
	}
	if t := r.QueueChangeToken; t != "" {
		if strings.ContainsAny(t, " \t\r\n") {
			return settingError("realtime.queue_change_token", "must not contain spaces")
		}
		if len(t) < minQueueChangeTokenChars {
			return settingError("realtime.queue_change_token", "must be at least "+strconv.Itoa(minQueueChangeTokenChars)+" characters")
		}
	}
	return nil
}

// MaxStreamAge is realtime.max_stream_age_seconds (0: no limit).
func (r Realtime) MaxStreamAge() time.Duration { return seconds(r.MaxStreamAgeSeconds) }

// KeepAlive is realtime.keepalive_seconds.
func (r Realtime) KeepAlive() time.Duration { return seconds(r.KeepaliveSeconds) }
