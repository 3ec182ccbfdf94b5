package admin_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fledge-flags/fledge/edge"
	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/memstore"
	"github.com/fledge-flags/fledge/sdk"
	"github.com/fledge-flags/fledge/server"
)

func overrideJSON(value string, feature int, mv string, enabled bool, fsUUID, identityUUID string) string {
	b, _ := json.Marshal(map[string]any{
		"feature_state_value": json.RawMessage(value), "feature": feature, "multivariate_feature_state_values": json.RawMessage(mv),
		"enabled": enabled, "featurestate_uuid": fsUUID, "identity_uuid": identityUUID,
	})
	return string(b)
}

func TestFeatureStates(t *testing.T) {
	forEachStore(t, func(t *testing.T, s identity.Store) {
		f := newFixture(t, s)
		uuid := create(t, f.h, envA, "fs-user", "")
		base := path(envA, "edge-identities", uuid, "edge-featurestates/")
		want(t, call(t, f.h, "GET", base, ""), 200, `[]`)

		// Create by id and by name.
		r := call(t, f.h, "POST", base, `{"feature":1,"enabled":true,"feature_state_value":"on for you"}`)
		want(t, r, 201, "")
		fs1 := r.object(t)["featurestate_uuid"].(string)
		want(t, r, 201, overrideJSON(`"on for you"`, 1, `[]`, true, fs1, uuid))
		r = call(t, f.h, "POST", base, `{"feature":"beta","feature_state_value":7}`)
		fs3 := r.object(t)["featurestate_uuid"].(string)
		want(t, r, 201, overrideJSON(`7`, 3, `[]`, false, fs3, uuid))
		if fs1 == fs3 {
			t.Fatal("two overrides share a featurestate_uuid")
		}
		// Multivariate allocations by option id.
		r = call(t, f.h, "POST", base, `{"feature":"2","enabled":true,"feature_state_value":"control","multivariate_feature_state_values":[{"multivariate_feature_option":101,"percentage_allocation":100}]}`)
		fs2 := r.object(t)["featurestate_uuid"].(string)
		want(t, r, 201, overrideJSON(`"control"`, 2, `[{"multivariate_feature_option":101,"percentage_allocation":100}]`, true, fs2, uuid))

		for _, tc := range []struct{ name, body, want string }{
			{"duplicate", `{"feature":"banner"}`, `["Feature state already exists."]`},
			{"unknown id", `{"feature":999}`, `{"feature":["Feature 999 does not exist in this environment."]}`},
			{"unknown name", `{"feature":"nope"}`, `{"feature":["Feature \"nope\" does not exist in this environment."]}`},
			{"missing feature", `{"enabled":true}`, `{"feature":["This field is required."]}`},
			{"bad feature", `{"feature":true}`, `{"feature":["Expected a feature id or name."]}`},
			{"bad enabled", `{"feature":"banner","enabled":"yes"}`, `{"enabled":["Must be a valid boolean."]}`},
			{"object value", `{"feature":"banner","feature_state_value":{"a":1}}`, `{"feature_state_value":["Must be a string, an integer, a boolean or null."]}`},
			{"float value", `{"feature":"banner","feature_state_value":1.5}`, `{"feature_state_value":["Must be a string, an integer, a boolean or null."]}`},
			{"not an option", `{"feature":"colour","multivariate_feature_state_values":[{"multivariate_feature_option":555,"percentage_allocation":10}]}`,
				`{"multivariate_feature_state_values":["multivariate_feature_state_values[0].multivariate_feature_option: 555 is not an option of feature \"colour\"."]}`},
			{"over 100", `{"feature":"colour","multivariate_feature_state_values":[{"multivariate_feature_option":101,"percentage_allocation":60},{"multivariate_feature_option":102,"percentage_allocation":50}]}`,
				`{"multivariate_feature_state_values":["The total percentage allocation must not exceed 100."]}`},
			{"bad allocation", `{"feature":"colour","multivariate_feature_state_values":[{"multivariate_feature_option":101,"percentage_allocation":"x"}]}`,
				`{"multivariate_feature_state_values":["multivariate_feature_state_values[0].percentage_allocation: expected a number from 0 to 100."]}`},
			{"list body", `[]`, `{"detail":"Request data must be a JSON object."}`},
		} {
			t.Run(tc.name, func(t *testing.T) { want(t, call(t, f.h, "POST", base, tc.body), 400, tc.want) })
		}

		// The stored item carries Flagsmith's multivariate form.
		stored, err := s.Get(t.Context(), envA, "fs-user")
		if err != nil || len(stored.Overrides) != 3 {
			t.Fatalf("stored %+v, %v", stored, err)
		}
		if mv := string(stored.Overrides[2].MultivariateValues); !strings.Contains(mv, `"multivariate_feature_option":{"id":101,"value":"red"}`) {
			t.Fatalf("stored allocations %s", mv)
		}

		want(t, call(t, f.h, "GET", base, ""), 200, "["+overrideJSON(`"on for you"`, 1, `[]`, true, fs1, uuid)+","+
			overrideJSON(`7`, 3, `[]`, false, fs3, uuid)+","+
			overrideJSON(`"control"`, 2, `[{"multivariate_feature_option":101,"percentage_allocation":100}]`, true, fs2, uuid)+"]")
		want(t, call(t, f.h, "GET", base+"?feature=3", ""), 200, "["+overrideJSON(`7`, 3, `[]`, false, fs3, uuid)+"]")
		want(t, call(t, f.h, "GET", base+"?feature=x", ""), 400, `{"feature":["A valid integer is required."]}`)

		one := base + fs1 + "/"
		want(t, call(t, f.h, "GET", one, ""), 200, overrideJSON(`"on for you"`, 1, `[]`, true, fs1, uuid))
		// PUT without feature_state_value sets it to null.
		want(t, call(t, f.h, "PUT", one, `{"feature":1,"enabled":true}`), 200, overrideJSON(`null`, 1, `[]`, true, fs1, uuid))
		want(t, call(t, f.h, "PUT", one, `{"enabled":false,"feature_state_value":"v2"}`), 200, overrideJSON(`"v2"`, 1, `[]`, false, fs1, uuid))
		want(t, call(t, f.h, "PUT", one, `{"feature":"beta"}`), 400, `{"feature":["The feature of an existing feature state cannot be changed."]}`)
		want(t, call(t, f.h, "PATCH", one, `{}`), 405, "")
		want(t, call(t, f.h, "GET", one, ""), 200, overrideJSON(`"v2"`, 1, `[]`, false, fs1, uuid))
		r = call(t, f.h, "DELETE", one, "")
		if r.code != 204 {
			t.Fatalf("DELETE = %d %s", r.code, r.raw)
		}
		for _, m := range []string{"GET", "DELETE"} {
			want(t, call(t, f.h, m, one, ""), 404, `{"detail":"Not found."}`)
		}
		want(t, call(t, f.h, "PUT", one, `{"enabled":true}`), 404, `{"detail":"Not found."}`)
		if stored, _ := s.Get(t.Context(), envA, "fs-user"); len(stored.Overrides) != 2 {
			t.Fatalf("%d overrides after a delete", len(stored.Overrides))
		}
		// Another identity cannot be reached through this one's path.
		other := create(t, f.h, envA, "other", "")
		want(t, call(t, f.h, "GET", path(envA, "edge-identities", other, "edge-featurestates", fs3)+"/", ""), 404, "")
	})
}

