package config

import (
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	onePair    = `{"environment_key_pairs":[{"server_side_key":"ser.abc123","client_side_key":"abc123"}]}`
	onePairEnv = `ENVIRONMENT_KEY_PAIRS=[{"server_side_key":"ser.abc123","client_side_key":"abc123"}]`
)

// noFile marks a case that loads from the environment only.
const noFile = "\x00"

func loadString(file string, env ...string) (*Config, error) {
	if file == noFile {
		return load("", nil, env)
	}
	return load("config.json", []byte(file), env)
}

func mustLoad(t *testing.T, file string, env ...string) *Config {
	t.Helper()
	c, err := loadString(file, env...)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, noFile, onePairEnv)
	want := Default()
	want.EnvironmentKeyPairs = []KeyPair{{ServerSideKey: "ser.abc123", ClientSideKey: "abc123"}}
	want.Unknown = []string{}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"api_url", c.APIURL, "https://edge.api.flagsmith.com/api/v1"},
		{"PollInterval", c.PollInterval(), 10 * time.Second},
		{"PollTimeout", c.PollTimeout(), 5 * time.Second},
		{"allow_origins", c.AllowOrigins, []string{"*"}},
		{"flags cache", c.EndpointCaches.Flags, EndpointCache{UseCache: false, CacheMaxSize: 128}},
		{"identities cache", c.EndpointCaches.Identities, EndpointCache{UseCache: false, CacheMaxSize: 128}},
		{"log_level", c.Logging.LogLevel, "INFO"},
		{"SlogLevel", c.Logging.SlogLevel(), slog.LevelInfo},
		{"log_format", c.Logging.LogFormat, "generic"},
		{"enable_access_log", c.Logging.EnableAccessLog, false},
		{"colours", c.Logging.Colours, true},
		{"log_event_field_name", c.Logging.LogEventFieldName, "message"},
		{"override", string(c.Logging.Override), "{}"},
		{"Addr", c.Addr(), "0.0.0.0:8000"},
		{"proxy_headers", c.Server.ProxyHeaders, false},
		{"KeepAlive", c.Server.KeepAlive(), 5 * time.Second},
		{"TLS", c.TLS(), false},
		{"max_body_bytes", c.Server.MaxBodyBytes, int64(1 << 20)},
		{"max_header_bytes", c.Server.MaxHeaderBytes, 64 << 10},
		{"ReadHeaderTimeout", c.Server.ReadHeaderTimeout(), 10 * time.Second},
		{"ReadTimeout", c.Server.ReadTimeout(), 30 * time.Second},
		{"WriteTimeout", c.Server.WriteTimeout(), 30 * time.Second},
		{"ShutdownTimeout", c.Server.ShutdownTimeout(), 30 * time.Second},
		{"environments", c.Environments, []string{}},
		{"snapshot_dir", c.SnapshotDir, ""},
		{"web_concurrency", c.WebConcurrency, 0},
		{"forwarded_allow_ips", c.ForwardedAllowIPs, []string{"127.0.0.1"}},
		{"Source", c.Source, ""},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	if g, ok := c.Grace(); !ok || g != 30*time.Second {
		t.Errorf("Grace() = %v, %v; want 30s, true", g, ok)
	}
	all, nets := c.TrustedProxies()
	if all || !slices.Equal(nets, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}) {
		t.Errorf("TrustedProxies() = %v, %v", all, nets)
	}
	if k, ok := c.ClientKey("ser.abc123"); !ok || k != "abc123" {
		t.Errorf("ClientKey = %q, %v", k, ok)
	}
	if _, ok := c.ClientKey("ser.nope"); ok {
		t.Error("ClientKey found an unknown key")
	}
}

