package source

import (
	"fmt"
	"net/http"

	"github.com/fledge-flags/fledge/internal/redact"
)

// maxRedirects matches net/http's default limit.
const maxRedirects = 10

// SameOriginRedirect, an http.Client CheckRedirect policy, keeps the keys
// sent to the upstream at the API's origin. Go's client drops only
// Authorization, Cookie and the like when a redirect changes host, so
// X-Environment-Key would follow a redirect anywhere; a redirect
// that changes scheme, host or port is refused instead, which also rules
// out an https → http downgrade. This is the rule Link pagination follows
// (resolveNext).
func SameOriginRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	orig := via[0].URL
	if req.URL.Scheme != orig.Scheme || req.URL.Host != orig.Host {
		return &crossOriginError{to: req.URL.String()}
	}
	return nil
}

// crossOriginError names the refused target, password masked.
type crossOriginError struct{ to string }

func (e *crossOriginError) Error() string {
	return fmt.Sprintf("redirect to %s refused: it leaves the API's origin and would carry the server-side key", redact.URL(e.to))
}