func flagsByName(t *testing.T, r resp) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, it := range r.list(t) {
		m := it.(map[string]any)
		out[m["feature"].(map[string]any)["name"].(string)] = m
	}
	return out
}

func TestAllAndClone(t *testing.T) {
	forEachStore(t, func(t *testing.T, s identity.Store) {
		f := newFixture(t, s)
		uuid := create(t, f.h, envA, "all-user", "")
		want(t, call(t, f.h, "PUT", path(envA, "edge-identities", uuid, "update-traits/"), `{"trait_key":"plan","trait_value":"premium"}`), 200, "")
		want(t, call(t, f.h, "POST", path(envA, "edge-identities", uuid, "edge-featurestates/"), `{"feature":"banner","enabled":true,"feature_state_value":"mine"}`), 201, "")
		all := path(envA, "edge-identities", uuid, "edge-featurestates", "all/")
		r := call(t, f.h, "GET", all, "")
		want(t, r, 200, "")
		got := flagsByName(t, r)
		if len(got) != 3 {
			t.Fatalf("%d flags: %s", len(got), r.raw)
		}
		wantFlag := func(name, js string) {
			t.Helper()
			var exp map[string]any
			_ = json.Unmarshal([]byte(js), &exp)
			if mustJSON(got[name]) != mustJSON(exp) {
				t.Errorf("%s = %s\nwant %s", name, mustJSON(got[name]), mustJSON(exp))
			}
		}
		wantFlag("banner", `{"feature":{"id":1,"name":"banner","type":"STANDARD"},"enabled":true,"feature_state_value":"mine","overridden_by":"IDENTITY","segment":null,"multivariate_feature_state_values":[]}`)
		wantFlag("beta", `{"feature":{"id":3,"name":"beta","type":"STANDARD"},"enabled":true,"feature_state_value":"seg","overridden_by":"SEGMENT","segment":{"id":10,"name":"premium"},"multivariate_feature_state_values":[]}`)
		colour := got["colour"]
		if colour["overridden_by"] != nil || colour["segment"] != nil || colour["enabled"] != true ||
			mustJSON(colour["multivariate_feature_state_values"]) != `[{"multivariate_feature_option":101,"percentage_allocation":50.0},{"multivariate_feature_option":102,"percentage_allocation":50.0}]` &&
				mustJSON(colour["multivariate_feature_state_values"]) != `[{"multivariate_feature_option":101,"percentage_allocation":50},{"multivariate_feature_option":102,"percentage_allocation":50}]` {
			t.Errorf("colour = %s", mustJSON(colour))
		}
		// The variant is the engine's pick for the identity's hash key.
		var res engine.Result
		f.snapA.Program.Evaluate(&engine.Identity{Identifier: "all-user"}, &res)
		i, _ := f.snapA.Program.FeatureIndex("colour")
		if v := string(res.Flags[i].Value()); mustJSON(colour["feature_state_value"]) != v {
			t.Errorf("colour value %v; engine gives %s", colour["feature_state_value"], v)
		}

		// Clone onto a fresh identity: its all/ is the source's (same
		// overrides; no traits, so no segment).
		target := create(t, f.h, envA, "clone-target", "")
		want(t, call(t, f.h, "POST", path(envA, "edge-identities", target, "edge-featurestates/"), `{"feature":"beta","enabled":true}`), 201, "")
		clone := path(envA, "edge-identities", target, "edge-featurestates", "clone-from-given-identity/")
		r = call(t, f.h, "POST", clone, `{"source_identity_uuid":"`+uuid+`"}`)
		want(t, r, 200, "")
		cloned := flagsByName(t, r)
		if cloned["banner"]["overridden_by"] != "IDENTITY" || cloned["banner"]["feature_state_value"] != "mine" {
			t.Errorf("cloned banner = %v", cloned["banner"])
		}
		if cloned["beta"]["overridden_by"] != nil || cloned["beta"]["enabled"] != false {
			t.Errorf("cloning kept the target's own override: beta = %v", cloned["beta"])
		}
		src, _ := s.Get(t.Context(), envA, "all-user")
		dst, _ := s.Get(t.Context(), envA, "clone-target")
		if len(dst.Overrides) != 1 || dst.Overrides[0].FeatureStateUUID == src.Overrides[0].FeatureStateUUID || string(dst.Overrides[0].Value) != `"mine"` {
			t.Fatalf("cloned overrides %+v (source %+v)", dst.Overrides, src.Overrides)
		}
		want(t, call(t, f.h, "GET", path(envA, "edge-identities", target, "edge-featurestates", "all"), ""), 200, r.raw)

		bUUID := create(t, f.h, envB, "in-b", "")
		want(t, call(t, f.h, "POST", clone, `{"source_identity_uuid":"`+bUUID+`"}`), 403, `{"detail":"Source identity does not belong to this environment."}`)
		want(t, call(t, f.h, "POST", clone, `{"source_identity_uuid":"missing"}`), 400, `{"source_identity_uuid":["No identity with this identity_uuid."]}`)
		want(t, call(t, f.h, "POST", clone, `{}`), 400, `{"source_identity_uuid":["This field is required."]}`)
		want(t, call(t, f.h, "GET", clone, ""), 405, "")
	})
}

