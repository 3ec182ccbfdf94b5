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
