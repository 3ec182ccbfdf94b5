package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fledge-flags/fledge/internal/redact"
)

// Defaults. The Python proxy's values are kept so that an existing
// deployment behaves the same; Fledge's additions are sized for a small
// JSON API.
const (
	DefaultPath                = "config.json"
	DefaultAPIURL              = "https://edge.api.flagsmith.com/api/v1"
	DefaultPollFrequency       = 10
	DefaultPollTimeout         = 5
	DefaultCacheMaxSize        = 128
	DefaultLogLevel            = "INFO"
	DefaultLogFormat           = "generic"
	DefaultLogEventFieldName   = "message"
	DefaultHost                = "0.0.0.0"
	DefaultPort                = 8000
	DefaultKeepAlive           = 5
	DefaultMaxBodyBytes        = 1 << 20
	DefaultMaxHeaderBytes      = 64 << 10
	DefaultReadHeaderTimeout   = 10
	DefaultReadTimeout         = 30
	DefaultWriteTimeout        = 30
	DefaultShutdownTimeout     = 30
	DefaultGracePeriodSeconds  = 30
	DefaultForwardedAllowIP    = "127.0.0.1"
	configPathEnv              = "CONFIG_PATH"
	minPositiveDurationSeconds = 0.001
)

// Config is the effective proxy configuration. JSON tags are the setting
// names, so marshalling a Config yields a file Load accepts.
type Config struct {
	EnvironmentKeyPairs []KeyPair `json:"environment_key_pairs"`
	// APIURL is the upstream base URL without a trailing slash.
	APIURL string `json:"api_url"`
	// APIPollFrequencySeconds and APIPollTimeoutSeconds are seconds; the
	// Python proxy takes integers, fractions are accepted so tests can poll
	// fast.
	APIPollFrequencySeconds float64        `json:"api_poll_frequency_seconds"`
	APIPollTimeoutSeconds   float64        `json:"api_poll_timeout_seconds"`
	AllowOrigins            []string       `json:"allow_origins"`
	EndpointCaches          EndpointCaches `json:"endpoint_caches"`
	Logging                 Logging        `json:"logging"`
	Server                  Server         `json:"server"`
	HealthCheck             HealthCheck    `json:"health_check"`

	// EnvironmentSource is where documents come from: "api" (default) or
	// "dynamodb" (config/envsource.go).
	EnvironmentSource string `json:"environment_source"`

	// Environments lists environment-document files served without any
	// upstream (offline mode). When set, EnvironmentKeyPairs may be empty.
	Environments []string `json:"environments"`
	// SnapshotDir, when not empty, is where fetched documents are persisted
	// so a restart can serve before the first successful poll.
	SnapshotDir string `json:"snapshot_dir"`
	// WebConcurrency is uvicorn's worker count in the Python proxy. Go
	// serves with one process, so it is accepted for compatibility; 0
	// means not set.
	WebConcurrency int `json:"web_concurrency"`
	// ForwardedAllowIPs are the peers whose X-Forwarded-* headers are
	// trusted when Server.ProxyHeaders is on: IPs, CIDR prefixes, or "*".
	ForwardedAllowIPs []string `json:"forwarded_allow_ips"`

	// The api role's settings (config/api.go).
	Store      Store      `json:"store"`
	Admin      Admin      `json:"admin"`
	API        API        `json:"api"`
	Forwarding Forwarding `json:"forwarding"`

	// Flag analytics forwarding (config/analytics.go).
	Analytics Analytics `json:"analytics"`

	// ProxyKey turns on proxy-key mode (config/proxykey.go): environments
	// discovered from the upstream at run time, usage reporting. nil (absent
	// or null): off.
	ProxyKey *string `json:"proxy_key"`
	// UsageFlushIntervalSeconds is the time between usage reports in
	// proxy-key mode (at least 1).
	UsageFlushIntervalSeconds float64 `json:"usage_flush_interval_seconds"`

	// Realtime (SSE) and metrics settings, both roles (config/realtime.go).
	Realtime Realtime `json:"realtime"`
	Metrics  Metrics  `json:"metrics"`

	// Unknown holds the ignored keys (dotted paths, sorted) so the caller
	// can warn about typos.
	Unknown []string `json:"-"`
	// Source is the file that was read, or "" when none was.
	Source string `json:"-"`
}