func TestCrossEnvironmentIsolation(t *testing.T) {
	forEachStore(t, func(t *testing.T, s identity.Store) {
		f := newFixture(t, s)
		a := create(t, f.h, envA, "shared-name", "alias")
		r := call(t, f.h, "POST", path(envA, "edge-identities", a, "edge-featurestates/"), `{"feature":"banner","enabled":true}`)
		fsUUID := r.object(t)["featurestate_uuid"].(string)
		b := create(t, f.h, envB, "shared-name", "alias") // same identifier, other environment
		if a == b {
			t.Fatal("identities of two environments share a UUID")
		}
		viaB := func(parts ...string) string {
			return path(envB, append([]string{"edge-identities", a}, parts...)...) + "/"
		}
		for _, tc := range []struct{ method, path, body string }{
			{"GET", viaB(), ""},
			{"PUT", viaB(), `{"dashboard_alias":"stolen"}`},
			{"PATCH", viaB(), `{"dashboard_alias":"stolen"}`},
			{"DELETE", viaB(), ""},
			{"GET", viaB("list-traits"), ""},
			{"PUT", viaB("update-traits"), `{"trait_key":"x","trait_value":1}`},
			{"GET", viaB("edge-featurestates"), ""},
			{"POST", viaB("edge-featurestates"), `{"feature":"beta"}`},
			{"GET", viaB("edge-featurestates", fsUUID), ""},
			{"PUT", viaB("edge-featurestates", fsUUID), `{"enabled":false}`},
			{"DELETE", viaB("edge-featurestates", fsUUID), ""},
			{"GET", viaB("edge-featurestates", "all"), ""},
			{"POST", viaB("edge-featurestates", "clone-from-given-identity"), `{"source_identity_uuid":"` + b + `"}`},
		} {
			t.Run(tc.method+" "+strings.TrimPrefix(tc.path, path(envB)), func(t *testing.T) {
				want(t, call(t, f.h, tc.method, tc.path, tc.body), 404, `{"detail":"Not found."}`)
			})
		}
		stored, err := s.Get(t.Context(), envA, "shared-name")
		if err != nil || stored.DashboardAlias != "alias" || len(stored.Traits) != 0 || len(stored.Overrides) != 1 || !stored.Overrides[0].Enabled {
			t.Fatalf("envA's identity changed through envB's path: %+v, %v", stored, err)
		}
		ids, _ := listAll(t, f, envB, map[string][]string{})
		if len(ids) != 1 {
			t.Fatalf("envB lists %q", ids)
		}
		want(t, call(t, f.h, "GET", path(envB, "edge-identity-overrides"), ""), 200, `{"results":[]}`)
	})
}

