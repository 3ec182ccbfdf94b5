package dynamo

import (
	"encoding/json"
	"testing"

	"github.com/fledge-flags/fledge/engine"
)

var numberSeeds = []string{
	"0", "-0", "1", "-12", "007", "01", "1.5", "1.", ".5", "-.5", "1e5", "1E+5", "1e-5", "1e", "1e+", "-", "+1",
	"1 ", "1\t\n\r ", " 1", "1 x", "1\v", "NaN", "Infinity", "0x10", "1_000", "", "12345678901234567890123456789012345678",
	"1.0e400", "--1", "1.2.3", "١٢",
}

// FuzzJSONNumber holds jsonNumber to validNumber's verdict (json.Valid),
// and its text to what a JSON reader takes of the number.
func FuzzJSONNumber(f *testing.F) {
	for _, s := range numberSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := jsonNumber(s)
		if ok != validNumber(s) {
			t.Fatalf("jsonNumber(%q) ok = %t; validNumber says %t", s, ok, validNumber(s))
		}
		if !ok {
			return
		}
		var n json.Number
		if err := json.Unmarshal([]byte(s), &n); err != nil || string(n) != got {
			t.Fatalf("jsonNumber(%q) = %q; encoding/json reads %q (%v)", s, got, n, err)
		}
	})
}

var keySeeds = []string{
	"trait_key", "Trait_Key", "TRAIT_KEY", "trait_kEy", "traıt_key", "trait_\u212aey", "ſystem_traits", "SYSTEM_TRAITS",
	"trait_key\xff", "trait_key ", "traitkey", "", "ı", "ſ", "é", "trait-key", "TRAİT_KEY",
}

// FuzzFoldedName holds foldedName to encoding/json's matching of object
// keys to field names.
func FuzzFoldedName(f *testing.F) {
	for _, k := range keySeeds {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, k string) {
		var v struct {
			TraitKey *string `json:"trait_key"`
		}
		data := append(engine.AppendJSONString([]byte("{"), k), `:"x"}`...)
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		folded, ok := foldedName(k)
		matches := k == "trait_key" || ok && folded == "trait_key"
		if matches != (v.TraitKey != nil) {
			t.Fatalf("key %q: foldedName = %q, %t; encoding/json matches it: %t", k, folded, ok, v.TraitKey != nil)
		}
	})
}

// FuzzJSONString holds jsonString to what a string reads back as from the
// JSON the store's converter writes.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "abc", "a\xffb", "\xed\xa0\x80", "<&>\u2028", "\xf0\x9f\x9a", "名前 🚀", "\ufffd\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var back string
		if err := json.Unmarshal(engine.AppendJSONString(nil, s), &back); err != nil {
			t.Fatal(err)
		}
		if got := jsonString(s); got != back {
			t.Fatalf("jsonString(%q) = %q; JSON reads back %q", s, got, back)
		}
	})
}
