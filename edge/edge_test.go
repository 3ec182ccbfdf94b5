package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/bolt"
	"github.com/fledge-flags/fledge/sdk"
)

// testDoc has a segment on plan=beta overriding "checkout", and a
// multivariate "colour" split 50/50 between red and blue.
const testDoc = `{
  "id": 7, "api_key": "envKey", "name": "t", "updated_at": "2026-11-01T00:00:00Z",
  "allow_client_traits": %t,
  "use_identity_composite_key_for_hashing": %t,
  "project": {"id": 1, "name": "p", "hide_disabled_flags": false, "server_key_only_feature_ids": [],
    "organisation": {"id": 1, "name": "o", "persist_trait_data": %t, "stop_serving_flags": false},
    "segments": [{"id": 10, "name": "beta", "rules": [{"type": "ALL", "rules": [], "conditions": [
      {"operator": "EQUAL", "property_": "plan", "value": "beta"}]}],
      "feature_states": [{"feature": {"id": 1, "name": "checkout", "type": "STANDARD"}, "enabled": true,
        "feature_state_value": "seg", "feature_segment": {"priority": 0}, "multivariate_feature_state_values": []}]}]},
  "feature_states": [
    {"feature": {"id": 1, "name": "checkout", "type": "STANDARD"}, "enabled": false, "feature_state_value": "default",
     "multivariate_feature_state_values": []},
    {"feature": {"id": 2, "name": "colour", "type": "MULTIVARIATE"}, "enabled": true, "feature_state_value": "none",
     "featurestate_uuid": "0b02ce41-9965-4c61-8b96-c8d76e3d4a27",
     "multivariate_feature_state_values": [
       {"id": 1, "percentage_allocation": 50, "multivariate_feature_option": {"id": 11, "value": "red"}},
       {"id": 2, "percentage_allocation": 50, "multivariate_feature_option": {"id": 12, "value": "blue"}}]}
  ],
  "identity_overrides": []
}`

type settings struct{ allowClientTraits, compositeHashing, persist bool }