func TestEdgeIdentityOverrides(t *testing.T) {
	forEachStore(t, func(t *testing.T, s identity.Store) {
		f := newFixture(t, s)
		u1 := create(t, f.h, envA, "u1", "")
		u2 := create(t, f.h, envA, "u2", "")
		fs := map[string]string{}
		for _, p := range []struct{ uuid, body string }{
			{u1, `{"feature":1,"enabled":true,"feature_state_value":"a"}`},
			{u2, `{"feature":1,"enabled":false}`},
			{u2, `{"feature":3,"enabled":true,"feature_state_value":true}`},
		} {
			r := call(t, f.h, "POST", path(envA, "edge-identities", p.uuid, "edge-featurestates/"), p.body)
			want(t, r, 201, "")
			m := r.object(t)
			fs[p.uuid+mustJSON(m["feature"])] = m["featurestate_uuid"].(string)
		}
		item := func(identifier, uuid, value string, feature int, enabled bool) string {
			return `{"identifier":"` + identifier + `","identity_uuid":"` + uuid + `","feature_state":{"feature_state_value":` + value +
				`,"feature":` + mustJSON(feature) + `,"multivariate_feature_state_values":[],"enabled":` + mustJSON(enabled) +
				`,"featurestate_uuid":"` + fs[uuid+mustJSON(feature)] + `"}}`
		}
		feature1 := []string{item("u1", u1, `"a"`, 1, true), item("u2", u2, `null`, 1, false)}
		if u2 < u1 {
			feature1[0], feature1[1] = feature1[1], feature1[0] // ordered by document_key
		}
		for _, p := range []string{"edge-identity-overrides", "edge-identity-overrides/"} {
			want(t, call(t, f.h, "GET", path(envA, p)+"?feature=1&page=2", ""), 200, `{"results":[`+strings.Join(feature1, ",")+`]}`)
		}
		want(t, call(t, f.h, "GET", path(envA, "edge-identity-overrides")+"?feature=3", ""), 200, `{"results":[`+item("u2", u2, `true`, 3, true)+`]}`)
		r := call(t, f.h, "GET", path(envA, "edge-identity-overrides"), "")
		if n := len(r.object(t)["results"].([]any)); n != 3 {
			t.Fatalf("%d results without a feature filter", n)
		}
		want(t, call(t, f.h, "GET", path(envA, "edge-identity-overrides")+"?feature=abc", ""), 400, `{"feature":["A valid integer is required."]}`)
	})
}

