// Package forwarding verifies the requests a Flagsmith Core API forwards
// to an Edge API after serving SDK identity and trait writes (api.md §6.3).
//
// Core signs each forwarded request with
//
//	X-Flagsmith-Signature: hex(HMAC-SHA256(EDGE_REQUEST_SIGNING_KEY, message))
//
// where message is the JSON body it sends (json.dumps of the request data)
// or, when there is no request data, the empty string: GET requests, and
// POSTs whose data is empty, which Core nonetheless sends with the body
// "{}" (edge_request_forwarder.py signs `json.dumps(data) if data else ""`).
package forwarding

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SignatureHeader carries the signature.
const SignatureHeader = "X-Flagsmith-Signature"

// Sign returns the hex signature of message, as Core computes it.
func Sign(key, message []byte) string { return hex.EncodeToString(mac(key, message)) }

// VerifySignature reports whether header is Core's signature of a
// forwarded request with this body (nil or empty for GET) under key. The
// comparison is constant-time. A body of "{}" verifies against the
// signature of the empty string, which is what Core sends for it, and also
// against the signature of "{}" itself. An empty key verifies nothing.
func VerifySignature(key, body []byte, header string) bool {
	if len(key) == 0 {
		return false
	}
	got, err := hex.DecodeString(strings.TrimSpace(header))
	if err != nil || len(got) != sha256.Size {
		return false
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("{}")) {
		ok := hmac.Equal(got, mac(key, nil))
		if len(trimmed) != 0 {
			// Not short-circuited, so the time taken does not tell which
			// form matched.
			ok = hmac.Equal(got, mac(key, body)) || ok
		}
		return ok
	}
	return hmac.Equal(got, mac(key, body))
}

func mac(key, message []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(message)
	return m.Sum(nil)
}