func snapshot(t *testing.T, s settings) *environment.Snapshot {
	t.Helper()
	doc, err := environment.Parse(fmt.Appendf(nil, testDoc, s.allowClientTraits, s.compositeHashing, s.persist))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := environment.Compile(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func newIdentifier(t *testing.T) *Identifier {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "ids.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &Identifier{Store: store}
}

// call decodes body as the api role does and runs Identify.
func call(t *testing.T, e *Identifier, snap *environment.Snapshot, kind environment.KeyKind, body string) (*sdk.Identified, error) {
	t.Helper()
	req, err := sdk.DecodeEdgeIdentityRequest([]byte(body))
	if err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	var out sdk.Identified
	err = e.Identify(context.Background(), snap, kind, req, &out)
	return &out, err
}

func traitsOf(id *sdk.Identified) string {
	var s []string
	for _, t := range id.Traits {
		x := t.Key + "=" + string(t.Value)
		if t.Transient {
			x += "*"
		}
		s = append(s, x)
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

func flag(t *testing.T, snap *environment.Snapshot, id *sdk.Identified, name string) string {
	t.Helper()
	var r engine.Result
	snap.Program.Evaluate(&id.Identity, &r)
	for i := range r.Flags {
		if f := &r.Flags[i]; f.Name() == name {
			return fmt.Sprintf("%v %s", f.Enabled(), f.Value())
		}
	}
	return "absent"
}

func stored(t *testing.T, e *Identifier, identifier string) string {
	t.Helper()
	id, err := e.Store.Get(context.Background(), "envKey", identifier)
	if errors.Is(err, identity.ErrNotFound) {
		return "absent"
	}
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, tr := range id.Traits {
		s = append(s, tr.Key+"="+string(identity.ValueJSON(tr.Value)))
	}
	sort.Strings(s)
	return "[" + strings.Join(s, " ") + "]"
}

func TestIdentifyCases(t *testing.T) {
	on := settings{allowClientTraits: true, persist: true}
	for _, tc := range []struct {
		name       string
		settings   settings
		kind       environment.KeyKind
		seed       string // a POST made first with a server key, when set
		body       string
		wantTraits string // in the response
		wantStored string // afterwards
		checkout   string
	}{
		{name: "persisted, typed", settings: on, body: `{"identifier":"u","traits":[{"trait_key":"plan","trait_value":"beta"},{"trait_key":"n","trait_value":"007"},{"trait_key":"f","trait_value":"1.50"}]}`,
			wantTraits: `f=1.5 n=7 plan="beta"`, wantStored: `[f=1.5 n=7 plan="beta"]`, checkout: `true "seg"`},
		{name: "null deletes, others kept", settings: on, seed: `{"identifier":"u","traits":[{"trait_key":"plan","trait_value":"beta"},{"trait_key":"x","trait_value":1}]}`,
			body: `{"identifier":"u","traits":[{"trait_key":"plan","trait_value":null}]}`, wantTraits: `x=1`, wantStored: `[x=1]`, checkout: `false "default"`},
		{name: "transient trait wins, not stored", settings: on, seed: `{"identifier":"u","traits":[{"trait_key":"plan","trait_value":"free"}]}`,
			body: `{"identifier":"u","traits":[{"trait_key":"plan","trait_value":"beta","transient":true}]}`, wantTraits: `plan="beta"*`, wantStored: `[plan="free"]`, checkout: `true "seg"`},
		{name: "identified transient writes nothing", settings: on, body: `{"identifier":"u","transient":true,"traits":[{"trait_key":"plan","trait_value":"beta"}]}`,
			wantTraits: `plan="beta"*`, wantStored: "absent", checkout: `true "seg"`},
		{name: "transient null hides the stored value", settings: on, seed: `{"identifier":"u","traits":[{"trait_key":"plan","trait_value":"beta"}]}`,
			body: `{"identifier":"u","traits":[{"trait_key":"plan","trait_value":null,"transient":true}]}`, wantTraits: `plan=null*`, wantStored: `[plan="beta"]`, checkout: `false "default"`},
		{name: "client key, client traits off: dropped", settings: settings{persist: true}, kind: environment.ClientKey,
			body: `{"identifier":"u","traits":[{"trait_key":"plan","trait_value":"beta"}]}`, wantTraits: ``, wantStored: `[]`, checkout: `false "default"`},
		{name: "server key, client traits off: kept", settings: settings{persist: true}, kind: environment.ServerKey,
			body: `{"identifier":"u","traits":[{"trait_key":"plan","trait_value":"beta"}]}`, wantTraits: `plan="beta"`, wantStored: `[plan="beta"]`, checkout: `true "seg"`},
		{name: "persist off: evaluated, not stored", settings: settings{allowClientTraits: true}, seed: `{"identifier":"u"}`,
			body: `{"identifier":"u","traits":[{"trait_key":"plan","trait_value":"beta"}]}`, wantTraits: `plan="beta"`, wantStored: `[]`, checkout: `true "seg"`},
		{name: "no identifier: fully transient", settings: on, body: `{"traits":[{"trait_key":"plan","trait_value":"beta"},{"trait_key":"gone","trait_value":null}]}`,
			wantTraits: `plan="beta"*`, checkout: `true "seg"`},
		{name: "duplicate keys: last wins", settings: on, body: `{"identifier":"u","traits":[{"trait_key":"plan","trait_value":"free"},{"trait_key":"plan","trait_value":"beta"}]}`,
			wantTraits: `plan="beta"`, wantStored: `[plan="beta"]`, checkout: `true "seg"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newIdentifier(t)
			snap := snapshot(t, tc.settings)
			if tc.seed != "" {
				if _, err := call(t, e, snap, environment.ServerKey, tc.seed); err != nil {
					t.Fatal(err)
				}
			}
			kind := tc.kind
			if tc.kind == 0 && tc.settings.allowClientTraits {
				kind = environment.ClientKey
			}
			got, err := call(t, e, snap, kind, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if s := traitsOf(got); s != tc.wantTraits {
				t.Errorf("response traits %s, want %s", s, tc.wantTraits)
			}
			if tc.wantStored != "" {
				if s := stored(t, e, "u"); s != tc.wantStored {
					t.Errorf("stored %s, want %s", s, tc.wantStored)
				}
			}
			if f := flag(t, snap, got, "checkout"); f != tc.checkout {
				t.Errorf("checkout %s, want %s", f, tc.checkout)
			}
		})
	}
}

func TestTransientIdentifier(t *testing.T) {
	for _, tc := range []struct {
		traits []incoming
		want   string
	}{
		// edge-api.md's vector: b=true, a=1.0 → sha256("a1.0bTrue").
		{[]incoming{{key: "b", value: engine.Bool(true)}, {key: "a", value: engine.Float(1)}}, "ceffde9f44e6f90088280fd3c24e15564b0029b577eab6a8d80c19dd79f4dc85"},
		// Only nulls: the hash of the empty string, not a UUID.
		{[]incoming{{key: "a"}}, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	} {
		if got := transientIdentifier(tc.traits); got != tc.want {
			t.Errorf("transientIdentifier(%v) = %s, want %s", tc.traits, got, tc.want)
		}
	}
	a, b := transientIdentifier(nil), transientIdentifier(nil)
	if len(a) != 32 || a == b || strings.Trim(a, "0123456789abcdef") != "" {
		t.Errorf("without traits: want distinct UUID4 hex strings, got %q and %q", a, b)
	}
}

// TestStoredOverridesAndHashKey: a stored identity's own override beats the
// segment's; a migrated identity (django_id) keeps core's bucketing key
// unless the environment hashes composite keys.
func TestStoredOverridesAndHashKey(t *testing.T) {
	e := newIdentifier(t)
	ctx := context.Background()
	django := int64(4242)
	_, err := e.Store.Update(ctx, identity.Env{APIKey: "envKey", ID: "7"}, "m", func(*identity.Identity) (*identity.Identity, error) {
		return &identity.Identity{EnvironmentAPIKey: "envKey", Identifier: "m", DjangoID: &django,
			Traits:    []identity.Trait{{Key: "plan", Value: engine.String("beta")}},
			Overrides: []identity.Override{{Feature: identity.FeatureRef{ID: 1, Name: "checkout"}, Enabled: true, Value: json.RawMessage(`"mine"`)}},
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	legacy := snapshot(t, settings{allowClientTraits: true, persist: true})
	got, err := call(t, e, legacy, environment.ServerKey, `{"identifier":"m"}`)
	if err != nil {
		t.Fatal(err)
	}
	if f := flag(t, legacy, got, "checkout"); f != `true "mine"` {
		t.Errorf("checkout = %s, want the identity override over the matching segment", f)
	}
	if got.Identity.Key != "4242" {
		t.Errorf("hash key = %q, want the django_id", got.Identity.Key)
	}
	composite := snapshot(t, settings{allowClientTraits: true, persist: true, compositeHashing: true})
	got, err = call(t, e, composite, environment.ServerKey, `{"identifier":"m"}`)
	if err != nil {
		t.Fatal(err)
	}
	if got.Identity.Key != "" {
		t.Errorf("with composite hashing the key is derived (envKey_m), got %q", got.Identity.Key)
	}
}

// TestGetTransientDoesNotCreate: GET ?transient=true reads but never
// creates; a plain GET creates.
func TestGetTransientDoesNotCreate(t *testing.T) {
	e := newIdentifier(t)
	snap := snapshot(t, settings{allowClientTraits: true, persist: true})
	for _, tc := range []struct {
		transient bool
		want      string
	}{{true, "absent"}, {false, "[]"}} {
		req := &sdk.IdentityRequest{Identity: engine.Identity{Identifier: "g"}, Get: true, Transient: tc.transient}
		var out sdk.Identified
		if err := e.Identify(context.Background(), snap, environment.ClientKey, req, &out); err != nil {
			t.Fatal(err)
		}
		if got := stored(t, e, "g"); got != tc.want {
			t.Errorf("GET transient=%v: stored %s, want %s", tc.transient, got, tc.want)
		}
	}
}

// TestStoreFailureIsNotAFieldError: a store that cannot answer gives an
// error the server turns into 503, never a field error.
func TestStoreFailureIsNotAFieldError(t *testing.T) {
	e := newIdentifier(t)
	e.Store.Close()
	_, err := call(t, e, snapshot(t, settings{allowClientTraits: true, persist: true}), environment.ServerKey, `{"identifier":"u","traits":[{"trait_key":"k","trait_value":1}]}`)
	var fe *sdk.FieldError
	if err == nil || errors.As(err, &fe) {
		t.Fatalf("err = %v, want a store error", err)
	}
}
