package environment_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
)

// FuzzDocument parses, compiles and evaluates arbitrary environment
// documents with arbitrary traits: a bad document must be an error, never a
// panic, and a good one must evaluate for any identity.
func FuzzDocument(f *testing.F) {
	for _, name := range []string{"environment.json", "offline-environment.json"} {
		doc, err := os.ReadFile(filepath.Join(fixtures, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(doc, "overridden-id", []byte(`{"age": 30, "plan": "beta"}`))
	}
	if doc, err := os.ReadFile(filepath.Join("..", "examples", "environment.json")); err == nil {
		f.Add(doc, "qa-alice", []byte(`{"logins": "120", "app_version": "2.4.0", "country": "SE"}`))
	}
	f.Fuzz(func(t *testing.T, data []byte, identifier string, traits []byte) {
		doc, err := environment.Parse(data)
		if err != nil {
			return
		}
		snap, err := environment.Compile(doc, nil)
		if err != nil {
			return
		}
		if err := snap.SetDocumentJSON(data); err != nil {
			return
		}
		id := &engine.Identity{Identifier: identifier}
		var tm map[string]any
		if json.Unmarshal(traits, &tm) == nil {
			for k, v := range tm {
				id.Traits = append(id.Traits, engine.Trait{Name: k, Value: engine.ValueFromJSON(v)})
			}
		}
		for _, kind := range []environment.KeyKind{environment.ClientKey, environment.ServerKey} {
			out := snap.AppendIdentityFlags(nil, kind, id)
			if !json.Valid(out) {
				t.Fatalf("identity flags are not JSON: %s", out)
			}
			if !json.Valid(snap.FlagsJSON(kind)) {
				t.Fatalf("flags are not JSON: %s", snap.FlagsJSON(kind))
			}
		}
	})
}
