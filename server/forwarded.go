package server

import (
	"net/http"

	"github.com/fledge-flags/fledge/forwarding"
)

// forwardedOK checks a write that a self-hosted Flagsmith forwarded (it
// carries X-Flagsmith-Signature, an HMAC of the body under the shared
// EDGE_REQUEST_SIGNING_KEY). Requests without the header are ordinary SDK
// calls. With no signing key configured the header is ignored, as
// Flagsmith's own Edge API does when unconfigured. It answers 401 itself
// and returns false when the signature does not verify, before anything is
// decoded or written.
func (h *Handler) forwardedOK(w http.ResponseWriter, r *http.Request, body []byte) bool {
	sig, present := r.Header[forwarding.SignatureHeader]
	if !present || len(h.opt.SigningKey) == 0 {
		return true
	}
	if len(sig) != 1 || !forwarding.VerifySignature(h.opt.SigningKey, body, sig[0]) {
		writeError(w, http.StatusUnauthorized, "unauthorized", "invalid "+forwarding.SignatureHeader+" for this request")
		return false
	}
	return true
}

// readSignedBody reads a write's body and checks its forwarding signature,
// answering the error itself when it returns false.
func (h *Handler) readSignedBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := h.readBody(w, r)
	if err != nil {
		return nil, false
	}
	if !h.forwardedOK(w, r, body) {
		h.putBody(body)
		return nil, false
	}
	return body, true
}
