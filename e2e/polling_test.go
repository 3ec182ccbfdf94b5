package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/bench/workload"
	"github.com/fledge-flags/fledge/internal/fakeapi"
)

// pollDeadline is how long a change upstream may take to be served: a poll
// interval plus its 10% jitter, twice (a poll may have just started when
// the document changes), and a second for a loaded machine.
const pollDeadline = time.Duration(2*1.1*pollSeconds*float64(time.Second)) + time.Second

func TestDocumentUpdateServedAfterPoll(t *testing.T) {
	t.Parallel()
	v1, v2 := workloadEnv(t, workload.P1, 1), workloadEnv(t, workload.P1, 2)
	wantV1, wantV2 := v1.doc.envFlags(t, true), v2.doc.envFlags(t, true)
	if bytes.Equal(joinList(wantV1), joinList(wantV2)) {
		t.Fatal("test setup: P1 versions 1 and 2 have the same flags")
	}
	api := fakeapi.New()
	t.Cleanup(api.Close)
	px := startProxy(t, baseConfig(api, serve(api, v1)...))

	r := px.get(t, "/api/v1/flags/", v1.keys.Server)
	assertOK(t, r, v1)
	assertFlagsBody(t, r.body, wantV1)

	api.SetDocument(v2.keys.Server, v2.raw)
	took := eventually(t, pollDeadline, func() string {
		r := px.get(t, "/api/v1/flags/", v2.keys.Server)
		if r.status != http.StatusOK {
			return "status " + r.Status()
		}
		if !sameItems(flagList(t, r.body), wantV2) {
			return "the flags are still not version 2's"
		}
		return ""
	})
	t.Logf("version 2 served %v after SetDocument (poll interval %gs)", took, pollSeconds)
	r = px.get(t, "/api/v1/flags/", v2.keys.Server)
	assertOK(t, r, v2) // the timestamp header moved on too
	r = px.get(t, "/api/v1/environment-document/", v2.keys.Server)
	assertOK(t, r, v2)
	assertServedDocument(t, "after the update", r.body, v2)

	// Upstream saw only document fetches with the server key, conditional
	// on the cached version once there was one (api.md §2.5).
	conditional := false
	lastModifiedV1 := v1.doc.updatedAt(t).UTC().Format(http.TimeFormat)
	for _, req := range api.Requests() {
		if req.Method != http.MethodGet || req.Path != "/api/v1/environment-document/" || req.EnvironmentKey != v1.keys.Server {
			t.Errorf("unexpected upstream request %s %s with key %q", req.Method, req.Path, req.EnvironmentKey)
		}
		conditional = conditional || req.IfModifiedSince == lastModifiedV1
	}
	if !conditional {
		t.Errorf("no poll carried If-Modified-Since: %s", lastModifiedV1)
	}
}

