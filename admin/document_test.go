package admin_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/admin"
	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/identity"
)

// localFlag evaluates a served document as a local-evaluation SDK would:
// parse, compile, evaluate the identity (no stored state).
func localFlag(t *testing.T, doc []byte, identifier, feature string) (bool, string) {
	t.Helper()
	snap := compile(t, doc)
	var r engine.Result
	snap.Program.Evaluate(&engine.Identity{Identifier: identifier}, &r)
	i, ok := snap.Program.FeatureIndex(feature)
	if !ok {
		t.Fatalf("no feature %q", feature)
	}
	return r.Flags[i].Enabled(), string(r.Flags[i].Value())
}

func identityOverrides(t *testing.T, doc []byte) []map[string]any {
	t.Helper()
	var top struct {
		IdentityOverrides []map[string]any `json:"identity_overrides"`
	}
	if err := json.Unmarshal(doc, &top); err != nil {
		t.Fatalf("document is not JSON: %v", err)
	}
	return top.IdentityOverrides
}

func TestDocumentOverrides(t *testing.T) {
	forEachStore(t, func(t *testing.T, s identity.Store) {
		f := newFixture(t, s)
		ctx := t.Context()
		body, mod, err := f.docs.Document(ctx, f.snapA)
		if err != nil {
			t.Fatal(err)
		}
		if len(identityOverrides(t, body.JSON)) != 0 {
			t.Fatalf("overrides before any: %s", body.JSON)
		}
		if mod.Before(f.snapA.UpdatedAt) {
			t.Fatalf("LastModified %v before updated_at %v", mod, f.snapA.UpdatedAt)
		}
		// Rendered once per generation: the same body again.
		again, _, _ := f.docs.Document(ctx, f.snapA)
		if again != body {
			t.Fatal("an unchanged document was rendered again")
		}

		u := create(t, f.h, envA, "local-user", "")
		want(t, call(t, f.h, "POST", path(envA, "edge-identities", u, "edge-featurestates/"), `{"feature":"banner","enabled":true,"feature_state_value":"local"}`), 201, "")
		want(t, call(t, f.h, "POST", path(envA, "edge-identities", u, "edge-featurestates/"),
			`{"feature":"colour","enabled":true,"feature_state_value":"pinned","multivariate_feature_state_values":[{"multivariate_feature_option":102,"percentage_allocation":100}]}`), 201, "")
		body2, mod2, err := f.docs.Document(ctx, f.snapA)
		if err != nil {
			t.Fatal(err)
		}
		if body2 == body || !mod2.After(f.snapA.UpdatedAt) || mod2.Before(mod) {
			t.Fatalf("after an override change: same body %t, LastModified %v (before %v)", body2 == body, mod2, mod)
		}
		ovs := identityOverrides(t, body2.JSON)
		if len(ovs) != 1 || ovs[0]["identifier"] != "local-user" || ovs[0]["identity_uuid"] != u || ovs[0]["environment_api_key"] != envA {
			t.Fatalf("identity_overrides = %v", ovs)
		}
		features := ovs[0]["identity_features"].([]any)
		if len(features) != 2 {
			t.Fatalf("identity_features = %v", features)
		}
		// The option is an object in the document, as SDKs decode it.
		if s := mustJSON(features[1]); !strings.Contains(s, `"multivariate_feature_option":{"id":102,"value":"blue"}`) {
			t.Fatalf("multivariate values in the document: %s", s)
		}
		// A local-evaluation SDK sees the override; others do not.
		if on, v := localFlag(t, body2.JSON, "local-user", "banner"); !on || v != `"local"` {
			t.Fatalf("local evaluation: banner = %t %s", on, v)
		}
		if _, v := localFlag(t, body2.JSON, "local-user", "colour"); v != `"pinned"` {
			t.Fatalf("local evaluation: colour = %s", v)
		}
		if on, v := localFlag(t, body2.JSON, "someone-else", "banner"); on || v != `"default"` {
			t.Fatalf("local evaluation of another identity: banner = %t %s", on, v)
		}
		// The rest of the document is unchanged.
		var orig, rendered map[string]json.RawMessage
		_ = json.Unmarshal(f.snapA.Document.JSON, &orig)
		_ = json.Unmarshal(body2.JSON, &rendered)
		for k, v := range orig {
			if k == "identity_overrides" {
				continue
			}
			if !jsonEqual(v, rendered[k]) {
				t.Errorf("document field %s changed", k)
			}
		}
		// Gzip form, when long enough, is the same document.
		if len(body2.JSON) >= environment.GzipMinBytes {
			zr, err := gzip.NewReader(bytes.NewReader(body2.Gzip))
			if err != nil {
				t.Fatal(err)
			}
			plain, _ := io.ReadAll(zr)
			if !bytes.Equal(plain, body2.JSON) || body2.GzipLength[0] != itoa(len(body2.Gzip)) || body2.JSONLength[0] != itoa(len(body2.JSON)) {
				t.Fatal("gzip form or lengths do not match the JSON")
			}
		}

		// Deleting the override through the by-identifier endpoint, then the identity.
		want(t, call(t, f.h, "DELETE", "/api/v1/environments/environments/"+envA+"/edge-identities-featurestates", `{"identifier":"local-user","feature":"banner"}`), 204, "")
		body3, _, _ := f.docs.Document(ctx, f.snapA)
		if on, _ := localFlag(t, body3.JSON, "local-user", "banner"); on {
			t.Fatal("a deleted override is still in the document")
		}
		want(t, call(t, f.h, "DELETE", path(envA, "edge-identities", u), ""), 204, "")
		body4, _, _ := f.docs.Document(ctx, f.snapA)
		if n := len(identityOverrides(t, body4.JSON)); n != 0 {
			t.Fatalf("%d entries after deleting the identity", n)
		}

		// Without use_identity_overrides_in_local_eval the snapshot's own document is served.
		snapB := f.reg.Env(envB).Snapshot()
		b, mod, err := f.docs.Document(ctx, snapB)
		if err != nil || b != &snapB.Document || !mod.Equal(snapB.UpdatedAt) {
			t.Fatalf("environment without overrides in its document: %p (want %p), %v, %v", b, &snapB.Document, mod, err)
		}
	})
}