// KeyPair maps an environment's server-side key, used to fetch its
// document, to the client-side key the document is served under.
type KeyPair struct {
	ServerSideKey string `json:"server_side_key"`
	ClientSideKey string `json:"client_side_key"`
}

// EndpointCaches configures the per-endpoint LRU response caches.
type EndpointCaches struct {
	Flags      EndpointCache `json:"flags"`
	Identities EndpointCache `json:"identities"`
}

// EndpointCache configures one endpoint's LRU cache.
type EndpointCache struct {
	UseCache     bool `json:"use_cache"`
	CacheMaxSize int  `json:"cache_max_size"`
}

// Logging mirrors the Python proxy's logging block.
type Logging struct {
	// LogLevel is normalised to upper case, with WARN spelled WARNING.
	LogLevel string `json:"log_level"`
	// LogFormat is "generic" or "json" (normalised to lower case).
	LogFormat         string `json:"log_format"`
	EnableAccessLog   bool   `json:"enable_access_log"`
	Colours           bool   `json:"colours"`
	LogEventFieldName string `json:"log_event_field_name"`
	// Override is the Python proxy's logging.config dictConfig override,
	// kept verbatim (always a JSON object). Nothing in it is interpreted:
	// its handlers, formatters and per-logger levels name Python classes
	// (uvicorn, structlog) with no Go counterpart, so only log_level and
	// log_format shape Fledge's logging. It is kept so configs still load
	// and --print-config shows it.
	Override json.RawMessage `json:"override"`
}

// Server holds listener settings: the Python proxy's (host, port,
// proxy_headers, timeout_keep_alive) plus Fledge's TLS, size and timeout
// limits. Times are seconds.
type Server struct {
	Host                     string  `json:"host"`
	Port                     int     `json:"port"`
	ProxyHeaders             bool    `json:"proxy_headers"`
	TimeoutKeepAlive         float64 `json:"timeout_keep_alive"`
	TLSCert                  string  `json:"tls_cert"`
	TLSKey                   string  `json:"tls_key"`
	MaxBodyBytes             int64   `json:"max_body_bytes"`
	MaxHeaderBytes           int     `json:"max_header_bytes"`
	ReadHeaderTimeoutSeconds float64 `json:"read_header_timeout_seconds"`
	ReadTimeoutSeconds       float64 `json:"read_timeout_seconds"`
	WriteTimeoutSeconds      float64 `json:"write_timeout_seconds"`
	ShutdownTimeoutSeconds   float64 `json:"shutdown_timeout_seconds"`
	// DebugAddress ("host:port", empty = off) is where the diagnostics
	// listener serves /debug/vars and net/http/pprof; it is meant for a
	// loopback or private address, never the public one.
	DebugAddress string `json:"debug_address"`
}

// HealthCheck configures readiness staleness.
type HealthCheck struct {
	// EnvironmentUpdateGracePeriodSeconds is the per-pair grace; nil (JSON
	// null) means documents never go stale once all were fetched.
	EnvironmentUpdateGracePeriodSeconds *float64 `json:"environment_update_grace_period_seconds"`
}

// Default returns the configuration used when nothing is set. It has no
// environments, so it does not validate on its own.
func Default() *Config {
	grace := float64(DefaultGracePeriodSeconds)
	return &Config{
		EnvironmentKeyPairs:     []KeyPair{},
		EnvironmentSource:       EnvironmentSourceAPI,
		APIURL:                  DefaultAPIURL,
		APIPollFrequencySeconds: DefaultPollFrequency,
		APIPollTimeoutSeconds:   DefaultPollTimeout,
		AllowOrigins:            []string{"*"},
		EndpointCaches:          defaultCaches(),
		Logging: Logging{
			LogLevel:          DefaultLogLevel,
			LogFormat:         DefaultLogFormat,
			Colours:           true,
			LogEventFieldName: DefaultLogEventFieldName,
			Override:          json.RawMessage("{}"),
		},
		Server: Server{
			Host:                     DefaultHost,
			Port:                     DefaultPort,
			TimeoutKeepAlive:         DefaultKeepAlive,
			MaxBodyBytes:             DefaultMaxBodyBytes,
			MaxHeaderBytes:           DefaultMaxHeaderBytes,
			ReadHeaderTimeoutSeconds: DefaultReadHeaderTimeout,
			ReadTimeoutSeconds:       DefaultReadTimeout,
			WriteTimeoutSeconds:      DefaultWriteTimeout,
			ShutdownTimeoutSeconds:   DefaultShutdownTimeout,
		},
		HealthCheck:       HealthCheck{EnvironmentUpdateGracePeriodSeconds: &grace},
		Environments:      []string{},
		ForwardedAllowIPs: []string{DefaultForwardedAllowIP},
		Store:             defaultStore(),
		Admin:             Admin{Tokens: []string{}},
		Analytics:         defaultAnalytics(),

		UsageFlushIntervalSeconds: DefaultUsageFlushInterval,
		Realtime:                  defaultRealtime(),
	}
}

