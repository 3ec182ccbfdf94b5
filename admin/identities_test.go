package admin_test

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fledge-flags/fledge/admin"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/memstore"
)

func TestAuth(t *testing.T) {
	f := newFixture(t, memstore.New())
	list := path(envA, "edge-identities/")
	tests := []struct {
		name string
		auth string
		code int
		body string
	}{
		{"Token", "Token " + token, 200, ""},
		{"second token", "Token " + token2, 200, ""},
		{"Api-Key", "Api-Key " + token, 200, ""},
		{"scheme in other case", "token " + token, 200, ""},
		{"missing", "-", 401, `{"detail":"Authentication credentials were not provided."}`},
		{"Bearer", "Bearer " + token, 401, `{"detail":"Authentication credentials were not provided."}`},
		{"wrong token", "Token wrong-token-0123456789", 401, `{"detail":"Invalid token."}`},
		{"token prefix", "Token " + token[:len(token)-1], 401, `{"detail":"Invalid token."}`},
		{"token extended", "Token " + token + "x", 401, `{"detail":"Invalid token."}`},
		{"empty token", "Token ", 401, `{"detail":"Authentication credentials were not provided."}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, f.h, "GET", list, "", tc.auth)
			want(t, r, tc.code, tc.body)
			if tc.code == 401 && r.hdr.Get("WWW-Authenticate") != "Token" {
				t.Errorf("401 without WWW-Authenticate: Token")
			}
		})
	}
	t.Run("no tokens configured: off", func(t *testing.T) {
		for _, tokens := range [][]string{nil, {}, {""}} {
			h := admin.New(admin.Options{Registry: f.reg, Store: f.store, Tokens: tokens})
			want(t, call(t, h, "GET", list, ""), 404, `{"detail":"Not found."}`)
			want(t, call(t, h, "GET", list, "", "-"), 404, `{"detail":"Not found."}`)
		}
	})
}

func TestRouting(t *testing.T) {
	f := newFixture(t, memstore.New())
	tests := []struct {
		name, method, path string
		code               int
		body               string
	}{
		{"unknown environment", "GET", path("nope", "edge-identities/"), 404, `{"detail":"Environment not found."}`},
		{"server key is not a path key", "GET", path("ser.A", "edge-identities/"), 404, `{"detail":"Environment not found."}`},
		{"environment without a document", "GET", path(envNoDoc, "edge-identities/"), 503, ""},
		{"unknown endpoint", "GET", path(envA, "edge-identities/x/nope/"), 404, `{"detail":"Not found."}`},
		{"outside the prefix", "GET", "/api/v1/other/", 404, `{"detail":"Not found."}`},
		{"double slash", "GET", "/api/v1/environments/" + envA + "//edge-identities/", 404, ""},
		{"method not allowed", "DELETE", path(envA, "edge-identities/"), 405, `{"detail":"Method \"DELETE\" not allowed."}`},
		{"no slash", "GET", path(envA, "edge-identities"), 200, ""},
		{"HEAD", "HEAD", path(envA, "edge-identities/"), 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, f.h, tc.method, tc.path, "")
			want(t, r, tc.code, tc.body)
			if tc.code == 405 && r.hdr.Get("Allow") != "GET, POST" {
				t.Errorf("Allow = %q", r.hdr.Get("Allow"))
			}
		})
	}
	// Unknown paths answer 404 before authentication, as DRF resolves URLs first.
	want(t, call(t, f.h, "GET", "/api/v1/other/", "", "-"), 404, "")
	want(t, call(t, f.h, "GET", path("nope", "edge-identities/"), "", "-"), 401, "")
}

func TestIdentityCRUD(t *testing.T) {
	forEachStore(t, func(t *testing.T, s identity.Store) {
		f := newFixture(t, s)
		list := path(envA, "edge-identities/")
		r := call(t, f.h, "POST", list, `{"identifier":"Alice","dashboard_alias":"QA Account"}`)
		want(t, r, 201, "")
		uuid := r.object(t)["identity_uuid"].(string)
		want(t, r, 201, `{"identity_uuid":"`+uuid+`","identifier":"Alice","dashboard_alias":"qa account"}`)
		if stored, err := s.Get(t.Context(), envA, "Alice"); err != nil || stored.UUID != uuid || stored.DashboardAlias != "qa account" {
			t.Fatalf("stored %+v, %v", stored, err)
		}

		// Creation errors.
		cjk := strings.Repeat("名", 342) // 342 characters, 1026 bytes
		for _, tc := range []struct{ name, body, want string }{
			{"duplicate", `{"identifier":"Alice"}`, `["Identity with identifier: Alice already exists"]`},
			{"missing identifier", `{}`, `{"identifier":["This field is required."]}`},
			{"empty body", ``, `{"identifier":["This field is required."]}`},
			{"null identifier", `{"identifier":null}`, `{"identifier":["This field may not be null."]}`},
			{"blank identifier", `{"identifier":"  "}`, `{"identifier":["This field may not be blank."]}`},
			{"number identifier", `{"identifier":5}`, `{"identifier":["Not a valid string."]}`},
			{"2001 characters", `{"identifier":"` + strings.Repeat("a", 2001) + `"}`, `{"identifier":["Ensure this field has no more than 2000 characters."]}`},
			{"1026 bytes", `{"identifier":"` + cjk + `"}`, `{"identifier":["Ensure this field has no more than 1024 bytes in UTF-8."]}`},
			{"alias too long", `{"identifier":"x","dashboard_alias":"` + strings.Repeat("a", 101) + `"}`, `{"dashboard_alias":["Ensure this field has no more than 100 characters."]}`},
			{"alias not a string", `{"identifier":"x","dashboard_alias":1}`, `{"dashboard_alias":["Not a valid string."]}`},
			{"list body", `["x"]`, `{"detail":"Request data must be a JSON object."}`},
		} {
			t.Run(tc.name, func(t *testing.T) { want(t, call(t, f.h, "POST", list, tc.body), 400, tc.want) })
		}
		if r := call(t, f.h, "POST", list, `{"identifier":`); r.code != 400 || !strings.Contains(r.raw, "JSON parse error") {
			t.Fatalf("invalid JSON: %d %s", r.code, r.raw)
		}
		if page, _ := s.List(t.Context(), envA, identity.ListQuery{Limit: 100}); len(page.Identities) != 1 {
			t.Fatalf("failed creates stored identities: %d listed", len(page.Identities))
		}

		one := path(envA, "edge-identities", uuid) + "/"
		want(t, call(t, f.h, "GET", one, ""), 200, `{"identity_uuid":"`+uuid+`","identifier":"Alice","dashboard_alias":"qa account"}`)
		want(t, call(t, f.h, "GET", strings.TrimSuffix(one, "/"), ""), 200, "")
		want(t, call(t, f.h, "PUT", one, `{"dashboard_alias":"New Name","identifier":"ignored"}`), 200,
			`{"identity_uuid":"`+uuid+`","identifier":"Alice","dashboard_alias":"new name"}`)
		// An empty or missing alias keeps the old one.
		for _, body := range []string{`{"dashboard_alias":""}`, `{}`, `{"dashboard_alias":null}`} {
			want(t, call(t, f.h, "PATCH", one, body), 200, `{"identity_uuid":"`+uuid+`","identifier":"Alice","dashboard_alias":"new name"}`)
		}
		want(t, call(t, f.h, "PATCH", one, `{"dashboard_alias":"Patched"}`), 200, `{"identity_uuid":"`+uuid+`","identifier":"Alice","dashboard_alias":"patched"}`)
		want(t, call(t, f.h, "PUT", one, `{"dashboard_alias":`+mustJSON(strings.Repeat("x", 101))+`}`), 400, `{"dashboard_alias":["Ensure this field has no more than 100 characters."]}`)

		// An identity without an alias serves null.
		bob := create(t, f.h, envA, "bob", "")
		want(t, call(t, f.h, "GET", path(envA, "edge-identities", bob), ""), 200, `{"identity_uuid":"`+bob+`","identifier":"bob","dashboard_alias":null}`)

		r = call(t, f.h, "DELETE", one, "")
		if r.code != 204 || r.raw != "" {
			t.Fatalf("DELETE = %d %q", r.code, r.raw)
		}
		want(t, call(t, f.h, "GET", one, ""), 404, `{"detail":"Not found."}`)
		want(t, call(t, f.h, "DELETE", one, ""), 404, `{"detail":"Not found."}`)
		want(t, call(t, f.h, "PUT", one, `{"dashboard_alias":"x"}`), 404, `{"detail":"Not found."}`)
		want(t, call(t, f.h, "GET", path(envA, "edge-identities", "not-a-uuid"), ""), 404, `{"detail":"Not found."}`)
		if _, err := s.Get(t.Context(), envA, "Alice"); err == nil {
			t.Fatal("deleted identity still stored")
		}
	})
}

// listPage fetches one page and returns its identifiers and next key.
func listPage(t *testing.T, f *fixture, env string, query url.Values) ([]string, string) {
	t.Helper()
	r := call(t, f.h, "GET", path(env, "edge-identities/")+"?"+query.Encode(), "")
	want(t, r, 200, "")
	body := r.object(t)
	var ids []string
	for _, it := range body["results"].([]any) {
		m := it.(map[string]any)
		ids = append(ids, m["identifier"].(string))
		if _, ok := m["identity_uuid"].(string); !ok {
			t.Fatalf("result without identity_uuid: %v", m)
		}
	}
	next, _ := body["last_evaluated_key"].(string)
	if _, present := body["last_evaluated_key"]; !present {
		t.Fatal("last_evaluated_key missing (want null on the last page)")
	}
	return ids, next
}

func listAll(t *testing.T, f *fixture, env string, query url.Values) ([]string, int) {
	t.Helper()
	var all []string
	pages := 0
	for {
		ids, next := listPage(t, f, env, query)
		all = append(all, ids...)
		pages++
		if next == "" {
			return all, pages
		}
		if pages > 100 {
			t.Fatal("the cursor does not advance")
		}
		query.Set("last_evaluated_key", next)
	}
}

func TestListPagination(t *testing.T) {
	forEachStore(t, func(t *testing.T, s identity.Store) {
		f := newFixture(t, s)
		var all []string
		for i := range 23 {
			id := fmt.Sprintf("user-%02d", i)
			create(t, f.h, envA, id, "")
			all = append(all, id)
		}
		create(t, f.h, envB, "user-in-b", "")
		for _, size := range []int{1, 5, 7, 22, 23, 100} {
			t.Run(fmt.Sprint(size), func(t *testing.T) {
				got, pages := listAll(t, f, envA, url.Values{"page_size": {fmt.Sprint(size)}, "q": {""}})
				if !slices.Equal(got, all) {
					t.Fatalf("pages joined = %q\nwant %q", got, all)
				}
				if min := (len(all) + size - 1) / size; pages < min {
					t.Fatalf("%d pages for page_size %d", pages, size)
				}
			})
		}
		// The last_evaluated_key is standard base64 of the cursor's JSON.
		_, next := listPage(t, f, envA, url.Values{"page_size": {"2"}})
		raw, err := base64.StdEncoding.DecodeString(next)
		if err != nil || !strings.Contains(string(raw), `"environment_api_key":"`+envA+`"`) || !strings.Contains(string(raw), `"composite_key":"`+envA+`_user-01"`) {
			t.Fatalf("last_evaluated_key %q decodes to %q, %v", next, raw, err)
		}
		// An unencoded "+" arrives as a space and still works; missing padding too.
		rest, _ := listPage(t, f, envA, url.Values{"page_size": {"100"}, "last_evaluated_key": {strings.ReplaceAll(next, "+", " ")}})
		if !slices.Equal(rest, all[2:]) {
			t.Fatalf("continuing = %q", rest)
		}
		rest, _ = listPage(t, f, envA, url.Values{"last_evaluated_key": {strings.TrimRight(next, "=")}})
		if !slices.Equal(rest, all[2:]) {
			t.Fatalf("continuing without padding = %q", rest)
		}
		// page_size rules: ≤0 and >100 mean 100; empty means the default.
		for _, size := range []string{"0", "-3", "1000", ""} {
			ids, next := listPage(t, f, envA, url.Values{"page_size": {size}})
			if len(ids) != len(all) || next != "" {
				t.Fatalf("page_size=%q: %d results, next %q", size, len(ids), next)
			}
		}
		// An empty last_evaluated_key is absent.
		if ids, _ := listPage(t, f, envA, url.Values{"last_evaluated_key": {""}}); len(ids) != len(all) {
			t.Fatalf("empty last_evaluated_key: %d results", len(ids))
		}
		otherCursor := base64.StdEncoding.EncodeToString([]byte(`{"composite_key":"` + envB + `_user-in-b","environment_api_key":"` + envB + `","identifier":"user-in-b"}`))
		mismatched := base64.StdEncoding.EncodeToString([]byte(`{"composite_key":"` + envA + `_x","environment_api_key":"` + envA + `","identifier":"y"}`))
		for _, tc := range []struct{ query, body string }{
			{"page_size=abc", `{"page_size":["A valid integer is required."]}`},
			{"page_size=1.5", `{"page_size":["A valid integer is required."]}`},
			{"last_evaluated_key=%25%25%25", ""},
			{"last_evaluated_key=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte("not json"))), ""},
			{"last_evaluated_key=" + url.QueryEscape(otherCursor), ""},
			{"last_evaluated_key=" + url.QueryEscape(mismatched), ""},
		} {
			r := call(t, f.h, "GET", path(envA, "edge-identities/")+"?"+tc.query, "")
			want(t, r, 400, tc.body)
			if _, ok := r.object(t)[strings.SplitN(tc.query, "=", 2)[0]]; !ok {
				t.Fatalf("%s: error %s does not name the parameter", tc.query, r.raw)
			}
		}
	})
}

func TestListLimitIs100(t *testing.T) {
	f := newFixture(t, memstore.New())
	for i := range 105 {
		if _, err := f.store.Update(t.Context(), identity.Env{APIKey: envA, ID: "1"}, fmt.Sprintf("u%03d", i), func(*identity.Identity) (*identity.Identity, error) {
			return &identity.Identity{EnvironmentAPIKey: envA, Identifier: fmt.Sprintf("u%03d", i)}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, size := range []string{"", "0", "101", "5000"} {
		ids, next := listPage(t, f, envA, url.Values{"page_size": {size}})
		if len(ids) != 100 || next == "" {
			t.Fatalf("page_size=%q: %d results, next %q; want 100 and a next key", size, len(ids), next)
		}
	}
	got, _ := listAll(t, f, envA, url.Values{"page_size": {"100"}})
	if len(got) != 105 {
		t.Fatalf("%d identities over all pages", len(got))
	}
}

func TestListSearch(t *testing.T) {
	forEachStore(t, func(t *testing.T, s identity.Store) {
		f := newFixture(t, s)
		for _, d := range []struct{ identifier, alias string }{
			{"alice", "QA Account"}, {"Alice", "qa"}, {"al", ""}, {"alfred", "qa account"}, {"bob", "dev"}, {`"quoted"`, ""},
		} {
			create(t, f.h, envA, d.identifier, d.alias)
		}
		create(t, f.h, envB, "alice-b", "qa")
		tests := []struct {
			q    string
			want []string
		}{
			{"", []string{`"quoted"`, "Alice", "al", "alfred", "alice", "bob"}},
			{"al", []string{"al", "alfred", "alice"}},
			{"Al", []string{"Alice"}}, // case-sensitive on identifiers
			{`"al"`, []string{"al"}},
			{`"ali"`, nil},
			{`""quoted""`, []string{`"quoted"`}},
			{`"`, []string{`"quoted"`}}, // a lone quote is a prefix search for it
			{`""`, nil},
			{"dashboard_alias:qa", []string{"Alice", "alfred", "alice"}},
			{"dashboard_alias:QA", []string{"Alice", "alfred", "alice"}}, // the term is lower-cased
			{`dashboard_alias:"QA"`, []string{"Alice"}},
			{`dashboard_alias:"qa account"`, []string{"alfred", "alice"}},
			{"dashboard_alias:", []string{"bob", "Alice", "alfred", "alice"}},
			{"dashboard_alias:zzz", nil},
			{"nobody", nil},
		}
		for _, tc := range tests {
			t.Run(tc.q, func(t *testing.T) {
				for _, size := range []string{"1", "100"} {
					got, _ := listAll(t, f, envA, url.Values{"q": {tc.q}, "page_size": {size}})
					if !slices.Equal(got, tc.want) {
						t.Fatalf("page_size %s: q=%q → %q, want %q", size, tc.q, got, tc.want)
					}
				}
			})
		}
	})
}

