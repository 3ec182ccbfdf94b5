package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// validate normalises the merged configuration and fails on the first
// fault, so the proxy never starts half-configured.
func (c *Config) validate() error {
	checks := []func() error{
		c.validateKeyPairs,
		c.validateEnvironments,
		c.validateUpstream,
		c.validateCaches,
		c.validateLogging,
		c.validateServer,
		c.validateMisc,
		c.validateAPI,
		c.validateAnalytics,
		c.validateProxyKey,
		c.validateEnvironmentSource,
		c.validateRealtime,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) validateKeyPairs() error {
	clients := map[string]int{}
	servers := map[string]int{}
	for i, p := range c.EnvironmentKeyPairs {
		at := "environment_key_pairs[" + strconv.Itoa(i) + "]"
		switch {
		case p.ServerSideKey == "":
			return settingError(at+".server_side_key", "must not be empty")
		case !strings.HasPrefix(p.ServerSideKey, "ser."):
			return settingError(at+".server_side_key", `must start with "ser."`)
		case p.ServerSideKey == "ser.":
			return settingError(at+".server_side_key", `must have characters after "ser."`)
		case p.ClientSideKey == "":
			return settingError(at+".client_side_key", "must not be empty")
		}
		// A "ser." client key is accepted, as Flagsmith's proxies accept it
		// (Warnings says so once at start-up).
		// Key values stay out of messages: they end up in logs.
		if j, dup := clients[p.ClientSideKey]; dup {
			return settingError(at+".client_side_key", fmt.Sprintf("duplicate of environment_key_pairs[%d].client_side_key", j))
		}
		if j, dup := servers[p.ServerSideKey]; dup {
			return settingError(at+".server_side_key", fmt.Sprintf("duplicate of environment_key_pairs[%d].server_side_key", j))
		}
		clients[p.ClientSideKey] = i
		servers[p.ServerSideKey] = i
	}
	// A key that is one pair's client key and another's server key would
	// make requests with it ambiguous. (Within one pair the two may be
	// equal.)
	for i, p := range c.EnvironmentKeyPairs {
		if j, ok := servers[p.ClientSideKey]; ok && j != i {
			return settingError("environment_key_pairs["+strconv.Itoa(i)+"].client_side_key", fmt.Sprintf("is environment_key_pairs[%d].server_side_key", j))
		}
	}
	return nil
}

func (c *Config) validateEnvironments() error {
	seen := map[string]int{}
	for i, p := range c.Environments {
		at := "environments[" + strconv.Itoa(i) + "]"
		if p == "" {
			return settingError(at, "must not be empty")
		}
		if j, dup := seen[p]; dup {
			return settingError(at, fmt.Sprintf("duplicate of environments[%d]", j))
		}
		seen[p] = i
	}
	// No environment at all is allowed, as in Flagsmith's proxies: the
	// proxy answers 401 and Warnings says why.
	return nil
}

func (c *Config) validateUpstream() error {
	c.APIURL = strings.TrimRight(strings.TrimSpace(c.APIURL), "/")
	u, err := url.Parse(c.APIURL)
	switch {
	case err != nil:
		return &Error{Setting: "api_url", Msg: "malformed URL: " + unwrapURLError(err), Err: err, key: "api_url"}
	case u.Scheme != "http" && u.Scheme != "https":
		return settingError("api_url", "must be an http or https URL, got scheme "+strconv.Quote(u.Scheme))
	case u.Hostname() == "":
		return settingError("api_url", "must include a host")
	case u.RawQuery != "" || u.Fragment != "":
		// Request paths are appended to the URL; a query would swallow them.
		return settingError("api_url", "must not have a query or fragment")
	}
	if err := positiveSeconds("api_poll_frequency_seconds", c.APIPollFrequencySeconds); err != nil {
		return err
	}
	if c.APIPollFrequencySeconds < MinPollSeconds {
		// Sub-second polling would hammer the API for no fresher flags.
		return settingError("api_poll_frequency_seconds", "must be at least "+formatFloat(MinPollSeconds)+" second, got "+formatFloat(c.APIPollFrequencySeconds))
	}
	return positiveSeconds("api_poll_timeout_seconds", c.APIPollTimeoutSeconds)
}

// unwrapURLError drops url.Error's "parse <url>:" prefix, which would echo
// credentials embedded in the URL.
func unwrapURLError(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return err.Error()
}

func (c *Config) validateCaches() error {
	for _, ec := range []struct {
		name string
		size int
	}{{"flags", c.EndpointCaches.Flags.CacheMaxSize}, {"identities", c.EndpointCaches.Identities.CacheMaxSize}} {
		if ec.size < 0 {
			return settingError("endpoint_caches."+ec.name+".cache_max_size", "must not be negative, got "+strconv.Itoa(ec.size))
		}
		if ec.size > MaxCacheEntries {
			return settingError("endpoint_caches."+ec.name+".cache_max_size", "must be at most "+strconv.Itoa(MaxCacheEntries)+" entries, got "+strconv.Itoa(ec.size))
		}
	}
	return nil
}

var (
	logLevels  = []string{"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "NOTSET"}
	logFormats = []string{"generic", "json"}
)

func (c *Config) validateLogging() error {
	lvl := strings.ToUpper(strings.TrimSpace(c.Logging.LogLevel))
	if lvl == "WARN" {
		lvl = "WARNING"
	}
	if !slices.Contains(logLevels, lvl) {
		return settingError("logging.log_level", fmt.Sprintf("unknown level %q (want DEBUG, INFO, WARNING, ERROR or CRITICAL)", clip(c.Logging.LogLevel)))
	}
	c.Logging.LogLevel = lvl
	format := strings.ToLower(strings.TrimSpace(c.Logging.LogFormat))
	if !slices.Contains(logFormats, format) {
		return settingError("logging.log_format", fmt.Sprintf("unknown format %q (want generic or json)", clip(c.Logging.LogFormat)))
	}
	c.Logging.LogFormat = format
	return nil
}

func (c *Config) validateServer() error {
	s := &c.Server
	if !validHost(s.Host) {
		return settingError("server.host", fmt.Sprintf("must be an IP address or host name, got %q", clip(s.Host)))
	}
	if s.Port < 1 || s.Port > 65535 {
		return settingError("server.port", "must be between 1 and 65535, got "+strconv.Itoa(s.Port))
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		if s.TLSCert == "" {
			return settingError("server.tls_cert", "must be set when server.tls_key is")
		}
		return settingError("server.tls_key", "must be set when server.tls_cert is")
	}
	if s.DebugAddress != "" {
		host, port, err := net.SplitHostPort(s.DebugAddress)
		if err != nil || !validHost(host) {
			return settingError("server.debug_address", fmt.Sprintf("must be host:port, such as 127.0.0.1:8001, got %q", clip(s.DebugAddress)))
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return settingError("server.debug_address", fmt.Sprintf("port must be between 0 and 65535, got %q", clip(port)))
		}
	}
	if s.MaxBodyBytes <= 0 {
		return settingError("server.max_body_bytes", "must be greater than 0, got "+strconv.FormatInt(s.MaxBodyBytes, 10))
	}
	if s.MaxHeaderBytes <= 0 {
		return settingError("server.max_header_bytes", "must be greater than 0, got "+strconv.Itoa(s.MaxHeaderBytes))
	}
	// Zero keeps net/http's meaning: no limit (keep-alive: fall back to
	// the read timeout).
	for _, t := range []struct {
		name string
		v    float64
	}{
		{"server.timeout_keep_alive", s.TimeoutKeepAlive},
		{"server.read_header_timeout_seconds", s.ReadHeaderTimeoutSeconds},
		{"server.read_timeout_seconds", s.ReadTimeoutSeconds},
		{"server.write_timeout_seconds", s.WriteTimeoutSeconds},
		{"server.shutdown_timeout_seconds", s.ShutdownTimeoutSeconds},
	} {
		if err := nonNegativeSeconds(t.name, t.v); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) validateMisc() error {
	if g := c.HealthCheck.EnvironmentUpdateGracePeriodSeconds; g != nil {
		if err := nonNegativeSeconds("health_check.environment_update_grace_period_seconds", *g); err != nil {
			return err
		}
	}
	if c.WebConcurrency < 0 {
		return settingError("web_concurrency", "must not be negative, got "+strconv.Itoa(c.WebConcurrency))
	}
	for i, s := range c.ForwardedAllowIPs {
		if s == "*" {
			continue
		}
		if _, err := parseIPOrPrefix(s); err != nil {
			return settingError("forwarded_allow_ips["+strconv.Itoa(i)+"]", fmt.Sprintf(`must be an IP address, a CIDR prefix or "*", got %q`, clip(s)))
		}
	}
	return nil
}

func positiveSeconds(name string, v float64) error {
	if v <= 0 {
		return settingError(name, "must be greater than 0, got "+formatFloat(v))
	}
	if v < minPositiveDurationSeconds {
		return settingError(name, "must be at least 0.001 seconds, got "+formatFloat(v))
	}
	return nonNegativeSeconds(name, v)
}

func nonNegativeSeconds(name string, v float64) error {
	if v < 0 {
		return settingError(name, "must not be negative, got "+formatFloat(v))
	}
	if v > maxSeconds {
		return settingError(name, "must be at most "+formatFloat(maxSeconds)+" seconds, got "+formatFloat(v))
	}
	return nil
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// validHost accepts IP literals (the Python proxy's IPvAnyAddress) and,
// beyond it, host names such as "localhost".
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
