package config

import (
	"crypto/tls"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// MinPollSeconds is the shortest api_poll_frequency_seconds accepted.
const MinPollSeconds = 1.0

// MaxCacheEntries bounds endpoint_caches.*.cache_max_size. The identity
// cache is also bounded in bytes (server.IdentityCacheMaxBytes), so more
// entries would not hold more responses; a larger number is a typo.
const MaxCacheEntries = 1_000_000

// MaxFileBytes bounds the files the configuration names (environments),
// the same 32 MiB as a fetched environment document.
const MaxFileBytes = 32 << 20

// CheckFiles checks, at start-up, the files the configuration names: every
// environments file must be a readable regular file of at most
// MaxFileBytes, and server.tls_cert/tls_key must load as a key pair. Load
// does not do this, so that --print-config works anywhere; the proxy calls
// it before listening, so a missing file stops start-up (exit 2) naming
// the setting instead of failing after "listening".
func (c *Config) CheckFiles() error {
	for i, p := range c.Environments {
		if err := checkReadable(p, MaxFileBytes); err != nil {
			return settingError("environments["+strconv.Itoa(i)+"]", err.Error())
		}
	}
	if c.Server.TLSCert == "" {
		return nil
	}
	for _, f := range []struct{ name, path string }{{"server.tls_cert", c.Server.TLSCert}, {"server.tls_key", c.Server.TLSKey}} {
		if err := checkReadable(f.path, 0); err != nil {
			return settingError(f.name, err.Error())
		}
	}
	if _, err := tls.LoadX509KeyPair(c.Server.TLSCert, c.Server.TLSKey); err != nil {
		return &Error{Setting: "server.tls_cert/server.tls_key", Msg: "not a usable certificate and key: " + err.Error(), Err: err}
	}
	return nil
}

// checkReadable opens path and, when max > 0, checks its size.
func checkReadable(path string, max int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, unwrapPathError(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, unwrapPathError(err))
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if max > 0 && st.Size() > max {
		return fmt.Errorf("%s is larger than %d MiB", path, max>>20)
	}
	return nil
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// Warnings lists what start-up should log once: configurations Flagsmith's
// proxies accept and Fledge serves, but that are probably mistakes.
func (c *Config) Warnings() []string {
	var w []string
	if len(c.EnvironmentKeyPairs) == 0 && len(c.Environments) == 0 && !c.ProxyKeyEnabled() && !c.EnvironmentsFromDynamoDB() {
		w = append(w, "environment_key_pairs is empty and no environments file is set: every SDK request will get 401")
	}
	for i, p := range c.EnvironmentKeyPairs {
		at := "environment_key_pairs[" + strconv.Itoa(i) + "]"
		switch {
		case p.ClientSideKey == p.ServerSideKey:
			w = append(w, at+`: client_side_key is the server_side_key; requests with it are served as server-side (every flag, the environment document)`)
		case strings.HasPrefix(p.ClientSideKey, "ser."):
			w = append(w, at+`: client_side_key starts with "ser.", like a server-side key; requests with it are served as server-side (every flag, the environment document)`)
		}
	}
	return w
}