func TestByIdentifier(t *testing.T) {
	forEachStore(t, func(t *testing.T, s identity.Store) {
		f := newFixture(t, s)
		p := "/api/v1/environments/environments/" + envA + "/edge-identities-featurestates"
		r := call(t, f.h, "PUT", p, `{"identifier":"new-person","feature":"banner","enabled":true,"feature_state_value":"x"}`)
		want(t, r, 200, "")
		created, err := s.Get(t.Context(), envA, "new-person")
		if err != nil || len(created.Overrides) != 1 {
			t.Fatalf("PUT did not create the identity: %+v, %v", created, err)
		}
		fsUUID := created.Overrides[0].FeatureStateUUID
		want(t, r, 200, overrideJSON(`"x"`, 1, `[]`, true, fsUUID, created.UUID))
		// An upsert keeps the featurestate_uuid.
		want(t, call(t, f.h, "PUT", p+"/", `{"identifier":"new-person","feature":1,"enabled":false,"feature_state_value":"y"}`), 200,
			overrideJSON(`"y"`, 1, `[]`, false, fsUUID, created.UUID))
		want(t, call(t, f.h, "PUT", p, `{"identifier":"new-person","feature":3}`), 200, "")
		if got, _ := s.Get(t.Context(), envA, "new-person"); len(got.Overrides) != 2 || got.UUID != created.UUID {
			t.Fatalf("after upserts: %+v", got)
		}
		for _, tc := range []struct{ body, want string }{
			{`{"feature":1}`, `{"identifier":["This field is required."]}`},
			{`{"identifier":"x"}`, `{"feature":["This field is required."]}`},
			{`{"identifier":"x","feature":"nope"}`, `{"feature":["Feature \"nope\" does not exist in this environment."]}`},
			{`{"identifier":"","feature":1}`, `{"identifier":["This field may not be blank."]}`},
		} {
			want(t, call(t, f.h, "PUT", p, tc.body), 400, tc.want)
		}
		if _, err := s.Get(t.Context(), envA, "x"); err == nil {
			t.Fatal("a rejected PUT created an identity")
		}

		del := func(body string) {
			t.Helper()
			r := call(t, f.h, "DELETE", p, body)
			if r.code != 204 {
				t.Fatalf("DELETE %s = %d %s", body, r.code, r.raw)
			}
		}
		del(`{"identifier":"new-person","feature":"banner"}`)
		del(`{"identifier":"new-person","feature":"banner"}`) // already gone
		del(`{"identifier":"nobody","feature":1}`)            // no such identity
		del(`{"identifier":"new-person","feature":"not-a-feature"}`)
		if got, _ := s.Get(t.Context(), envA, "new-person"); len(got.Overrides) != 1 || got.Overrides[0].Feature.ID != 3 {
			t.Fatalf("after deletes: %+v", got.Overrides)
		}
		if _, err := s.Get(t.Context(), envA, "nobody"); err == nil {
			t.Fatal("DELETE created an identity")
		}
		del(`{"identifier":"new-person","feature":3}`)
		if got, _ := s.Get(t.Context(), envA, "new-person"); len(got.Overrides) != 0 {
			t.Fatalf("override by id not deleted: %+v", got.Overrides)
		}
		want(t, call(t, f.h, "DELETE", p, `{"identifier":"new-person"}`), 400, `{"feature":["This field is required."]}`)
		want(t, call(t, f.h, "GET", p, ""), 405, "")
		want(t, call(t, f.h, "PUT", "/api/v1/environments/environments/nope/edge-identities-featurestates", `{}`), 404, "")
	})
}

