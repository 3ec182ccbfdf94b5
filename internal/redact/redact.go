// Package redact is the one rule for showing secrets in logs, error
// messages and `fledge proxy --print-config`: environment keys keep their
// "ser." prefix and four characters, URLs lose their password.
package redact

import (
	"net/url"
	"strings"
)

// Key shortens an environment key: enough to tell keys apart, too few to
// use one. A key of four characters or fewer (after "ser.") shows nothing,
// since "the first four" would be all of it.
func Key(key string) string {
	prefix := ""
	if rest, ok := strings.CutPrefix(key, "ser."); ok {
		prefix, key = "ser.", rest
	}
	r := []rune(key)
	if len(r) <= 4 {
		return prefix + "…"
	}
	return prefix + string(r[:4]) + "…"
}

// URL masks the password of a URL's userinfo (as url.URL.Redacted does).
// A string that does not parse as a URL may still hold a secret, so only
// its scheme is kept.
func URL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if i := strings.Index(s, "://"); i > 0 && !strings.ContainsAny(s[:i], "/@:") {
			return s[:i] + "://…"
		}
		return "…"
	}
	if u.Opaque != "" { // "user:pass@host" parses as scheme "user"
		return u.Scheme + ":…"
	}
	return u.Redacted()
}