func TestDocumentOverridesMergeAndRefresh(t *testing.T) {
	forEachStore(t, func(t *testing.T, s identity.Store) {
		// The upstream document has overrides for "upstream-only" and for
		// "both"; the store has overrides for "both" and a deleted feature.
		raw := docJSON(envA, 1, true, true)
		raw = bytes.Replace(raw, []byte(`"identity_overrides": []`), []byte(`"identity_overrides": [
		  {"identifier": "upstream-only", "identity_features": [{"feature": {"id": 1, "name": "banner", "type": "STANDARD"}, "enabled": true, "feature_state_value": "up", "featurestate_uuid": "5d6c3b6e-0000-4000-8000-00000000aaaa", "multivariate_feature_state_values": []}]},
		  {"identifier": "both", "identity_features": [{"feature": {"id": 1, "name": "banner", "type": "STANDARD"}, "enabled": true, "feature_state_value": "upstream-stale", "featurestate_uuid": "5d6c3b6e-0000-4000-8000-00000000bbbb", "multivariate_feature_state_values": []}]}]`), 1)
		snap := compile(t, raw)
		env := identity.Env{APIKey: envA, ID: "1"}
		if _, err := s.Update(t.Context(), env, "both", func(*identity.Identity) (*identity.Identity, error) {
			return &identity.Identity{EnvironmentAPIKey: envA, Identifier: "both", Overrides: []identity.Override{
				{Feature: identity.FeatureRef{ID: 1, Name: "old-name", Type: "STANDARD"}, Enabled: false, Value: json.RawMessage(`"stored"`), FeatureStateUUID: identity.NewUUID()},
				{Feature: identity.FeatureRef{ID: 77, Name: "deleted", Type: "STANDARD"}, Enabled: true, FeatureStateUUID: identity.NewUUID()},
				{Feature: identity.FeatureRef{ID: 2, Name: "colour", Type: "MULTIVARIATE"}, Enabled: true, Value: json.RawMessage(`"x"`), FeatureStateUUID: identity.NewUUID(),
					MultivariateValues: json.RawMessage(`[{"id":1,"multivariate_feature_option":101,"percentage_allocation":100}]`)},
			}}, nil
		}); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		docs := admin.NewDocumentOverrides(s, admin.DocumentOptions{MaxAge: time.Minute, Now: func() time.Time { return now }})
		body, _, err := docs.Document(t.Context(), snap)
		if err != nil {
			t.Fatal(err)
		}
		ovs := identityOverrides(t, body.JSON)
		if len(ovs) != 2 || ovs[0]["identifier"] != "upstream-only" || ovs[1]["identifier"] != "both" {
			t.Fatalf("merged identity_overrides = %s", mustJSON(ovs))
		}
		feats := mustJSON(ovs[1]["identity_features"])
		if strings.Contains(feats, "deleted") || strings.Contains(feats, "old-name") || !strings.Contains(feats, `"name":"banner"`) ||
			!strings.Contains(feats, `"multivariate_feature_option":{"id":101,"value":"red"}`) {
			t.Fatalf("store entry's features = %s", feats)
		}
		if _, v := localFlag(t, body.JSON, "both", "banner"); v != `"stored"` {
			t.Fatalf("the stored override does not win over the upstream one: %s", v)
		}
		if _, v := localFlag(t, body.JSON, "upstream-only", "banner"); v != `"up"` {
			t.Fatalf("upstream entry lost: %s", v)
		}

		// A write by another process is picked up after MaxAge, or at
		// once after Changed.
		if _, err := s.Update(t.Context(), env, "both", func(cur *identity.Identity) (*identity.Identity, error) {
			cur.Overrides[0].Value = json.RawMessage(`"rewritten"`)
			return cur, nil
		}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(59 * time.Second)
		if b, _, _ := docs.Document(t.Context(), snap); b != body {
			t.Fatal("re-rendered within MaxAge without a change")
		}
		now = now.Add(2 * time.Second)
		b, _, _ := docs.Document(t.Context(), snap)
		if _, v := localFlag(t, b.JSON, "both", "banner"); v != `"rewritten"` {
			t.Fatalf("after MaxAge: %s", v)
		}
		if _, err := s.Update(t.Context(), env, "both", func(cur *identity.Identity) (*identity.Identity, error) {
			cur.Overrides[0].Value = json.RawMessage(`"again"`)
			return cur, nil
		}); err != nil {
			t.Fatal(err)
		}
		docs.Changed(envA)
		_, mod, _ := docs.Document(t.Context(), snap)
		b, _, _ = docs.Document(t.Context(), snap)
		if _, v := localFlag(t, b.JSON, "both", "banner"); v != `"again"` {
			t.Fatalf("after Changed: %s", v)
		}
		if !mod.Equal(now) {
			t.Fatalf("LastModified after Changed = %v, want %v", mod, now)
		}
		// A new snapshot is rendered afresh too.
		snap2 := compile(t, raw)
		if b2, _, _ := docs.Document(t.Context(), snap2); b2 == b {
			t.Fatal("a new snapshot reused the old rendering")
		}
	})
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return mustJSON(x) == mustJSON(y)
}

func itoa(n int) string { return mustJSON(n) }
