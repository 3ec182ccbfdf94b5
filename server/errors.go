package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/fledge-flags/fledge/sdk"
)

// writeError writes the Flagsmith edge proxy's error shape:
// {"status": "...", "message": "..."}.
func writeError(w http.ResponseWriter, code int, status, message string) {
	body, _ := json.Marshal(struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}{status, message})
	h := w.Header()
	h.Del("Content-Encoding")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// WriteError writes an error in the shape of every Fledge error response,
// for handlers outside this package (realtime, the api role's routes).
func WriteError(w http.ResponseWriter, code int, status, message string) {
	writeError(w, code, status, message)
}

// NotFound answers a path no endpoint serves, as the handler does.
func NotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+clip(r.URL.Path))
}

// writeValidation writes a 422 in the shape of the Python edge proxy's
// validation errors, naming the field.
func writeValidation(w http.ResponseWriter, err error) {
	writeFieldError(w, http.StatusUnprocessableEntity, err)
}

// writeFieldError writes a field error with the status of the role: 422
// for the proxy (the Python edge proxy's), 400 for the api role (core's).
func writeFieldError(w http.ResponseWriter, code int, err error) {
	var fe *sdk.FieldError
	if !errors.As(err, &fe) {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	body := fe.JSON()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
