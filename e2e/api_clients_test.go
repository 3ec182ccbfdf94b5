package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Real Flagsmith clients against fledge api: the Node SDK in remote mode,
// and the browser client in headless Chromium.

// nodeIdentity runs bench/node/api-e2e.mjs: one getIdentityFlags call.
func nodeIdentity(t *testing.T, nodeBin string, p *proxy, key, identifier string, traits map[string]any) map[string]flagState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "api-e2e.mjs", p.URL+"/api/v1/", key, identifier, string(marshal(t, traits)))
	cmd.Dir = filepath.Join(repoRoot, "bench", "node")
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node api-e2e.mjs: %v\nstderr:\n%s", err, stderr.String())
	}
	var out struct {
		Flags map[string]flagState `json:"flags"`
	}
	dec := json.NewDecoder(&stdout)
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("decoding api-e2e.mjs output: %v\n%s", err, stdout.String())
	}
	return out.Flags
}

// TestNodeSDKTraitsPersist: traits the Node SDK sends once apply to later
// calls that send none, across a restart of fledge.
func TestNodeSDKTraitsPersist(t *testing.T) {
	nodeBin := requireNode(t)
	cfg := apiConfig(t, t.TempDir(), "")
	p := startAPI(t, cfg)
	checkout := func(flags map[string]flagState) string {
		f, ok := flags["new_checkout"]
		if !ok {
			return "absent"
		}
		return fmt.Sprintf("%v %v", f.Enabled, f.Value)
	}
	const beta = "true v2" // the beta_users segment's override
	if got := checkout(nodeIdentity(t, nodeBin, p, exampleServerKey, "node-user", map[string]any{})); got == beta {
		t.Fatalf("before any trait, new_checkout = %s: the test cannot tell persistence apart", got)
	}
	if got := checkout(nodeIdentity(t, nodeBin, p, exampleServerKey, "node-user", map[string]any{"plan": "beta"})); got != beta {
		t.Fatalf("with plan=beta, new_checkout = %s, want %s", got, beta)
	}
	if got := checkout(nodeIdentity(t, nodeBin, p, exampleServerKey, "node-user", map[string]any{})); got != beta {
		t.Errorf("a later call without traits: new_checkout = %s, want %s", got, beta)
	}
	p.signal(t, syscall.SIGTERM)
	p.waitExit(t, 10*time.Second)
	p = startAPI(t, cfg)
	if got := checkout(nodeIdentity(t, nodeBin, p, exampleServerKey, "node-user", map[string]any{})); got != beta {
		t.Errorf("after a restart: new_checkout = %s, want %s", got, beta)
	}
}

// requireChromium returns Debian's Chromium, failing (not skipping) when it
// is missing: the browser test is part of the suite.
func requireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: install it (apt-get install -y chromium); .ci/run does")
	return ""
}

// browserPage identifies a user, sets a trait on the first load only, and
// reports the stored trait and the flag its segment controls. Local
// storage is cleared so nothing survives the reload but what the server
// stored.
const browserPage = `<!doctype html><html><head><meta charset="utf-8"><title>fledge</title>
<script src="/flagsmith.js"></script></head><body><script>
(async () => {
  try {
    const first = !sessionStorage.getItem('loaded');
    sessionStorage.setItem('loaded', '1');
    localStorage.clear();
    await flagsmith.init({environmentID: %q, api: %q, cacheFlags: false, enableAnalytics: false});
    await flagsmith.identify('browser-user');
    if (first) { await flagsmith.setTrait('plan', 'beta'); }
    window.result = {first, plan: flagsmith.getTrait('plan') ?? null, checkout: flagsmith.getValue('new_checkout') ?? null,
      enabled: flagsmith.hasFeature('new_checkout')};
  } catch (e) { window.result = {error: String(e)}; }
})();
</script></body></html>`

// TestBrowserClientTraitsSurviveReload: the Flagsmith browser client
// relies on server-side persistence: after a reload, identify() with no
// traits gets the stored trait and its segment's flag back.
func TestBrowserClientTraitsSurviveReload(t *testing.T) {
	nodeBin := requireNode(t)
	chromium := requireChromium(t)
	bundle := filepath.Join(repoRoot, "bench", "node", "node_modules", "flagsmith", "index.js")
	if _, err := os.Stat(bundle); err != nil {
		t.Fatalf("the flagsmith browser client is not installed (%v): run `make node-deps`", err)
	}
	p := startAPI(t, apiConfig(t, t.TempDir(), ""))
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/flagsmith.js":
			http.ServeFile(w, r, bundle)
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, browserPage, exampleClientKey, p.URL+"/api/v1/")
		default:
			http.NotFound(w, r)
		}
	}))
	defer page.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "browser-e2e.mjs", page.URL+"/", chromium)
	cmd.Dir = filepath.Join(repoRoot, "bench", "node")
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node browser-e2e.mjs: %v\nstderr:\n%s", err, stderr.String())
	}
	type load struct {
		Load   int `json:"load"`
		Result struct {
			First    bool    `json:"first"`
			Plan     any     `json:"plan"`
			Checkout any     `json:"checkout"`
			Enabled  bool    `json:"enabled"`
			Error    *string `json:"error"`
		} `json:"result"`
	}
	var loads []load
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var l load
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("browser output %q: %v", sc.Text(), err)
		}
		loads = append(loads, l)
	}
	if len(loads) != 2 {
		t.Fatalf("want two page loads, got %d: %s\nstderr:\n%s", len(loads), stdout.String(), stderr.String())
	}
	for _, l := range loads {
		r := l.Result
		if r.Error != nil {
			t.Fatalf("load %d: the page failed: %s\nstderr:\n%s", l.Load, *r.Error, stderr.String())
		}
		if r.First != (l.Load == 1) {
			t.Errorf("load %d: first = %v", l.Load, r.First)
		}
		if r.Plan != "beta" || r.Checkout != "v2" || !r.Enabled {
			t.Errorf("load %d: plan %v, new_checkout %v (enabled %v); want the stored trait beta and the segment's v2",
				l.Load, r.Plan, r.Checkout, r.Enabled)
		}
	}
	if t.Failed() {
		t.Logf("browser stderr:\n%s", strings.TrimSpace(stderr.String()))
	}
}
