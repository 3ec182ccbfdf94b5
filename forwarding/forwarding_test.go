package forwarding

import (
	"strings"
	"testing"
)

// Vectors computed as Core does: hmac.new(key, json.dumps(data).encode(),
// hashlib.sha256).hexdigest(), with Python's default separators and
// ensure_ascii, key "edge-signing-key".
func TestVerifySignature(t *testing.T) {
	key := []byte("edge-signing-key")
	const (
		identify  = `{"identifier": "user-1", "traits": [{"trait_key": "age", "trait_value": 42}]}`
		identSig  = "382254e55b8324e0ae7453be868fdcc6b76085b707e966c279b015c3d3eb0351"
		trait     = `{"trait_key": "plan", "trait_value": "gold", "identity": {"identifier": "\u00fcn\u00efcode"}}`
		traitSig  = "fe5a01f49dd0e3e4496bf40106f755ea931d49024b72c401d4ad2893a0cc23fd"
		nullTrait = `{"trait_key": "n", "trait_value": null, "identity": {"identifier": "x"}}`
		nullSig   = "81cb42ff5b029e055e88d467ca1b4978441eb4727704ccdef544c8824be9be15"
		emptySig  = "f0a933a50f0c395d441fbef0b89eced1b86e81782aacf062995d2d7a6fc5207b" // ""
		braceSig  = "f0ac878e16ae253fe2cfdb473867c0f9700ac8bd379f4ff4d215e074c7771f68" // "{}"
	)
	tests := []struct {
		name   string
		key    []byte
		body   string
		header string
		want   bool
	}{
		{"identify POST", key, identify, identSig, true},
		{"upper-case hex", key, identify, strings.ToUpper(identSig), true},
		{"surrounding spaces", key, identify, " " + identSig + " ", true},
		{"trait POST with escaped unicode", key, trait, traitSig, true},
		{"null trait value", key, nullTrait, nullSig, true},
		{"GET signs the empty string", key, "", emptySig, true},
		{"{} body: Core signs the empty string", key, "{}", emptySig, true},
		{"{} body signed as sent", key, "{}", braceSig, true},
		{"compact re-encoding does not verify", key, `{"identifier":"user-1","traits":[{"trait_key":"age","trait_value":42}]}`, identSig, false},
		{"other body", key, trait, identSig, false},
		{"GET with a body's signature", key, "", identSig, false},
		{"wrong key", []byte("other"), identify, identSig, false},
		{"empty key", nil, "", Sign(nil, nil), false},
		{"missing header", key, identify, "", false},
		{"not hex", key, identify, "zz" + identSig[2:], false},
		{"truncated", key, identify, identSig[:62], false},
		{"too long", key, identify, identSig + "00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifySignature(tt.key, []byte(tt.body), tt.header); got != tt.want {
				t.Errorf("VerifySignature = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSign(t *testing.T) {
	if got := Sign([]byte("edge-signing-key"), nil); got != "f0a933a50f0c395d441fbef0b89eced1b86e81782aacf062995d2d7a6fc5207b" {
		t.Errorf("Sign(empty) = %s", got)
	}
}
