package server

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/fledge-flags/fledge/source"
)

func (h *Handler) liveness(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// readiness answers as the Flagsmith edge proxy does: 200 with status ok
// while every environment is fresh, else 503 with the reason.
func (h *Handler) readiness(w http.ResponseWriter, r *http.Request) {
	hs := source.Health{Reason: source.ReasonNotUpdated}
	if h.opt.Readiness != nil {
		hs = h.opt.Readiness.Health(h.opt.now(), h.opt.PollInterval, h.opt.Grace, h.opt.GraceEnabled && !h.opt.Offline)
	}
	body := struct {
		Status               string  `json:"status"`
		Reason               *string `json:"reason"`
		LastSuccessfulUpdate *string `json:"last_successful_update"`
		Store                any     `json:"store,omitempty"`
	}{Status: "ok"}
	if h.opt.StoreStatus != nil {
		body.Store = h.opt.StoreStatus()
	}
	if !hs.LastSuccessful.IsZero() {
		s := hs.LastSuccessful.UTC().Format(time.RFC3339Nano)
		body.LastSuccessfulUpdate = &s
	}
	code := http.StatusOK
	if !hs.Ready {
		code = http.StatusServiceUnavailable
		body.Status = "error"
		body.Reason = &hs.Reason
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