func TestStoreFailures(t *testing.T) {
	s := memstore.New()
	f := newFixture(t, s)
	uuid := create(t, f.h, envA, "u", "")
	s.SetFailure(errors.New("disk on fire"))
	for _, tc := range []struct{ method, path, body string }{
		{"GET", path(envA, "edge-identities/"), ""},
		{"POST", path(envA, "edge-identities/"), `{"identifier":"v"}`},
		{"GET", path(envA, "edge-identities", uuid), ""},
		{"PUT", path(envA, "edge-identities", uuid, "update-traits"), `{"trait_key":"a","trait_value":1}`},
		{"POST", path(envA, "edge-identities", uuid, "edge-featurestates"), `{"feature":1}`},
		{"GET", path(envA, "edge-identities", uuid, "edge-featurestates", "all"), ""},
		{"GET", path(envA, "edge-identity-overrides"), ""},
		{"PUT", "/api/v1/environments/environments/" + envA + "/edge-identities-featurestates", `{"identifier":"v","feature":1}`},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			want(t, call(t, f.h, tc.method, tc.path, tc.body), 503, `{"detail":"The identity store is unavailable; try again."}`)
		})
	}
	if _, _, err := f.docs.Document(t.Context(), f.snapA); !errors.Is(err, identity.ErrUnavailable) {
		t.Fatalf("Document with a failing store = %v", err)
	}
}

