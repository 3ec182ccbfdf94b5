package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const adminToken = "e2e-admin-token-0123456789"

func (p *proxy) admin(t *testing.T, method, path, token string, body []byte) response {
	t.Helper()
	req := p.request(t, method, path, "", body)
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	return p.do(t, req)
}

// TestAPIAdminOverride: an identity override made through the admin API
// applies to the next SDK request for that identity, and appears in the
// environment document for local-evaluation SDKs (the example environment
// uses identity overrides in local evaluation).
func TestAPIAdminOverride(t *testing.T) {
	cfg := apiConfig(t, t.TempDir(), "")
	cfg["admin"] = map[string]any{"tokens": []string{adminToken}}
	p := startAPI(t, cfg)
	base := "/api/v1/environments/" + exampleClientKey + "/"

	if r := p.admin(t, http.MethodGet, base+"edge-identities/", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", r.status, r.body)
	}
	if r := p.admin(t, http.MethodGet, base+"edge-identities/", "wrong-token-0123456789", nil); r.status != http.StatusUnauthorized {
		t.Errorf("wrong token: %d %s", r.status, r.body)
	}
	identify(t, p, exampleClientKey, `{"identifier":"admin-user","traits":[{"trait_key":"plan","trait_value":"beta"}]}`)
	r := p.admin(t, http.MethodGet, base+"edge-identities/?q=admin-&page_size=10", adminToken, nil)
	var list struct {
		Results []struct {
			UUID       string `json:"identity_uuid"`
			Identifier string `json:"identifier"`
		} `json:"results"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &list) != nil || len(list.Results) != 1 || list.Results[0].Identifier != "admin-user" {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	uuid := list.Results[0].UUID
	r = p.admin(t, http.MethodPost, base+"edge-identities/"+uuid+"/edge-featurestates/", adminToken,
		[]byte(`{"feature":"new_checkout","enabled":true,"feature_state_value":"from-admin"}`))
	if r.status != http.StatusCreated {
		t.Fatalf("create override: %d %s", r.status, r.body)
	}
	if got := lookup(t, p, exampleClientKey, "identifier=admin-user").flag("new_checkout"); got != `true "from-admin"` {
		t.Errorf("SDK after the override: new_checkout = %s, want the override over the beta segment", got)
	}
	doc := p.get(t, "/api/v1/environment-document/", exampleServerKey)
	if doc.status != http.StatusOK || !strings.Contains(string(doc.body), `"identifier":"admin-user"`) || !strings.Contains(string(doc.body), `"from-admin"`) {
		t.Errorf("environment document lacks the stored override: %d %.400s", doc.status, doc.body)
	}
	if got := lookup(t, p, exampleClientKey, "identifier=admin-user").traits(); got != `plan="beta"` {
		t.Errorf("traits after the admin write: %s", got)
	}
	// Another environment's path never reaches the identity.
	if r := p.admin(t, http.MethodGet, "/api/v1/environments/otherEnvironmentKey00/edge-identities/"+uuid+"/", adminToken, nil); r.status != http.StatusNotFound {
		t.Errorf("through another environment: %d %s", r.status, r.body)
	}
}