// TestDeletedIdentityOverrideStopsApplying: an identity override removed
// upstream stops applying at the next poll, for both request forms, with
// and without the identities response cache (which a new document version
// must invalidate).
func TestDeletedIdentityOverrideStopsApplying(t *testing.T) {
	t.Parallel()
	before := exampleEnv(t)
	// The same document without its identity override. updated_at moves on
	// too: with an unchanged updated_at upstream answers the proxy's
	// If-Modified-Since with 304, as Flagsmith does (api.md §2.5, Q4).
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(before.raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	m["identity_overrides"] = []any{}
	m["updated_at"] = before.doc.updatedAt(t).Add(time.Second).Format("2006-01-02T15:04:05.000000-07:00")
	after := before
	after.raw = marshal(t, m)
	after.doc = parseDocument(t, after.raw)

	for _, cache := range []bool{false, true} {
		t.Run("identities cache "+map[bool]string{false: "off", true: "on"}[cache], func(t *testing.T) {
			t.Parallel()
			api := fakeapi.New()
			t.Cleanup(api.Close)
			cfg := baseConfig(api, serve(api, before)...)
			cfg["endpoint_caches"] = map[string]any{"identities": map[string]any{"use_cache": cache}}
			px := startProxy(t, cfg)

			// new_checkout of qa-alice, as each request form sees it.
			newCheckout := func() map[string]flagState {
				t.Helper()
				out := map[string]flagState{}
				for method, r := range map[string]response{
					"GET":  px.get(t, "/api/v1/identities/?identifier=qa-alice", before.keys.Client),
					"POST": px.post(t, "/api/v1/identities/", before.keys.Client, []byte(`{"identifier":"qa-alice","traits":[]}`)),
				} {
					if r.status != http.StatusOK {
						t.Fatalf("%s: status %d: %s", method, r.status, r.body)
					}
					var body struct {
						Flags []struct {
							Feature struct{ Name string } `json:"feature"`
							Enabled bool                  `json:"enabled"`
							Value   any                   `json:"feature_state_value"`
						} `json:"flags"`
					}
					if err := json.Unmarshal(r.body, &body); err != nil {
						t.Fatal(err)
					}
					for _, f := range body.Flags {
						if f.Feature.Name == "new_checkout" {
							out[method] = flagState{f.Enabled, f.Value}
						}
					}
				}
				return out
			}
			override, dflt := flagState{true, "v3-preview"}, flagState{false, "v1"}
			if got := newCheckout(); got["GET"] != override || got["POST"] != override {
				t.Fatalf("before: qa-alice new_checkout = %v, want the override's %v", got, override)
			}
			api.SetDocument(after.keys.Server, after.raw)
			eventually(t, pollDeadline, func() string {
				if got := newCheckout(); got["GET"] != dflt || got["POST"] != dflt {
					return fmt.Sprintf("qa-alice new_checkout is %v, want the default %v", got, dflt)
				}
				return ""
			})
			assertOK(t, px.get(t, "/api/v1/flags/", after.keys.Client), after)
		})
	}
}

func TestPaginatedDocumentAllOverridesApply(t *testing.T) {
	t.Parallel()
	keys := keyPair{"ser.pagedServerKey000001", "pagedClientKey000000001"}
	d := newDocument(keys.Client,
		feature(1, "a_feature", false, "default-a"),
		feature(2, "b_feature", true, 2),
	)
	d.IdentityOverrides = []identityOverride{
		{"qa-1", []featureState{override(d.FeatureStates[0], true, "override-1")}},
		{"qa-2", []featureState{override(d.FeatureStates[1], false, 22)}},
		{"qa-3", []featureState{override(d.FeatureStates[0], true, "override-3"), override(d.FeatureStates[1], true, 33)}},
	}
	raw := marshal(t, d)
	e := env{name: "paged", keys: keys, raw: raw, doc: parseDocument(t, raw)}

	api := fakeapi.New()
	t.Cleanup(api.Close)
	api.SetPageSize(1)
	px := startProxy(t, baseConfig(api, serve(api, e)...))

	for _, o := range d.IdentityOverrides {
		r := px.get(t, "/api/v1/identities/?identifier="+o.Identifier, keys.Client)
		assertOK(t, r, e)
		assertIdentityBody(t, r.body, o.Identifier, expectedIdentityFlags(t, e.doc, o.Identifier, false), "[]")
	}
	pages := 0
	for _, req := range api.Requests() {
		if req.Query.Has("page_id") {
			pages++
		}
	}
	if pages < 2 {
		t.Errorf("upstream served %d follow-up pages, want at least 2 (3 overrides, 1 per page)", pages)
	}
	// The merged document is what SDKs in local evaluation get.
	r := px.get(t, "/api/v1/environment-document/", keys.Server)
	assertOK(t, r, e)
	var served document
	if err := json.Unmarshal(r.body, &served); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range served.IdentityOverrides {
		ids = append(ids, o.Identifier)
	}
	if len(ids) != 3 || ids[0] != "qa-1" || ids[1] != "qa-2" || ids[2] != "qa-3" {
		t.Errorf("served document's identity_overrides are %q, want qa-1, qa-2, qa-3", ids)
	}
}

// TestNoDocumentYet: a known key before the first document gets 503, and
// readiness says so, until the upstream recovers. `fledge health` follows
// readiness.
func TestNoDocumentYetThenRecovers(t *testing.T) {
	t.Parallel()
	e := exampleEnv(t)
	api := fakeapi.New()
	t.Cleanup(api.Close)
	api.Fail(fakeapi.Fault500, -1)
	px := startProxyWaiting(t, baseConfig(api, serve(api, e)...), livenessPath)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := api.WaitForRequests(ctx, 1); err != nil {
		t.Fatalf("fledge never polled: %v", err)
	}

	for _, req := range []*http.Request{
		px.request(t, http.MethodGet, "/api/v1/flags/", e.keys.Client, nil),
		px.request(t, http.MethodGet, "/api/v1/flags/", e.keys.Server, nil),
		px.request(t, http.MethodGet, "/api/v1/identities/?identifier=qa-alice", e.keys.Client, nil),
		px.request(t, http.MethodPost, "/api/v1/identities/", e.keys.Client, []byte(`{"identifier":"qa-alice"}`)),
		px.request(t, http.MethodGet, "/api/v1/environment-document/", e.keys.Server, nil),
	} {
		r := px.do(t, req)
		var body struct {
			Status string `json:"status"`
		}
		if r.status != http.StatusServiceUnavailable || json.Unmarshal(r.body, &body) != nil || body.Status != "service_unavailable" {
			t.Errorf("%s %s before the first document: %d %s; want 503 {\"status\":\"service_unavailable\",…}",
				req.Method, req.URL.RequestURI(), r.status, r.body)
		}
	}
	assertError(t, px.get(t, "/api/v1/flags/", "unknown"), http.StatusUnauthorized,
		`{"status":"unauthorized","message":"unknown key 'unknown'"}`)
	for _, path := range []string{readinessPath, "/proxy/health", "/health"} {
		r := px.get(t, path, "")
		var body struct {
			Status string  `json:"status"`
			Reason *string `json:"reason"`
		}
		// Flagsmith's edge proxy's wording (api.md §2.9).
		if r.status != http.StatusServiceUnavailable || json.Unmarshal(r.body, &body) != nil ||
			body.Status != "error" || body.Reason == nil || *body.Reason != "environment document(s) not updated." {
			t.Errorf("%s before the first document: %d %s; want 503 with status error and reason %q",
				path, r.status, r.body, "environment document(s) not updated.")
		}
	}
	if r := px.get(t, livenessPath, ""); r.status != http.StatusOK {
		t.Errorf("liveness: status %d, want 200", r.status)
	}
	if code, out := runHealth(t, px.URL+readinessPath); code != 1 {
		t.Errorf("fledge health while not ready: exit %d, want 1\n%s", code, out)
	}

	api.Fail(fakeapi.FaultNone, 0)
	eventually(t, pollDeadline, func() string {
		if r := px.get(t, readinessPath, ""); r.status != http.StatusOK {
			return "readiness still " + r.Status()
		}
		return ""
	})
	r := px.get(t, "/api/v1/flags/", e.keys.Client)
	assertOK(t, r, e)
	assertFlagsBody(t, r.body, e.doc.envFlags(t, false))
	if code, out := runHealth(t, px.URL+readinessPath); code != 0 {
		t.Errorf("fledge health when ready: exit %d, want 0\n%s", code, out)
	}
}

// TestStaleDocumentStillServed: when the upstream fails, the last good
// document is still served, and readiness turns 503 once the last
// successful poll is older than poll_frequency + grace × environments
// (api.md §2.9), then recovers with the upstream.
func TestStaleDocumentStillServed(t *testing.T) {
	t.Parallel()
	const grace = 0.8
	staleAfter := time.Duration((pollSeconds + grace) * float64(time.Second))
	e := exampleEnv(t)
	api := fakeapi.New()
	t.Cleanup(api.Close)
	cfg := baseConfig(api, serve(api, e)...)
	cfg.section("health_check")["environment_update_grace_period_seconds"] = grace
	px := startProxy(t, cfg)

	// Healthy polls keep it ready (304s count: the document is current).
	for end := time.Now().Add(staleAfter); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if r := px.get(t, readinessPath, ""); r.status != http.StatusOK {
			t.Fatalf("readiness %s %s while the upstream is healthy", r.Status(), r.body)
		}
	}

	api.Fail(fakeapi.Fault500, -1)
	took := eventually(t, staleAfter+pollDeadline, func() string {
		r := px.get(t, readinessPath, "")
		var body struct {
			Reason *string `json:"reason"`
		}
		if r.status != http.StatusServiceUnavailable || json.Unmarshal(r.body, &body) != nil || body.Reason == nil {
			return "readiness still " + r.Status() + " " + string(r.body)
		}
		if *body.Reason != "environment document(s) stale." {
			return "readiness reason " + *body.Reason
		}
		return ""
	})
	// The last success came at most one (jittered) poll interval before the
	// failures began: readiness must not give up before that.
	if earliest := staleAfter - time.Duration(1.1*pollSeconds*float64(time.Second)) - 50*time.Millisecond; took < earliest {
		t.Errorf("readiness turned 503 %v after the upstream failed, before the document was stale (%v)", took, earliest)
	}
	r := px.get(t, "/api/v1/flags/", e.keys.Client)
	assertOK(t, r, e)
	assertFlagsBody(t, r.body, e.doc.envFlags(t, false))

	api.Fail(fakeapi.FaultNone, 0)
	eventually(t, pollDeadline, func() string {
		if r := px.get(t, readinessPath, ""); r.status != http.StatusOK {
			return "readiness still " + r.Status()
		}
		return ""
	})
}

func TestHealthCommandNoServer(t *testing.T) {
	t.Parallel()
	if code, out := runHealth(t, "http://127.0.0.1:"+strconv.Itoa(freePort(t))+readinessPath); code != 1 {
		t.Errorf("fledge health with nothing listening: exit %d, want 1\n%s", code, out)
	}
}

// runHealth runs `fledge health --url URL` and returns its exit code and
// output.
func runHealth(t *testing.T, url string) (int, string) {
	t.Helper()
	cmd := exec.Command(fledgeBin, "health", "--url", url, "--timeout", "5s")
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("running fledge health: %v", err)
		}
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// Status is the response's status for messages.
func (r response) Status() string { return strconv.Itoa(r.status) + " " + http.StatusText(r.status) }

// sameItems reports whether two lists hold the same byte strings in any order.
func sameItems(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	used := make([]bool, len(b))
outer:
	for _, x := range a {
		for j, y := range b {
			if !used[j] && bytes.Equal(x, y) {
				used[j] = true
				continue outer
			}
		}
		return false
	}
	return true
}
