package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireBrowserDeps is requireNode plus the npm packages the browser test
// loads: playwright-core and the Flagsmith JS SDK.
func requireBrowserDeps(t *testing.T) string {
	t.Helper()
	node := requireNode(t)
	for _, pkg := range []string{"playwright-core", "flagsmith"} {
		if _, err := os.Stat(filepath.Join(repoRoot, "bench", "node", "node_modules", pkg, "package.json")); err != nil {
			t.Fatalf("npm package %s is not installed (%v): run `make node-deps`", pkg, err)
		}
	}
	return node
}

// realtimePage is the test's web page: the Flagsmith JS SDK with realtime
// on, pointed at Fledge for both flags and events, showing banner_colour.
// EventSource is wrapped so that the test knows when the stream is open.
const realtimePage = `<!doctype html>
<html><head><meta charset="utf-8"><title>fledge realtime</title></head>
<body><div id="flag"></div>
<script>
window.streamOpen = false;
const NativeEventSource = window.EventSource;
window.EventSource = class extends NativeEventSource {
  constructor(url, init) {
    super(url, init);
    this.addEventListener('open', () => { window.streamOpen = true; });
  }
};
</script>
<script src="/flagsmith.js"></script>
<script>
flagsmith.init({
  environmentID: {{KEY}},
  api: {{FLEDGE}} + '/api/v1/',
  realtime: true,
  eventSourceUrl: {{FLEDGE}} + '/',
  onChange: () => {
    document.getElementById('flag').textContent = String(flagsmith.getValue('banner_colour'));
  },
});
</script>
</body></html>`

// TestBrowserRealtime: a page using the Flagsmith JS SDK with realtime: true
// shows a flag changed upstream within a second of Flagsmith's
// queue-change call, in headless Chromium.
func TestBrowserRealtime(t *testing.T) {
	t.Parallel()
	chromium := requireChromium(t) // api_clients_test.go
	node := requireBrowserDeps(t)
	px, api, e := realtimeProxy(t)

	sdk, err := os.ReadFile(filepath.Join(repoRoot, "bench", "node", "node_modules", "flagsmith", "index.js"))
	if err != nil {
		t.Fatal(err)
	}
	quote := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	page := strings.NewReplacer("{{KEY}}", quote(e.keys.Client), "{{FLEDGE}}", quote(px.URL)).Replace(realtimePage)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(page))
		case "/flagsmith.js":
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = w.Write(sdk)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(site.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "realtime-browser.mjs", chromium, site.URL+"/", "blue", "green", "20000")
	cmd.Dir = filepath.Join(repoRoot, "bench", "node")
	cmd.Env = cleanEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	step := func(want string) {
		t.Helper()
		if !lines.Scan() {
			cancel()
			_ = cmd.Wait()
			t.Fatalf("realtime-browser.mjs ended before %q: %v\nstderr:\n%s", want, lines.Err(), stderr.String())
		}
		var s struct{ Step, Value string }
		if err := json.Unmarshal(lines.Bytes(), &s); err != nil || s.Step != want {
			t.Fatalf("realtime-browser.mjs said %q, want step %q", lines.Text(), want)
		}
	}
	step("ready")

	api.SetDocument(e.keys.Server, bannerDocument(t, 2, "green"))
	start := time.Now()
	px.queueChange(t, e.keys.Client)
	step("changed")
	latency := time.Since(start)
	t.Logf("queue-change to the page showing the new value: %s", latency)
	if latency > time.Second {
		t.Fatalf("the page showed the change %s after queue-change, want within 1s", latency)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("realtime-browser.mjs: %v\n%s", err, stderr.String())
	}
}