// TestFileValues checks each setting is read from the file, including the
// Python proxy's aliases and pydantic's lax coercions.
func TestFileValues(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		check func(*Config) any
		want  any
	}{
		{"api_poll_frequency alias", `{"api_poll_frequency": 30}`, func(c *Config) any { return c.APIPollFrequencySeconds }, 30.0},
		{"api_poll_timeout alias", `{"api_poll_timeout": 2}`, func(c *Config) any { return c.APIPollTimeoutSeconds }, 2.0},
		{"canonical beats alias", `{"api_poll_frequency": 30, "api_poll_frequency_seconds": 7}`, func(c *Config) any { return c.APIPollFrequencySeconds }, 7.0},
		{"fractional frequency", `{"api_poll_frequency_seconds": 1.5}`, func(c *Config) any { return c.PollInterval() }, 1500 * time.Millisecond},
		{"numeric string", `{"api_poll_timeout_seconds": "3"}`, func(c *Config) any { return c.APIPollTimeoutSeconds }, 3.0},
		{"colors alias", `{"logging": {"colors": false}}`, func(c *Config) any { return c.Logging.Colours }, false},
		{"colours beats colors", `{"logging": {"colors": false, "colours": true}}`, func(c *Config) any { return c.Logging.Colours }, true},
		{"api_url trailing slash", `{"api_url": "https://flagsmith.example.com/api/v1/"}`, func(c *Config) any { return c.APIURL }, "https://flagsmith.example.com/api/v1"},
		{"log level case", `{"logging": {"log_level": "debug"}}`, func(c *Config) any { return c.Logging.LogLevel }, "DEBUG"},
		{"WARN accepted", `{"logging": {"log_level": "warn"}}`, func(c *Config) any { return c.Logging.SlogLevel() }, slog.LevelWarn},
		{"CRITICAL above error", `{"logging": {"log_level": "CRITICAL"}}`, func(c *Config) any { return c.Logging.SlogLevel() }, slog.LevelError + 4},
		{"log format case", `{"logging": {"log_format": "JSON"}}`, func(c *Config) any { return c.Logging.LogFormat }, "json"},
		{"override kept", `{"logging": {"override": {"loggers": {"": {"level": "INFO"}}}}}`, func(c *Config) any { return string(c.Logging.Override) }, `{"loggers":{"":{"level":"INFO"}}}`},
		{"cache partial", `{"endpoint_caches": {"identities": {"use_cache": true}}}`, func(c *Config) any { return c.EndpointCaches.Identities }, EndpointCache{UseCache: true, CacheMaxSize: 128}},
		{"cache null", `{"endpoint_caches": null}`, func(c *Config) any { return c.EndpointCaches }, defaultCaches()},
		{"lax bool", `{"server": {"proxy_headers": "yes"}}`, func(c *Config) any { return c.Server.ProxyHeaders }, true},
		{"bool from 1", `{"logging": {"enable_access_log": 1}}`, func(c *Config) any { return c.Logging.EnableAccessLog }, true},
		{"int from 8000.0", `{"server": {"port": 8000.0}}`, func(c *Config) any { return c.Server.Port }, 8000},
		{"host name", `{"server": {"host": "localhost", "port": 9000}}`, func(c *Config) any { return c.Addr() }, "localhost:9000"},
		{"IPv6 host", `{"server": {"host": "::1"}}`, func(c *Config) any { return c.Addr() }, "[::1]:8000"},
		{"tls pair", `{"server": {"tls_cert": "c.pem", "tls_key": "k.pem"}}`, func(c *Config) any { return c.TLS() }, true},
		{"debug address", `{"server": {"debug_address": "[::1]:0"}}`, func(c *Config) any { return c.Server.DebugAddress }, "[::1]:0"},
		{"debug address off by default", `{}`, func(c *Config) any { return c.Server.DebugAddress }, ""},
		{"null grace", `{"health_check": {"environment_update_grace_period_seconds": null}}`, func(c *Config) any { g, ok := c.Grace(); return [2]any{g, ok} }, [2]any{time.Duration(0), false}},
		{"zero grace", `{"health_check": {"environment_update_grace_period_seconds": 0}}`, func(c *Config) any { g, ok := c.Grace(); return [2]any{g, ok} }, [2]any{time.Duration(0), true}},
		{"allow_origins string", `{"allow_origins": "https://www.example.com"}`, func(c *Config) any { return c.AllowOrigins }, []string{"https://www.example.com"}},
		{"allow_origins empty", `{"allow_origins": []}`, func(c *Config) any { return c.AllowOrigins }, []string{}},
		{"forwarded comma string", `{"forwarded_allow_ips": "10.0.0.1, 10.1.0.0/16"}`, func(c *Config) any { _, n := c.TrustedProxies(); return n }, []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32"), netip.MustParsePrefix("10.1.0.0/16")}},
		{"forwarded star", `{"forwarded_allow_ips": ["*"]}`, func(c *Config) any { all, _ := c.TrustedProxies(); return all }, true},
		{"keys trimmed", `{"environment_key_pairs":[{"server_side_key":" ser.x\n","client_side_key":" y "}]}`, func(c *Config) any { return c.EnvironmentKeyPairs }, []KeyPair{{"ser.x", "y"}}},
		{"offline only", `{"environment_key_pairs": [], "environments": ["env.json"]}`, func(c *Config) any { return c.Environments }, []string{"env.json"}},
		{"snapshot_dir", `{"snapshot_dir": "/var/lib/fledge"}`, func(c *Config) any { return c.SnapshotDir }, "/var/lib/fledge"},
		{"BOM skipped", "\xEF\xBB\xBF{\"web_concurrency\": 2}", func(c *Config) any { return c.WebConcurrency }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			env := []string{onePairEnv}
			if strings.Contains(file, "environment_key_pairs") {
				env = nil
			}
			c := mustLoad(t, file, env...)
			if got := tt.check(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestEnvironment covers precedence over the file, case-insensitive names
// and the decoding of environment values.
func TestEnvironment(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   []string
		check func(*Config) any
		want  any
	}{
		{"env beats file", `{"api_url": "https://file.example/api/v1", "environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}]}`, []string{"API_URL=https://env.example/api/v1/"}, func(c *Config) any { return c.APIURL }, "https://env.example/api/v1"},
		{"lower-case name", onePair, []string{"api_url=http://lower.example"}, func(c *Config) any { return c.APIURL }, "http://lower.example"},
		{"mixed-case name", onePair, []string{"Api_Poll_Frequency_Seconds=4"}, func(c *Config) any { return c.APIPollFrequencySeconds }, 4.0},
		{"last spelling wins", onePair, []string{"API_URL=http://a.example", "api_url=http://b.example"}, func(c *Config) any { return c.APIURL }, "http://b.example"},
		{"JSON scalar", onePair, []string{"API_POLL_FREQUENCY_SECONDS=2"}, func(c *Config) any { return c.PollInterval() }, 2 * time.Second},
		{"float scalar", onePair, []string{"API_POLL_TIMEOUT_SECONDS=2.5"}, func(c *Config) any { return c.PollTimeout() }, 2500 * time.Millisecond},
		{"env alias beats file canonical", `{"api_poll_frequency_seconds": 30, "environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}]}`, []string{"API_POLL_FREQUENCY=3"}, func(c *Config) any { return c.APIPollFrequencySeconds }, 3.0},
		{"env canonical beats env alias", onePair, []string{"API_POLL_FREQUENCY=3", "API_POLL_FREQUENCY_SECONDS=4"}, func(c *Config) any { return c.APIPollFrequencySeconds }, 4.0},
		{"key pairs from env replace file", onePair, []string{`ENVIRONMENT_KEY_PAIRS=[{"server_side_key":"ser.x","client_side_key":"y"}]`}, func(c *Config) any { return c.EnvironmentKeyPairs }, []KeyPair{{"ser.x", "y"}}},
		{"allow_origins JSON", onePair, []string{`ALLOW_ORIGINS=["https://a"]`}, func(c *Config) any { return c.AllowOrigins }, []string{"https://a"}},
		{"allow_origins comma", onePair, []string{`ALLOW_ORIGINS=https://a, https://b`}, func(c *Config) any { return c.AllowOrigins }, []string{"https://a", "https://b"}},
		{"list replaces", `{"allow_origins": ["https://f1", "https://f2"], "environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}]}`, []string{`ALLOW_ORIGINS=["https://e"]`}, func(c *Config) any { return c.AllowOrigins }, []string{"https://e"}},
		{"LOGGING merges into file", `{"logging": {"log_format": "json", "log_level": "ERROR"}, "environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}]}`, []string{`LOGGING={"log_level":"DEBUG"}`}, func(c *Config) any { return [2]string{c.Logging.LogLevel, c.Logging.LogFormat} }, [2]string{"DEBUG", "json"}},
		{"override deep-merges", `{"logging": {"override": {"a": {"x": 1}, "b": 1}}, "environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}]}`, []string{`LOGGING={"override":{"a":{"y":2}}}`}, func(c *Config) any { return string(c.Logging.Override) }, `{"a":{"x":1,"y":2},"b":1}`},
		{"SERVER merges", `{"server": {"port": 9000}, "environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}]}`, []string{`SERVER={"host":"127.0.0.1"}`}, func(c *Config) any { return c.Addr() }, "127.0.0.1:9000"},
		{"env fixes file type", `{"server": {"port": "abc"}, "environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}]}`, []string{`SERVER={"port":8080}`}, func(c *Config) any { return c.Server.Port }, 8080},
		{"env replaces non-object", `{"server": "bad", "environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}]}`, []string{`SERVER={"port":8080}`}, func(c *Config) any { return c.Server.Port }, 8080},
		{"lax values in env JSON", onePair, []string{`SERVER={"proxy_headers":"true","port":"9001"}`}, func(c *Config) any { return [2]any{c.Server.ProxyHeaders, c.Server.Port} }, [2]any{true, 9001}},
		{"null grace from env", onePair, []string{`HEALTH_CHECK={"environment_update_grace_period_seconds":null}`}, func(c *Config) any { _, ok := c.Grace(); return ok }, false},
		{"ENDPOINT_CACHES null", `{"endpoint_caches": {"flags": {"use_cache": true}}, "environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}]}`, []string{"ENDPOINT_CACHES=null"}, func(c *Config) any { return c.EndpointCaches.Flags.UseCache }, false},
		{"WEB_CONCURRENCY", onePair, []string{"WEB_CONCURRENCY=4"}, func(c *Config) any { return c.WebConcurrency }, 4},
		{"FORWARDED_ALLOW_IPS comma", onePair, []string{"FORWARDED_ALLOW_IPS=10.0.0.1,192.168.0.0/24"}, func(c *Config) any { return c.ForwardedAllowIPs }, []string{"10.0.0.1", "192.168.0.0/24"}},
		{"FORWARDED_ALLOW_IPS star", onePair, []string{"FORWARDED_ALLOW_IPS=*"}, func(c *Config) any { all, _ := c.TrustedProxies(); return all }, true},
		{"ENVIRONMENTS offline", noFile, []string{"ENVIRONMENTS=a.json,b.json"}, func(c *Config) any { return c.Environments }, []string{"a.json", "b.json"}},
		{"string taken verbatim", onePair, []string{"SNAPSHOT_DIR=123"}, func(c *Config) any { return c.SnapshotDir }, "123"},
		{"unrelated vars ignored", onePair, []string{"PATH=/bin", "SERVER_PORT=tcp://10.0.0.1:80", "HTTP_PROXY=http://p:3128", "garbage", "=x"}, func(c *Config) any { return c.Server.Port }, 8000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.file, tt.env...)
			if got := tt.check(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestUnknown(t *testing.T) {
	file := `{
		"environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a", "note": "x"}],
		"api_poll_frequency": 10,
		"API_URL": "x",
		"server": {"reload": true, "port": 8000},
		"logging": {"log_filename": "f", "override": {"anything": 1}},
		"endpoint_caches": {"flags": {"ttl": 3}}
	}`
	c := mustLoad(t, file, `HEALTH_CHECK={"extra":1}`)
	want := []string{
		"API_URL",
		"endpoint_caches.flags.ttl",
		"environment_key_pairs[0].note",
		"health_check.extra",
		"logging.log_filename",
		"server.reload",
	}
	if !slices.Equal(c.Unknown, want) {
		t.Errorf("Unknown = %q, want %q", c.Unknown, want)
	}
}

// TestErrors asserts each fault fails and that the message names the
// setting (and the variable or file when one is to blame).
func TestErrors(t *testing.T) {
	pair := func(server, client string) string {
		b, _ := json.Marshal(map[string]any{"environment_key_pairs": []KeyPair{{server, client}}})
		return string(b)
	}
	withPair := func(rest string) string {
		return `{"environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}], ` + rest + `}`
	}
	tests := []struct {
		name string
		file string
		env  []string
		want []string // substrings of the message
	}{
		{"server key prefix", pair("abc", "abc"), nil, []string{`config: environment_key_pairs[0].server_side_key: must start with "ser."`}},
		{"blank server key", pair("  ", "abc"), nil, []string{"environment_key_pairs[0].server_side_key: must not be empty"}},
		{"bare ser. prefix", pair("ser.", "abc"), nil, []string{`environment_key_pairs[0].server_side_key: must have characters after "ser."`}},
		{"empty client key", pair("ser.abc", ""), nil, []string{"environment_key_pairs[0].client_side_key: must not be empty"}},
		{"client key is another pair's server key", `{"environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}, {"server_side_key": "ser.b", "client_side_key": "ser.a"}]}`, nil, []string{"environment_key_pairs[1].client_side_key: is environment_key_pairs[0].server_side_key"}},
		{"duplicate client keys", `{"environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}, {"server_side_key": "ser.b", "client_side_key": "a"}]}`, nil, []string{"environment_key_pairs[1].client_side_key: duplicate of environment_key_pairs[0]"}},
		{"duplicate server keys", `{"environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}, {"server_side_key": "ser.a", "client_side_key": "b"}]}`, nil, []string{"environment_key_pairs[1].server_side_key: duplicate"}},
		{"missing server key", `{"environment_key_pairs": [{"client_side_key": "a"}]}`, nil, []string{"environment_key_pairs[0].server_side_key: required"}},
		{"key pair not object", `{"environment_key_pairs": ["ser.a"]}`, nil, []string{"environment_key_pairs[0]: must be an object, got string"}},
		{"key pairs not array", `{"environment_key_pairs": {}}`, nil, []string{"config.json: environment_key_pairs: must be an array, got object"}},
		{"empty environments entry", `{"environments": [""]}`, nil, []string{"environments[0]: must not be empty"}},
		{"duplicate environments", `{"environments": ["a", "a"]}`, nil, []string{"environments[1]: duplicate"}},
		{"unknown log level", withPair(`"logging": {"log_level": "VERBOSE"}`), nil, []string{"logging.log_level: unknown level \"VERBOSE\""}},
		{"unknown log format", withPair(`"logging": {"log_format": "xml"}`), nil, []string{"logging.log_format: unknown format \"xml\""}},
		{"api_url unparsable", withPair(`"api_url": "http://a b/%zz"`), nil, []string{"api_url: malformed URL"}},
		{"api_url scheme", withPair(`"api_url": "ftp://example.com"`), nil, []string{"api_url: must be an http or https URL"}},
		{"api_url relative", withPair(`"api_url": "/api/v1"`), nil, []string{"api_url: must be an http or https URL"}},
		{"api_url no host", withPair(`"api_url": "https:///api/v1"`), nil, []string{"api_url: must include a host"}},
		{"api_url query", withPair(`"api_url": "https://a.example/api?x=1"`), nil, []string{"api_url: must not have a query"}},
		{"poll frequency zero", withPair(`"api_poll_frequency_seconds": 0`), nil, []string{"api_poll_frequency_seconds: must be greater than 0"}},
		{"poll frequency negative via alias", withPair(`"api_poll_frequency": -1`), nil, []string{"api_poll_frequency_seconds: must be greater than 0, got -1"}},
		{"poll frequency too small", withPair(`"api_poll_frequency_seconds": 1e-12`), nil, []string{"api_poll_frequency_seconds: must be at least 0.001"}},
		{"poll frequency under a second", withPair(`"api_poll_frequency_seconds": 0.001`), nil, []string{"api_poll_frequency_seconds: must be at least 1 second, got 0.001"}},
		{"poll frequency huge", withPair(`"api_poll_frequency_seconds": 1e300`), nil, []string{"api_poll_frequency_seconds: must be at most"}},
		{"poll timeout zero", withPair(`"api_poll_timeout_seconds": 0`), nil, []string{"api_poll_timeout_seconds: must be greater than 0"}},
		{"port zero", withPair(`"server": {"port": 0}`), nil, []string{"server.port: must be between 1 and 65535, got 0"}},
		{"port too big", withPair(`"server": {"port": 65536}`), nil, []string{"server.port: must be between 1 and 65535, got 65536"}},
		{"port fraction", withPair(`"server": {"port": 80.5}`), nil, []string{"config.json: server.port: must be an integer, got number 80.5"}},
		{"negative cache size", withPair(`"endpoint_caches": {"identities": {"cache_max_size": -1}}`), nil, []string{"endpoint_caches.identities.cache_max_size: must not be negative"}},
		{"absurd cache size", withPair(`"endpoint_caches": {"identities": {"use_cache": true, "cache_max_size": 1e8}}`), nil, []string{"endpoint_caches.identities.cache_max_size: must be at most 1000000 entries, got 100000000"}},
		{"absurd flags cache size", withPair(`"endpoint_caches": {"flags": {"cache_max_size": 1e8}}`), nil, []string{"endpoint_caches.flags.cache_max_size: must be at most 1000000"}},
		{"tls cert only", withPair(`"server": {"tls_cert": "c.pem"}`), nil, []string{"server.tls_key: must be set when server.tls_cert is"}},
		{"tls key only", withPair(`"server": {"tls_key": "k.pem"}`), nil, []string{"server.tls_cert: must be set when server.tls_key is"}},
		{"bad host", withPair(`"server": {"host": "not a host"}`), nil, []string{"server.host: must be an IP address or host name"}},
		{"debug address without port", withPair(`"server": {"debug_address": "127.0.0.1"}`), nil, []string{"server.debug_address: must be host:port"}},
		{"debug address bad host", withPair(`"server": {"debug_address": "not a host:80"}`), nil, []string{"server.debug_address: must be host:port"}},
		{"debug address bad port", withPair(`"server": {"debug_address": "127.0.0.1:http"}`), nil, []string{"server.debug_address: port must be between 0 and 65535"}},
		{"debug address port too big", withPair(`"server": {"debug_address": "127.0.0.1:65536"}`), nil, []string{"server.debug_address: port must be between 0 and 65535"}},
		{"negative keep-alive", withPair(`"server": {"timeout_keep_alive": -1}`), nil, []string{"server.timeout_keep_alive: must not be negative"}},
		{"zero body limit", withPair(`"server": {"max_body_bytes": 0}`), nil, []string{"server.max_body_bytes: must be greater than 0"}},
		{"zero header limit", withPair(`"server": {"max_header_bytes": 0}`), nil, []string{"server.max_header_bytes: must be greater than 0"}},
		{"negative write timeout", withPair(`"server": {"write_timeout_seconds": -5}`), nil, []string{"server.write_timeout_seconds: must not be negative"}},
		{"negative grace", withPair(`"health_check": {"environment_update_grace_period_seconds": -1}`), nil, []string{"health_check.environment_update_grace_period_seconds: must not be negative"}},
		{"negative web_concurrency", withPair(`"web_concurrency": -1`), nil, []string{"web_concurrency: must not be negative"}},
		{"bad forwarded ip", withPair(`"forwarded_allow_ips": ["10.0.0.1", "proxy.local"]`), nil, []string{"forwarded_allow_ips[1]: must be an IP address"}},
		{"wrong type string", withPair(`"api_url": 5`), nil, []string{"config.json: api_url: must be a string, got number 5"}},
		{"wrong type bool", withPair(`"logging": {"colours": "maybe"}`), nil, []string{"config.json: logging.colours: must be a boolean, got string \"maybe\""}},
		{"wrong type via alias keeps spelling", withPair(`"logging": {"colors": []}`), nil, []string{"logging.colors: must be a boolean, got array"}},
		{"wrong type number", withPair(`"api_poll_timeout_seconds": "soon"`), nil, []string{"config.json: api_poll_timeout_seconds: must be a number, got string \"soon\""}},
		{"NaN rejected", withPair(`"api_poll_timeout_seconds": "NaN"`), nil, []string{"api_poll_timeout_seconds: must be a number"}},
		{"wrong type object", withPair(`"server": []`), nil, []string{"config.json: server: must be an object, got array"}},
		{"null object", withPair(`"logging": null`), nil, []string{"config.json: logging: must be an object, got null"}},
		{"override not object", withPair(`"logging": {"override": "x"}`), nil, []string{"logging.override: must be an object"}},
		{"list element type", withPair(`"allow_origins": ["https://a", 1]`), nil, []string{"allow_origins[1]: must be a string, got number 1"}},
		{"file type error survives merge", withPair(`"server": {"port": "abc"}`), []string{`SERVER={"host":"::"}`}, []string{"config.json: server.port: must be an integer"}},
		{"top level not object", `[]`, nil, []string{"config: config.json: top level must be an object, got array"}},
		{"top level null", `null`, nil, []string{"config: config.json: top level must be an object, got null"}},
		{"empty file", ``, nil, []string{"config: config.json:1:1: invalid JSON"}},
		{"syntax error position", "{\n  \"api_url\": \"x\",\n  \"server\": {\"port\": 80,}\n}", nil, []string{"config: config.json:3:", "invalid JSON"}},
		{"trailing data", onePair + " {}", nil, []string{"config: config.json:1:", "invalid JSON"}},
		{"env invalid JSON", noFile, []string{"LOGGING={log_level: DEBUG}"}, []string{"config: environment variable LOGGING: logging: invalid JSON"}},
		{"env invalid JSON lower-case name", noFile, []string{"environment_key_pairs=[{"}, []string{"environment variable environment_key_pairs: environment_key_pairs: invalid JSON"}},
		{"env list invalid JSON", onePair, []string{"ALLOW_ORIGINS=[https://a]"}, []string{"environment variable ALLOW_ORIGINS: allow_origins: invalid JSON"}},
		{"env wrong type", onePair, []string{"API_POLL_FREQUENCY_SECONDS=often"}, []string{"config: environment variable API_POLL_FREQUENCY_SECONDS: api_poll_frequency_seconds: must be a number, got string \"often\""}},
		{"env wrong JSON type", noFile, []string{`ENVIRONMENT_KEY_PAIRS={"server_side_key":"ser.a"}`}, []string{"environment variable ENVIRONMENT_KEY_PAIRS: environment_key_pairs: must be an array, got object"}},
		{"env nested wrong type", onePair, []string{`SERVER={"port":true}`}, []string{"environment variable SERVER: server.port: must be an integer, got boolean true"}},
		{"env empty object var", onePair, []string{"SERVER="}, []string{"environment variable SERVER: server: invalid JSON"}},
		{"env validation", onePair, []string{"LOGGING={\"log_level\":\"LOUD\"}"}, []string{"logging.log_level: unknown level"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadString(tt.file, tt.env...)
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not *config.Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	file := `{
		"environment_key_pairs": [
			{"server_side_key": "ser.aBcDeFgHiJkLmNoPqRsTuV", "client_side_key": "ZyXwVuTsRqPoNmLkJiHgFe"},
			{"server_side_key": "ser.b", "client_side_key": "abc"}
		],
		"api_url": "https://user:hunter2@flagsmith.example.com/api/v1/",
		"logging": {"override": {"loggers": {"": {"level": "INFO"}}}},
		"health_check": {"environment_update_grace_period_seconds": null}
	}`
	c := mustLoad(t, file)
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, secret := range []string{"aBcDeFgHiJkLmNoPqRsTuV", "ZyXwVuTsRqPoNmLkJiHgFe", "hunter2", `"abc"`} {
		if strings.Contains(s, secret) {
			t.Errorf("redacted output leaks %q:\n%s", secret, s)
		}
	}
	for _, want := range []string{
		`"server_side_key": "ser.aBcD…"`,
		`"server_side_key": "ser.…"`,
		`"client_side_key": "ZyXw…"`,
		`"client_side_key": "…"`,
		`"api_url": "https://user:xxxxx@flagsmith.example.com/api/v1"`,
		`"environment_update_grace_period_seconds": null`,
		`"level": "INFO"`,
		"\n  \"api_poll_frequency_seconds\": 10,\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("redacted output lacks %q:\n%s", want, s)
		}
	}
	if !json.Valid(out) {
		t.Errorf("redacted output is not JSON:\n%s", s)
	}
	if c.EnvironmentKeyPairs[0].ServerSideKey != "ser.aBcDeFgHiJkLmNoPqRsTuV" {
		t.Error("Redacted modified the config")
	}
}

// TestRoundTrip checks that a marshalled Config (what --print-config shows,
// before redaction) loads back to the same Config.
func TestRoundTrip(t *testing.T) {
	c := mustLoad(t, `{
		"environment_key_pairs": [{"server_side_key": "ser.a", "client_side_key": "a"}],
		"api_poll_frequency": 2.5, "allow_origins": "https://x",
		"logging": {"colors": false, "log_level": "warn", "override": {"a": [1, 2]}},
		"server": {"port": "9000", "tls_cert": "c", "tls_key": "k"},
		"health_check": {"environment_update_grace_period_seconds": null},
		"forwarded_allow_ips": "*", "web_concurrency": 3
	}`)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	again := mustLoad(t, string(b))
	c.Source, again.Source = "", ""
	if !reflect.DeepEqual(c, again) {
		t.Errorf("round trip changed the config:\n%+v\n%+v", c, again)
	}
}

func TestResolvePath(t *testing.T) {
	tests := []struct {
		name         string
		flag         string
		env          []string
		wantPath     string
		wantExplicit bool
	}{
		{"default", "", nil, "config.json", false},
		{"flag", "/etc/fledge.json", []string{"CONFIG_PATH=/other.json"}, "/etc/fledge.json", true},
		{"CONFIG_PATH", "", []string{"CONFIG_PATH=/other.json"}, "/other.json", true},
		{"CONFIG_PATH last wins", "", []string{"CONFIG_PATH=/a.json", "CONFIG_PATH=/b.json"}, "/b.json", true},
		{"empty CONFIG_PATH is unset", "", []string{"CONFIG_PATH="}, "config.json", false},
		{"CONFIG_PATH is case-sensitive", "", []string{"config_path=/x.json"}, "config.json", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, explicit := ResolvePath(tt.flag, tt.env)
			if p != tt.wantPath || explicit != tt.wantExplicit {
				t.Errorf("ResolvePath = %q, %v; want %q, %v", p, explicit, tt.wantPath, tt.wantExplicit)
			}
		})
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(onePair), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{\n\n   oops\n}"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.json")

	t.Run("explicit file", func(t *testing.T) {
		c, err := LoadResolved(good, nil)
		if err != nil || c.Source != good || len(c.EnvironmentKeyPairs) != 1 {
			t.Fatalf("LoadResolved = %+v, %v", c, err)
		}
	})
	t.Run("missing explicit flag", func(t *testing.T) {
		_, err := LoadResolved(missing, []string{onePairEnv})
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
			t.Fatalf("err = %v; want not-exist naming the file", err)
		}
	})
	t.Run("missing CONFIG_PATH", func(t *testing.T) {
		_, err := LoadResolved("", []string{"CONFIG_PATH=" + missing, onePairEnv})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v; want not-exist", err)
		}
	})
	t.Run("syntax error names file and position", func(t *testing.T) {
		_, err := Load(bad, nil)
		if err == nil || !strings.Contains(err.Error(), bad+":3:4: invalid JSON") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		_, err := Load(dir, nil)
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing default is not an error", func(t *testing.T) {
		t.Chdir(t.TempDir())
		c, err := LoadResolved("", []string{onePairEnv})
		if err != nil || c.Source != "" {
			t.Fatalf("LoadResolved = %+v, %v", c, err)
		}
	})
	t.Run("default file is read", func(t *testing.T) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "config.json"), []byte(onePair), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Chdir(d)
		c, err := LoadResolved("", nil)
		if err != nil || c.Source != "config.json" {
			t.Fatalf("LoadResolved = %+v, %v", c, err)
		}
	})
	t.Run("default file with errors is an error", func(t *testing.T) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "config.json"), []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Chdir(d)
		if _, err := LoadResolved("", []string{onePairEnv}); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestDefaultIsFresh(t *testing.T) {
	// Default must hand out fresh values: loads must not share the grace
	// pointer or slices.
	a, b := Default(), Default()
	*a.HealthCheck.EnvironmentUpdateGracePeriodSeconds = 1
	a.AllowOrigins[0] = "x"
	if *b.HealthCheck.EnvironmentUpdateGracePeriodSeconds != DefaultGracePeriodSeconds || b.AllowOrigins[0] != "*" {
		t.Error("Default shares state between calls")
	}
}