func TestTraits(t *testing.T) {
	forEachStore(t, func(t *testing.T, s identity.Store) {
		f := newFixture(t, s)
		uuid := create(t, f.h, envA, "trait-user", "")
		traits := path(envA, "edge-identities", uuid, "list-traits/")
		update := path(envA, "edge-identities", uuid, "update-traits/")
		want(t, call(t, f.h, "GET", traits, ""), 200, `[]`)
		for _, tc := range []struct{ body, echo string }{
			{`{"trait_key":"age","trait_value":"42"}`, `{"trait_key":"age","trait_value":42}`},
			{`{"trait_key":"ratio","trait_value":"1.50"}`, `{"trait_key":"ratio","trait_value":1.5}`},
			{`{"trait_key":"zip","trait_value":"007"}`, `{"trait_key":"zip","trait_value":7}`},
			{`{"trait_key":"plan","trait_value":"premium"}`, `{"trait_key":"plan","trait_value":"premium"}`},
			{`{"trait_key":"flag","trait_value":true}`, `{"trait_key":"flag","trait_value":true}`},
			{`{"trait_key":"plan","trait_value":"premium"}`, `{"trait_key":"plan","trait_value":"premium"}`}, // unchanged
			{`{"trait_key":"gone","trait_value":"x"}`, `{"trait_key":"gone","trait_value":"x"}`},
			{`{"trait_key":"gone","trait_value":null}`, `{"trait_key":"gone","trait_value":null}`},
			{`{"trait_key":"never","trait_value":null}`, `{"trait_key":"never","trait_value":null}`},
		} {
			want(t, call(t, f.h, "PUT", update, tc.body), 200, tc.echo)
		}
		r := call(t, f.h, "GET", traits, "")
		want(t, r, 200, `[{"trait_key":"age","trait_value":42},{"trait_key":"ratio","trait_value":1.5},{"trait_key":"zip","trait_value":7},{"trait_key":"plan","trait_value":"premium"},{"trait_key":"flag","trait_value":true}]`)

		for _, tc := range []struct{ name, body, want string }{
			{"list", `[1]`, `{"detail":"Request data must be a JSON object."}`},
			{"string", `"x"`, `{"detail":"Request data must be a JSON object."}`},
			{"no key", `{"trait_value":1}`, `{"trait_key":["This field is required."]}`},
			{"blank key", `{"trait_key":"","trait_value":1}`, `{"trait_key":["This field may not be blank."]}`},
			{"long key", `{"trait_key":"` + strings.Repeat("k", 201) + `","trait_value":1}`, `{"trait_key":["Ensure this field has no more than 200 characters."]}`},
			{"no value", `{"trait_key":"a"}`, `{"trait_value":["This field is required."]}`},
			{"object value", `{"trait_key":"a","trait_value":{"x":1}}`, `{"trait_value":["Must be a string, a number, a boolean or null."]}`},
			{"long value", `{"trait_key":"a","trait_value":"` + strings.Repeat("v", 2001) + `"}`, `{"trait_value":["Ensure this field has no more than 2000 characters."]}`},
		} {
			t.Run(tc.name, func(t *testing.T) { want(t, call(t, f.h, "PUT", update, tc.body), 400, tc.want) })
		}
		want(t, call(t, f.h, "POST", update, `{"trait_key":"a","trait_value":1}`), 405, "")
		want(t, call(t, f.h, "GET", path(envA, "edge-identities", "missing", "list-traits/"), ""), 404, `{"detail":"Not found."}`)
		want(t, call(t, f.h, "PUT", path(envA, "edge-identities", "missing", "update-traits/"), `{"trait_key":"a","trait_value":1}`), 404, `{"detail":"Not found."}`)

		// persist_trait_data=false.
		b := create(t, f.h, envB, "b-user", "")
		want(t, call(t, f.h, "PUT", path(envB, "edge-identities", b, "update-traits/"), `{"trait_key":"a","trait_value":1}`), 400, `{"detail":"A server error occurred."}`)
		want(t, call(t, f.h, "GET", path(envB, "edge-identities", b, "list-traits/"), ""), 200, `[]`)
	})
}
