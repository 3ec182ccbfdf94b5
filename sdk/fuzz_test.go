package sdk

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeIdentityRequest: any body gives a request or a field error,
// never a panic, and a decoded request always re-encodes as valid JSON.
func FuzzDecodeIdentityRequest(f *testing.F) {
	f.Add([]byte(`{"identifier":"u1","traits":[{"trait_key":"age","trait_value":42},{"trait_key":"x","trait_value":null,"transient":true}]}`))
	f.Add([]byte(`{"identifier":"u1","traits":null,"transient":true}`))
	f.Add([]byte(`{"identifier":"","traits":[{"trait_key":"k","trait_value":{"a":[1,2]}}]}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeIdentityRequest(body)
		// The hand-written reader must agree with encoding/json on what is
		// JSON at all (bodies nested deeper than it allows excepted).
		valid := json.Valid(body)
		if err == nil && !valid {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if fe, ok := err.(*FieldError); ok && fe.Type == "json_invalid" && valid && utf8.Valid(body) && !strings.Contains(fe.Msg, "nesting") {
			t.Fatalf("rejected valid JSON %q: %v", body, fe)
		}
		if err != nil {
			fe, ok := err.(*FieldError)
			if !ok {
				t.Fatalf("error %T is not a *FieldError: %v", err, err)
			}
			if !json.Valid(fe.JSON()) {
				t.Fatalf("error body is not JSON: %s", fe.JSON())
			}
			return
		}
		if req.Identity.Identifier == "" {
			t.Fatal("accepted an empty identifier")
		}
		var b []byte
		for _, tr := range req.RawTraits {
			b = append(b[:0], tr.Value...)
			if !json.Valid(b) {
				t.Fatalf("trait value %q is not JSON", tr.Value)
			}
		}
	})
}

// FuzzDecodeEdgeRequests: the api role's readers (identities, traits,
// bulk-identities) give a request or a field error for any body, never a
// panic, and agree with encoding/json on what is JSON.
func FuzzDecodeEdgeRequests(f *testing.F) {
	f.Add([]byte(`{"identifier":" u1 ","traits":[{"trait_key":7,"trait_value":"007"},{"trait_key":"x","trait_value":null,"transient":true}]}`))
	f.Add([]byte(`{"identifier":123,"traits":null,"transient":null}`))
	f.Add([]byte(`{"identity":{"identifier":"u"},"trait_key":"k","trait_value":1.5}`))
	f.Add([]byte(`{"data":[{"identifier":"a","traits":[{"trait_key":"k","trait_value":true}]},{"identifier":"b","traits":null}]}`))
	f.Add([]byte(`{"traits":[{"trait_key":"k"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		valid := json.Valid(body)
		check := func(what string, err error) {
			if err == nil {
				if !valid {
					t.Fatalf("%s accepted invalid JSON %q", what, body)
				}
				return
			}
			fe, ok := err.(*FieldError)
			if !ok {
				t.Fatalf("%s: error %T is not a *FieldError: %v", what, err, err)
			}
			if !json.Valid(fe.JSON()) {
				t.Fatalf("%s: error body is not JSON: %s", what, fe.JSON())
			}
		}
		req, err := DecodeEdgeIdentityRequest(body)
		check("identities", err)
		if err == nil {
			if strings.TrimSpace(req.Identity.Identifier) != req.Identity.Identifier || len(req.Identity.Identifier) > MaxEdgeIdentifierBytes {
				t.Fatalf("identifier %q not trimmed or over the limit", req.Identity.Identifier)
			}
			if len(req.RawTraits) != len(req.Identity.Traits) {
				t.Fatalf("%d raw traits, %d traits", len(req.RawTraits), len(req.Identity.Traits))
			}
		}
		tr, err := DecodeTraitRequest(body)
		check("traits", err)
		if err == nil && (tr.Identifier == "" || tr.Key == "") {
			t.Fatalf("trait request without identifier or key: %+v", tr)
		}
		reqs, err := DecodeBulkRequest(body)
		check("bulk", err)
		if err == nil && len(reqs) > MaxBulkIdentities {
			t.Fatalf("%d bulk identities accepted", len(reqs))
		}
	})
}
