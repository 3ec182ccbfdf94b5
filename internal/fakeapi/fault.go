package fakeapi

import "strconv"

// Fault selects how the server misbehaves; see Server.Fail. Faults model the
// infrastructure between Fledge and Flagsmith, so they apply to every request
// whatever its path or key, before authentication.
type Fault int

const (
	// FaultNone serves normally.
	FaultNone Fault = iota
	// FaultDown closes the listening socket so connections are refused and
	// drops open ones, keep-alive included. The port is re-bound when any
	// other fault (FaultNone included) is set. Its count is ignored: refused
	// connections never reach the server, so they cannot be counted.
	FaultDown
	// FaultHang accepts the request and never answers, until the client gives
	// up, Fail is called again (the request is then served normally, or
	// dropped if the new fault is FaultDown) or the server is closed.
	FaultHang
	// Fault500 answers 500 with Django's HTML error page.
	Fault500
	// Fault502 answers 502 with a load balancer's HTML error page.
	Fault502
	// Fault403 answers 403 {"detail":"Invalid or missing Environment Key"},
	// core's answer to a revoked key.
	Fault403
	// Fault304 answers 304 with an empty body, even without If-Modified-Since.
	Fault304
	// FaultTruncated announces the full document in Content-Length, sends
	// half of it and closes the connection.
	FaultTruncated
	// FaultInvalidJSON answers 200 application/json with a body that is not
	// JSON.
	FaultInvalidJSON
	// FaultWrongShape answers 200 with valid JSON that is not a document,
	// cycling through WrongShapes() in order, one per faulted request.
	FaultWrongShape
	// FaultHuge streams a valid-JSON document of exactly HugeSize bytes with
	// chunked encoding (no Content-Length, never gzip-encoded), so only a
	// client that limits what it reads is protected.
	FaultHuge
	// FaultRedirectLoop answers 302 with Location set to the request's own
	// path and query.
	FaultRedirectLoop
	// FaultLinkLoop answers 200 with the whole document and a Link rel="next"
	// that points back to the same page forever.
	FaultLinkLoop
	// FaultSlow serves normally after the delay set by SetDelay.
	FaultSlow
)

// HugeSize is the exact body size of FaultHuge.
const HugeSize = 50 << 20

var faultNames = [...]string{
	FaultNone:         "FaultNone",
	FaultDown:         "FaultDown",
	FaultHang:         "FaultHang",
	Fault500:          "Fault500",
	Fault502:          "Fault502",
	Fault403:          "Fault403",
	Fault304:          "Fault304",
	FaultTruncated:    "FaultTruncated",
	FaultInvalidJSON:  "FaultInvalidJSON",
	FaultWrongShape:   "FaultWrongShape",
	FaultHuge:         "FaultHuge",
	FaultRedirectLoop: "FaultRedirectLoop",
	FaultLinkLoop:     "FaultLinkLoop",
	FaultSlow:         "FaultSlow",
}

// String names the fault, for readable test failures.
func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return "Fault(" + strconv.Itoa(int(f)) + ")"
}

// WrongShapes returns the bodies FaultWrongShape cycles through. They are
// chosen to defeat different shortcuts: an object with none of the document's
// fields decodes into a Go struct without error, as does null; a list and a
// bare string do not.
func WrongShapes() []string {
	return []string{`{"foo": [1, 2]}`, `[{"foo": [1, 2]}]`, `null`, `"environment"`}
}

// invalidJSON is FaultInvalidJSON's body: the start of a document, cut off.
const invalidJSON = `{"id": 1, "api_key": "fakeapiClientKey000000", "feature_states": [{"feature": `

const (
	body403        = `{"detail":"Invalid or missing Environment Key"}`
	body404        = `{"detail":"Not found."}`
	bodyNotImpl    = `{"detail":"not implemented in fakeapi"}`
	body500        = "<h1>Server Error (500)</h1>"
	body502        = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
	contentJSON    = "application/json"
	contentHTML    = "text/html; charset=utf-8"
	documentPath   = "/api/v1/environment-document/"
	neverCache     = "max-age=0, no-cache, no-store, must-revalidate, private"
	updatedAtField = "X-Flagsmith-Document-Updated-At"
)