// TestOverrideAppliesToSDK: an override made through the admin API decides
// the next SDK evaluation of the identity, through the api role's server
// (identify stage edge.Identifier, admin API as its extra routes).
func TestOverrideAppliesToSDK(t *testing.T) {
	forEachStore(t, func(t *testing.T, s identity.Store) {
		f := newFixture(t, s)
		srv := server.New(server.Options{Registry: f.reg, Edge: true, Identifier: &edge.Identifier{Store: s}, Routes: f.h})
		identify := func(identifier string) map[string]any {
			t.Helper()
			req := httptest.NewRequestWithContext(t.Context(), "POST", "/api/v1/identities/", strings.NewReader(`{"identifier":"`+identifier+`","traits":[{"trait_key":"plan","trait_value":"basic"}]}`))
			req.Header.Set("X-Environment-Key", envA)
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("identify = %d %s", rec.Code, rec.Body)
			}
			var body struct {
				Flags []struct {
					Feature struct{ Name string } `json:"feature"`
					Enabled bool                  `json:"enabled"`
					Value   any                   `json:"feature_state_value"`
				} `json:"flags"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			for _, fl := range body.Flags {
				if fl.Feature.Name == "banner" {
					return map[string]any{"enabled": fl.Enabled, "value": fl.Value}
				}
			}
			t.Fatalf("no banner flag: %s", rec.Body)
			return nil
		}
		if got := identify("sdk-user"); got["enabled"] != false || got["value"] != "default" {
			t.Fatalf("before the override: %v", got)
		}
		// The SDK call created the identity; the admin API finds it.
		ids, _ := listPage(t, f, envA, map[string][]string{"q": {`"sdk-user"`}})
		if len(ids) != 1 {
			t.Fatalf("the SDK-created identity is not listed: %q", ids)
		}
		r := call(t, srv, "PUT", "/api/v1/environments/environments/"+envA+"/edge-identities-featurestates",
			`{"identifier":"sdk-user","feature":"banner","enabled":true,"feature_state_value":"just for you"}`)
		want(t, r, 200, "")
		if got := identify("sdk-user"); got["enabled"] != true || got["value"] != "just for you" {
			t.Fatalf("after the override: %v", got)
		}
		if got := identify("someone-else"); got["value"] != "default" {
			t.Fatalf("the override leaked to another identity: %v", got)
		}
		// The SDK's trait survived the admin write, and the admin's override the SDK write.
		stored, _ := s.Get(t.Context(), envA, "sdk-user")
		if v, ok := stored.Trait("plan"); !ok || v.Str != "basic" || len(stored.Overrides) != 1 {
			t.Fatalf("stored %+v", stored)
		}

		// The same through the identify stage directly.
		var out sdk.Identified
		req := &sdk.IdentityRequest{Identity: engine.Identity{Identifier: "sdk-user"}, Get: true}
		if err := (&edge.Identifier{Store: s}).Identify(t.Context(), f.snapA, environment.ServerKey, req, &out); err != nil {
			t.Fatal(err)
		}
		body := string(sdk.AppendIdentified(nil, f.snapA, environment.ServerKey, &out))
		if !strings.Contains(body, `"feature":{"id":1,"name":"banner","type":"STANDARD"},"enabled":true,"feature_state_value":"just for you"`) {
			t.Fatalf("identified flags %s", body)
		}
	})
}

// TestConcurrentWrites: admin override writes and SDK trait writes to one
// identity at the same time lose nothing.
func TestConcurrentWrites(t *testing.T) {
	forEachStore(t, func(t *testing.T, s identity.Store) {
		f := newFixture(t, s)
		uuid := create(t, f.h, envA, "busy", "")
		ident := &edge.Identifier{Store: s}
		var wg sync.WaitGroup
		const n = 20
		errs := make(chan string, 4*n)
		for i := range n {
			wg.Go(func() {
				body := `{"identifier":"busy","traits":[{"trait_key":"t` + mustJSON(i) + `","trait_value":` + mustJSON(i) + `}]}`
				req, err := sdk.DecodeEdgeIdentityRequest([]byte(body))
				if err != nil {
					errs <- err.Error()
					return
				}
				var out sdk.Identified
				if err := ident.Identify(t.Context(), f.snapA, environment.ClientKey, req, &out); err != nil {
					errs <- err.Error()
				}
			})
			wg.Go(func() {
				body := `{"trait_key":"admin` + mustJSON(i) + `","trait_value":"x"}`
				if r := call(t, f.h, "PUT", path(envA, "edge-identities", uuid, "update-traits/"), body); r.code != 200 {
					errs <- r.raw
				}
			})
		}
		for _, feature := range []string{"banner", "colour", "beta"} {
			wg.Go(func() {
				if r := call(t, f.h, "POST", path(envA, "edge-identities", uuid, "edge-featurestates/"), `{"feature":"`+feature+`"}`); r.code != 201 {
					errs <- r.raw
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		stored, err := s.Get(t.Context(), envA, "busy")
		if err != nil {
			t.Fatal(err)
		}
		if len(stored.Traits) != 2*n || len(stored.Overrides) != 3 {
			t.Fatalf("%d traits (want %d) and %d overrides (want 3): a write was lost", len(stored.Traits), 2*n, len(stored.Overrides))
		}
	})
}

var _ http.Handler = (*server.Handler)(nil)
