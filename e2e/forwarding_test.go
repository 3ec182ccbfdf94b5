package e2e

import (
	"net/http"
	"testing"

	"github.com/fledge-flags/fledge/forwarding"
)

// TestForwardedWrites replays the requests a self-hosted Flagsmith sends
// when EDGE_API_URL points at Fledge (Core's edge_request_forwarder: the
// body is Python's json.dumps of the request data, and the signature is an
// HMAC-SHA256 of that body, or of "" for GET and for an empty body).
func TestForwardedWrites(t *testing.T) {
	const key = "shared-signing-key-0123456789"
	cfg := apiConfig(t, t.TempDir(), "")
	cfg["forwarding"] = map[string]any{"signing_key": key}
	p := startAPI(t, cfg)
	forward := func(method, path, body, signature string) response {
		t.Helper()
		var b []byte
		if body != "" {
			b = []byte(body)
		}
		req := p.request(t, method, path, exampleServerKey, b)
		req.Header.Set(forwarding.SignatureHeader, signature)
		return p.do(t, req)
	}
	sign := func(body string) string { return forwarding.Sign([]byte(key), []byte(body)) }

	body := `{"identifier": "fwd-user", "traits": [{"trait_key": "plan", "trait_value": "beta"}]}`
	for i := range 2 { // a duplicated forward is harmless
		if r := forward(http.MethodPost, "/api/v1/identities/", body, sign(body)); r.status != http.StatusOK {
			t.Fatalf("forward %d: %d %s", i, r.status, r.body)
		}
	}
	if got := lookup(t, p, exampleServerKey, "identifier=fwd-user").traits(); got != `plan="beta"` {
		t.Errorf("after the forwarded POST: %s", got)
	}
	// A bad signature: 401 JSON, nothing written.
	bad := `{"identifier": "fwd-user", "traits": [{"trait_key": "plan", "trait_value": "free"}]}`
	for _, sig := range []string{sign(body), "", "zz", sign(bad)[:10]} {
		r := forward(http.MethodPost, "/api/v1/identities/", bad, sig)
		assertStatusJSON(t, "bad signature "+sig, r, http.StatusUnauthorized)
	}
	if got := lookup(t, p, exampleServerKey, "identifier=fwd-user").traits(); got != `plan="beta"` {
		t.Errorf("after rejected forwards: %s", got)
	}
	// GET is signed over the empty string, and lazily creates.
	if r := forward(http.MethodGet, "/api/v1/identities/?identifier=fwd-get", "", sign("")); r.status != http.StatusOK {
		t.Errorf("forwarded GET: %d %s", r.status, r.body)
	}
	// Core signs "" but sends "{}" for an empty body.
	if r := forward(http.MethodPost, "/api/v1/identities/", "{}", sign("")); r.status != http.StatusOK {
		t.Errorf("forwarded {}: %d %s", r.status, r.body)
	}
	// POST /traits/, in both orders: each forward applies, the last one wins.
	one := `{"identity": {"identifier": "fwd-user"}, "trait_key": "n", "trait_value": 1}`
	two := `{"identity": {"identifier": "fwd-user"}, "trait_key": "n", "trait_value": 2}`
	for _, b := range []string{two, one} {
		if r := forward(http.MethodPost, "/api/v1/traits/", b, sign(b)); r.status != http.StatusOK {
			t.Errorf("forwarded trait: %d %s", r.status, r.body)
		}
	}
	if got := lookup(t, p, exampleServerKey, "identifier=fwd-user").traits(); got != `n=1 plan="beta"` {
		t.Errorf("after reordered trait forwards: %s", got)
	}
	// Ordinary SDK calls carry no signature and are unaffected.
	identify(t, p, exampleClientKey, `{"identifier":"plain"}`)
}
