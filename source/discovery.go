package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/fledge-flags/fledge/internal/redact"
	"github.com/fledge-flags/fledge/registry"
)

// maxConfigBytes bounds the proxy configuration: a few hundred bytes per
// environment, so this is room for tens of thousands.
const maxConfigBytes = 16 << 20

// NoRedirects returns a copy of c that does not follow redirects: a 3xx
// comes back as the response. The proxy-key calls (configuration, usage)
// follow none, as the Rust proxy's client does not.
func NoRedirects(c *http.Client) *http.Client {
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// discover fetches the proxy configuration and makes the registry's
// discovered environments what it lists. A failure of any kind leaves the
// set as it is: nothing is ever removed but by a successful answer that no
// longer lists an environment.
func (p *Poller) discover(ctx context.Context) bool {
	list, err := p.fetchConfig(ctx)
	if err != nil {
		attrs := []any{"proxy_key", redact.Key(p.ProxyKey), "error", err.Error(),
			"serving", "the last good set of environments", "environments", len(p.Registry.Envs())}
		if se, ok := errors.AsType[*statusError](err); ok && (se.code == http.StatusUnauthorized || se.code == http.StatusForbidden) {
			attrs = append(attrs, "hint", "the API refused the proxy key: check proxy_key and that api_url points at the Flagsmith API that issued it")
		}
		p.logger().Error("proxy configuration fetch failed", attrs...)
		return false
	}
	now := p.clock()
	res := p.Registry.Reconcile(list, now)
	p.fresh().MarkDiscovered(now)
	log := p.logger()
	for _, s := range res.Skipped {
		level := slog.LevelWarn
		if s.Quiet {
			level = slog.LevelDebug
		}
		log.Log(ctx, level, "proxy configuration entry skipped", "client_key", redact.Key(s.ClientKey), "reason", s.Reason)
	}
	for _, k := range res.Added {
		log.Info("environment added", "client_key", redact.Key(k))
		if p.Snapshots != nil {
			if env := p.Registry.Env(k); env != nil {
				p.Snapshots.loadOne(env, p.fresh(), log)
			}
		}
	}
	for _, k := range res.Rekeyed {
		log.Info("environment server-side keys changed", "client_key", redact.Key(k))
	}
	for _, k := range res.Removed {
		log.Info("environment removed", "client_key", redact.Key(k))
	}
	return true
}

// fetchConfig gets and parses GET {api_url}/proxy/config/.
func (p *Poller) fetchConfig(ctx context.Context) ([]registry.Discovered, error) {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	u := p.APIURL + "/proxy/config/"
	shown := redact.URL(u)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("building request for %s: %w", shown, unwrapURLError(err))
	}
	req.Header.Set("X-Proxy-Key", p.ProxyKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "fledge")
	resp, err := NoRedirects(p.Client).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("GET %s: no complete answer within %s", shown, p.Timeout)
		}
		return nil, fmt.Errorf("GET %s: %w", shown, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, &statusError{code: resp.StatusCode, url: shown}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxConfigBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("GET %s: body not received within %s", shown, p.Timeout)
		}
		return nil, fmt.Errorf("GET %s: reading body: %w", shown, err)
	}
	if len(body) > maxConfigBytes {
		return nil, fmt.Errorf("GET %s: proxy configuration larger than %d bytes", shown, maxConfigBytes)
	}
	list, err := ParseProxyConfig(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", shown, err)
	}
	return list, nil
}

// ParseProxyConfig decodes the proxy configuration as strictly as the Rust
// proxy's typed decoding does (proxy-key.md §2.2): a bare array; each entry
// an object with client_side_key (string) and server_side_keys (array,
// missing means empty); each key an object with key (string), active
// (boolean) and expires_at (RFC 3339 or null, missing means null). Other
// fields are ignored. Any fault fails the whole configuration, which the
// caller treats as a failed fetch. Errors never quote key values.
func ParseProxyConfig(body []byte) ([]registry.Discovered, error) {
	if !startsWith(body, '[') {
		return nil, errors.New("invalid proxy configuration: not a JSON array")
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(body, &entries); err != nil {
		return nil, fmt.Errorf("invalid proxy configuration: %w", err)
	}
	out := make([]registry.Discovered, 0, len(entries))
	for i, raw := range entries {
		at := "entry " + strconv.Itoa(i)
		m, err := object(raw, at)
		if err != nil {
			return nil, err
		}
		var d registry.Discovered
		if err := requiredString(m, "client_side_key", at, &d.ClientKey); err != nil {
			return nil, err
		}
		keys, ok := m["server_side_keys"]
		if !ok {
			out = append(out, d)
			continue
		}
		if !startsWith(keys, '[') {
			return nil, fmt.Errorf("invalid proxy configuration: %s: server_side_keys is not an array", at)
		}
		var list []json.RawMessage
		if err := json.Unmarshal(keys, &list); err != nil {
			return nil, fmt.Errorf("invalid proxy configuration: %s: server_side_keys: %w", at, err)
		}
		for j, rawKey := range list {
			kat := at + ": server_side_keys[" + strconv.Itoa(j) + "]"
			km, err := object(rawKey, kat)
			if err != nil {
				return nil, err
			}
			var k registry.ServerKey
			if err := requiredString(km, "key", kat, &k.Key); err != nil {
				return nil, err
			}
			active, ok := km["active"]
			if !ok || isNull(active) || json.Unmarshal(active, &k.Active) != nil {
				return nil, fmt.Errorf("invalid proxy configuration: %s: active must be a boolean", kat)
			}
			if exp, ok := km["expires_at"]; ok && !isNull(exp) {
				var s string
				if json.Unmarshal(exp, &s) != nil {
					return nil, fmt.Errorf("invalid proxy configuration: %s: expires_at must be a timestamp or null", kat)
				}
				t, err := time.Parse(time.RFC3339Nano, s)
				if err != nil {
					return nil, fmt.Errorf("invalid proxy configuration: %s: expires_at is not an RFC 3339 timestamp", kat)
				}
				k.ExpiresAt = t
			}
			d.ServerKeys = append(d.ServerKeys, k)
		}
		out = append(out, d)
	}
	return out, nil
}

func startsWith(b []byte, c byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == c
}

func isNull(b json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(b), []byte("null")) }

func object(raw json.RawMessage, at string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if !startsWith(raw, '{') || json.Unmarshal(raw, &m) != nil {
		return nil, fmt.Errorf("invalid proxy configuration: %s is not an object", at)
	}
	return m, nil
}

func requiredString(m map[string]json.RawMessage, name, at string, dst *string) error {
	v, ok := m[name]
	if !ok || isNull(v) || json.Unmarshal(v, dst) != nil {
		return fmt.Errorf("invalid proxy configuration: %s: %s must be a string", at, name)
	}
	return nil
}
