package server

import (
	"net/http"
	"strings"
)

// exposedHeaders lets browsers read the document timestamp that the
// Flagsmith JS SDK compares with realtime events.
const exposedHeaders = "X-Flagsmith-Document-Updated-At"

// cors applies allow_origins. It answers preflight requests itself and
// reports true when it did.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	hdr := w.Header()
	hdr.Add("Vary", "Origin")
	if !h.anyOrigin && !h.origins[strings.TrimSuffix(origin, "/")] {
		return false // not allowed: no CORS headers, the browser blocks it
	}
	// Credentials are allowed, as in the Flagsmith edge proxy, so the
	// origin is echoed rather than answered with "*".
	hdr.Set("Access-Control-Allow-Origin", origin)
	hdr.Set("Access-Control-Allow-Credentials", "true")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		hdr.Set("Access-Control-Allow-Methods", "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT")
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			hdr.Set("Access-Control-Allow-Headers", req)
		}
		hdr.Set("Access-Control-Max-Age", "600")
		hdr.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return true
	}
	hdr.Set("Access-Control-Expose-Headers", exposedHeaders)
	return false
}