func defaultCaches() EndpointCaches {
	return EndpointCaches{
		Flags:      EndpointCache{CacheMaxSize: DefaultCacheMaxSize},
		Identities: EndpointCache{CacheMaxSize: DefaultCacheMaxSize},
	}
}

// ResolvePath picks the config file the way the CLI documents it: the
// --config flag, then CONFIG_PATH (exact case, as the Python proxy reads it
// with os.environ), then ./config.json. explicit reports whether the path
// was asked for; only then is a missing file an error (see [LoadResolved]).
// Empty values count as unset.
func ResolvePath(flagValue string, env []string) (path string, explicit bool) {
	if flagValue != "" {
		return flagValue, true
	}
	p := ""
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == configPathEnv {
			p = v // last wins, as in a process environment
		}
	}
	if p != "" {
		return p, true
	}
	return DefaultPath, false
}

// LoadResolved is [ResolvePath] followed by [Load], treating a missing
// default ./config.json as "no file" so a proxy configured purely by
// environment variables starts.
func LoadResolved(flagValue string, env []string) (*Config, error) {
	path, explicit := ResolvePath(flagValue, env)
	c, err := Load(path, env)
	if err != nil && !explicit && errors.Is(err, fs.ErrNotExist) {
		return Load("", env)
	}
	return c, err
}

// Load reads the JSON file at path (none when path is ""), applies the
// environment (KEY=VALUE entries, as os.Environ returns them) on top, and
// validates the result. Every error is an *Error naming the setting, and
// the file or variable when the fault is in one. A missing file yields an
// error matching fs.ErrNotExist.
func Load(path string, env []string) (*Config, error) {
	var data []byte
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			msg := "cannot read file"
			if errors.Is(err, fs.ErrNotExist) {
				msg = "file not found"
			}
			return nil, &Error{Source: path, Msg: msg, Err: err}
		}
		data = b
	}
	return load(path, data, env)
}

// load is Load without the file system, so tests and the fuzz target can
// feed bytes directly.
func load(path string, data []byte, env []string) (*Config, error) {
	c := Default()
	// Core's table-name variables sit between the defaults and Fledge's
	// own settings.
	c.Store.DynamoDB.Tables.fromCoreVars(env)
	d := newDecoder()
	if path != "" {
		c.Source = path
		if err := d.file(c, path, data); err != nil {
			return nil, err
		}
	}
	if err := d.env(c, env); err != nil {
		return nil, err
	}
	if err := d.firstError(); err != nil {
		return nil, err
	}
	c.Unknown = d.unknownKeys()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// PollInterval is how often every environment document is re-fetched.
func (c *Config) PollInterval() time.Duration { return seconds(c.APIPollFrequencySeconds) }

// PollTimeout bounds one upstream document request.
func (c *Config) PollTimeout() time.Duration { return seconds(c.APIPollTimeoutSeconds) }

// Grace returns the per-pair staleness grace; ok is false when staleness
// is disabled (environment_update_grace_period_seconds: null). Readiness
// fails when the last full poll is older than
// PollInterval + grace × len(EnvironmentKeyPairs), as in the Python proxy.
func (c *Config) Grace() (grace time.Duration, ok bool) {
	g := c.HealthCheck.EnvironmentUpdateGracePeriodSeconds
	if g == nil {
		return 0, false
	}
	return seconds(*g), true
}

// Addr is the listen address for net.Listen.
func (c *Config) Addr() string {
	return net.JoinHostPort(c.Server.Host, strconv.Itoa(c.Server.Port))
}

// TLS reports whether the listener serves HTTPS.
func (c *Config) TLS() bool { return c.Server.TLSCert != "" }

// ClientKey maps a server-side key to its pair's client-side key, which is
// what documents are cached under.
func (c *Config) ClientKey(serverKey string) (string, bool) {
	for _, p := range c.EnvironmentKeyPairs {
		if p.ServerSideKey == serverKey {
			return p.ClientSideKey, true
		}
	}
	return "", false
}

// TrustedProxies parses ForwardedAllowIPs: all is true for "*", otherwise
// prefixes lists the trusted networks (single IPs as /32 or /128).
func (c *Config) TrustedProxies() (all bool, prefixes []netip.Prefix) {
	for _, s := range c.ForwardedAllowIPs {
		if s == "*" {
			return true, nil
		}
		if p, err := parseIPOrPrefix(s); err == nil {
			prefixes = append(prefixes, p)
		}
	}
	return false, prefixes
}

// KeepAlive is how long an idle keep-alive connection stays open
// (server.Serve).
func (s Server) KeepAlive() time.Duration { return seconds(s.TimeoutKeepAlive) }

// ReadHeaderTimeout bounds reading a request's header (server.Serve).
func (s Server) ReadHeaderTimeout() time.Duration { return seconds(s.ReadHeaderTimeoutSeconds) }

// ReadTimeout bounds reading a request's body (0: none); it also stands in
// for a zero header or keep-alive timeout, as in net/http.
func (s Server) ReadTimeout() time.Duration { return seconds(s.ReadTimeoutSeconds) }

// WriteTimeout bounds a request from the end of its header to the end of
// its answer (0: none).
func (s Server) WriteTimeout() time.Duration { return seconds(s.WriteTimeoutSeconds) }

// ShutdownTimeout bounds the graceful drain on SIGTERM.
func (s Server) ShutdownTimeout() time.Duration { return seconds(s.ShutdownTimeoutSeconds) }

// SlogLevel maps the Python level names onto slog. CRITICAL has no slog
// name, so it sits above Error; NOTSET logs everything.
func (l Logging) SlogLevel() slog.Level {
	switch l.LogLevel {
	case "DEBUG", "NOTSET":
		return slog.LevelDebug
	case "WARNING":
		return slog.LevelWarn
	case "ERROR":
		return slog.LevelError
	case "CRITICAL":
		return slog.LevelError + 4
	default:
		return slog.LevelInfo
	}
}

// Redacted renders the effective configuration as indented JSON for
// `fledge proxy --print-config` with the same rule as the logs (package
// redact): each environment key is cut to "ser." and four characters plus
// "…", and a password in api_url is masked, so the output can be pasted
// into a bug report.
func (c *Config) Redacted() ([]byte, error) {
	r := *c
	r.EnvironmentKeyPairs = make([]KeyPair, len(c.EnvironmentKeyPairs))
	for i, p := range c.EnvironmentKeyPairs {
		r.EnvironmentKeyPairs[i] = KeyPair{
			ServerSideKey: redact.Key(p.ServerSideKey),
			ClientSideKey: redact.Key(p.ClientSideKey),
		}
	}
	r.APIURL = redact.URL(c.APIURL)
	r.Store.DynamoDB.EnvironmentKeys = redactTokens(c.Store.DynamoDB.EnvironmentKeys)
	r.Admin.Tokens = redactTokens(c.Admin.Tokens)
	if r.ProxyKey != nil {
		k := redact.Key(*r.ProxyKey)
		r.ProxyKey = &k
	}
	if r.Forwarding.SigningKey != "" {
		r.Forwarding.SigningKey = redact.Key(r.Forwarding.SigningKey)
	}
	if c.Realtime.QueueChangeToken != "" {
		r.Realtime.QueueChangeToken = redact.Key(c.Realtime.QueueChangeToken)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&r); err != nil {
		return nil, fmt.Errorf("config: rendering: %w", err)
	}
	return buf.Bytes(), nil
}

// maxSeconds is the largest value a time.Duration can hold, in seconds.
var maxSeconds = float64(math.MaxInt64 / int64(time.Second))

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func parseIPOrPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
