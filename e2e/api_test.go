package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The api role (fledge api) against the example environment in examples/,
// on the embedded store in a temporary directory.

const (
	exampleClientKey = "exampleClientKey0000001"
	exampleServerKey = "ser.exampleServerKey00001"
)

// apiConfig serves the example environment (or docPath) offline from a
// store in dir.
func apiConfig(t *testing.T, dir, docPath string) config {
	t.Helper()
	if docPath == "" {
		docPath = filepath.Join(repoRoot, "examples", "environment.json")
	}
	return config{
		"environments":          []string{docPath},
		"environment_key_pairs": []keyPair{{Server: exampleServerKey, Client: exampleClientKey}},
		"server":                map[string]any{"host": "127.0.0.1"},
		"store":                 map[string]any{"path": dir},
	}
}

// exampleVariant writes the example document with top-level settings and
// organisation settings changed, for the settings' cases.
func exampleVariant(t *testing.T, env map[string]any, org map[string]any) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(readRepoFile(t, "examples/environment.json"), &doc); err != nil {
		t.Fatal(err)
	}
	for k, v := range env {
		doc[k] = v
	}
	o := doc["project"].(map[string]any)["organisation"].(map[string]any)
	for k, v := range org {
		o[k] = v
	}
	path := filepath.Join(t.TempDir(), "environment.json")
	if err := os.WriteFile(path, marshal(t, doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startAPI(t *testing.T, cfg config) *proxy {
	t.Helper()
	return startRole(t, "api", cfg, readinessPath)
}

// identityAnswer is an /identities/ response.
type identityAnswer struct {
	Identifier string `json:"identifier"`
	Flags      []struct {
		Feature struct {
			Name string `json:"name"`
		} `json:"feature"`
		Enabled bool            `json:"enabled"`
		Value   json.RawMessage `json:"feature_state_value"`
	} `json:"flags"`
	Traits []struct {
		Key       string          `json:"trait_key"`
		Value     json.RawMessage `json:"trait_value"`
		Transient *bool           `json:"transient"`
	} `json:"traits"`
}

func decodeIdentity(t *testing.T, what string, r response) identityAnswer {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s: status %d, body %s", what, r.status, r.body)
	}
	var a identityAnswer
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("%s: %v in %s", what, err, r.body)
	}
	return a
}

// traits renders the response traits sorted, as key=value, with a * for
// transient ones.
func (a identityAnswer) traits() string {
	var out []string
	for _, t := range a.Traits {
		s := t.Key + "=" + string(t.Value)
		if t.Transient != nil && *t.Transient {
			s += "*"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func (a identityAnswer) flag(name string) string {
	for _, f := range a.Flags {
		if f.Feature.Name == name {
			return fmt.Sprintf("%v %s", f.Enabled, f.Value)
		}
	}
	return "absent"
}

func identify(t *testing.T, p *proxy, key, body string) identityAnswer {
	t.Helper()
	return decodeIdentity(t, "POST "+body, p.post(t, "/api/v1/identities/", key, []byte(body)))
}

func lookup(t *testing.T, p *proxy, key, query string) identityAnswer {
	t.Helper()
	return decodeIdentity(t, "GET "+query, p.get(t, "/api/v1/identities/?"+query, key))
}

// TestAPIIdentityPersistence walks the POST /identities/ case table of
// edge-api.md through the real binary, then restarts it on the same store.
func TestAPIIdentityPersistence(t *testing.T) {
	dir := t.TempDir()
	cfg := apiConfig(t, dir, "")
	p := startAPI(t, cfg)
	const beta = `"v2"` // new_checkout's value for the beta_users segment

	a := identify(t, p, exampleClientKey, `{"identifier":"u1","traits":[{"trait_key":"plan","trait_value":"beta"},{"trait_key":"age","trait_value":"042"}]}`)
	if got := a.traits(); got != `age=42 plan="beta"` {
		t.Errorf("stored traits = %s, want the numeric string typed as a number", got)
	}
	if got := a.flag("new_checkout"); got != "true "+beta {
		t.Errorf("new_checkout = %s, want the beta segment's value", got)
	}
	// Traits sent once apply to a later call that sends none.
	a = lookup(t, p, exampleClientKey, "identifier=u1")
	if got := a.traits(); got != `age=42 plan="beta"` || a.flag("new_checkout") != "true "+beta {
		t.Errorf("GET after POST: traits %s, new_checkout %s", got, a.flag("new_checkout"))
	}
	a = identify(t, p, exampleClientKey, `{"identifier":"u1"}`)
	if got := a.traits(); got != `age=42 plan="beta"` {
		t.Errorf("POST without traits: %s", got)
	}
	// A transient trait is evaluated and returned as transient, never stored;
	// on a key clash it wins for this evaluation only.
	a = identify(t, p, exampleClientKey, `{"identifier":"u1","traits":[{"trait_key":"plan","trait_value":"free","transient":true},{"trait_key":"tmp","trait_value":1,"transient":true}]}`)
	if got := a.traits(); got != `age=42 plan="free"* tmp=1*` || a.flag("new_checkout") == "true "+beta {
		t.Errorf("transient overlay: traits %s, new_checkout %s", got, a.flag("new_checkout"))
	}
	// Identified transient: the stored identity is evaluated, nothing written.
	a = identify(t, p, exampleClientKey, `{"identifier":"u1","transient":true,"traits":[{"trait_key":"age","trait_value":null},{"trait_key":"x","trait_value":"y"}]}`)
	if got := a.traits(); got != `age=null* plan="beta" x="y"*` {
		t.Errorf("identified transient: %s", got)
	}
	// null deletes.
	a = identify(t, p, exampleClientKey, `{"identifier":"u1","traits":[{"trait_key":"age","trait_value":null}]}`)
	if got := a.traits(); got != `plan="beta"` {
		t.Errorf("after deleting age: %s", got)
	}
	if got := lookup(t, p, exampleClientKey, "identifier=u1").traits(); got != `plan="beta"` {
		t.Errorf("stored after the transient calls and the delete: %s", got)
	}
	// GET lazily creates; transient=false is false (flagsmith#5260).
	if got := lookup(t, p, exampleServerKey, "identifier=u2&transient=false").traits(); got != "" {
		t.Errorf("new identity has traits %s", got)
	}
	// No identifier: fully transient, with core's identifier rule.
	a = identify(t, p, exampleClientKey, `{"traits":[{"trait_key":"b","trait_value":true},{"trait_key":"a","trait_value":1.0}]}`)
	if a.Identifier != "ceffde9f44e6f90088280fd3c24e15564b0029b577eab6a8d80c19dd79f4dc85" {
		t.Errorf("transient identifier = %s", a.Identifier)
	}
	if got := a.traits(); got != `a=1.0* b=true*` {
		t.Errorf("fully transient traits: %s", got)
	}
	a = identify(t, p, exampleClientKey, `{"identifier":"   "}`)
	if len(a.Identifier) != 32 || strings.Trim(a.Identifier, "0123456789abcdef") != "" {
		t.Errorf("blank identifier without traits: want a UUID4 hex, got %q", a.Identifier)
	}

	// A restart keeps everything.
	p.signal(t, syscall.SIGTERM)
	if code := p.waitExit(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	p = startAPI(t, cfg)
	if got := lookup(t, p, exampleClientKey, "identifier=u1").traits(); got != `plan="beta"` {
		t.Errorf("after a restart: %s", got)
	}
}

// TestAPILimits: over-limit input answers 400 naming the field and writes
// nothing.
func TestAPILimits(t *testing.T) {
	p := startAPI(t, apiConfig(t, t.TempDir(), ""))
	identify(t, p, exampleServerKey, `{"identifier":"keep","traits":[{"trait_key":"k","trait_value":"v"}]}`)
	long := func(n int, s string) string { return strings.Repeat(s, n) }
	bigTraits := make([]string, 250)
	for i := range bigTraits {
		bigTraits[i] = fmt.Sprintf(`{"trait_key":"t%d","trait_value":"%s"}`, i, long(2000, "x"))
	}
	for _, tc := range []struct {
		name, body, field string
	}{
		{"identifier over 1024 bytes", `{"identifier":"` + long(513, "é") + `"}`, "identifier"}, // 513 characters, 1026 bytes
		{"trait key over 200 characters", `{"identifier":"keep","traits":[{"trait_key":"` + long(201, "k") + `","trait_value":1}]}`, "trait_key"},
		{"value over 2000 code points", `{"identifier":"keep","traits":[{"trait_key":"k","trait_value":"` + long(2001, "ü") + `"}]}`, "trait_value"},
		{"identity over 400 KB", `{"identifier":"keep","traits":[` + strings.Join(bigTraits, ",") + `]}`, "traits"},
		{"trait without a value", `{"identifier":"keep","traits":[{"trait_key":"k"}]}`, "trait_value"},
		{"traits not a list", `{"identifier":"keep","traits":{"k":1}}`, "traits"},
		{"identifier a boolean", `{"identifier":true}`, "identifier"},
	} {
		r := p.post(t, "/api/v1/identities/", exampleServerKey, []byte(tc.body))
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"`+tc.field+`"`) {
			t.Errorf("%s: status %d body %.300s, want 400 naming %s", tc.name, r.status, r.body, tc.field)
		}
		assertStatusJSON(t, tc.name, r, http.StatusBadRequest)
	}
	if got := lookup(t, p, exampleServerKey, "identifier=keep").traits(); got != `k="v"` {
		t.Errorf("after rejected writes: %s", got)
	}
}

// TestAPIConcurrentWrites: overlapping POSTs for one identity with
// different traits all persist (the SaaS loses some, flagsmith#8317), and
// a retried POST is harmless.
func TestAPIConcurrentWrites(t *testing.T) {
	p := startAPI(t, apiConfig(t, t.TempDir(), ""))
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"identifier":"shared","traits":[{"trait_key":"k%02d","trait_value":%d}]}`, i, i)
			req := p.request(t, http.MethodPost, "/api/v1/identities/", exampleServerKey, []byte(body))
			resp, err := client.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- resp.Status
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent POST: %s", e)
	}
	a := lookup(t, p, exampleServerKey, "identifier=shared")
	if len(a.Traits) != n {
		t.Fatalf("%d of %d concurrently written traits persisted: %s", len(a.Traits), n, a.traits())
	}
	// Read-your-writes, and a retried POST (same body twice) changes nothing.
	body := `{"identifier":"shared","traits":[{"trait_key":"k00","trait_value":"again"}]}`
	first := identify(t, p, exampleServerKey, body)
	second := identify(t, p, exampleServerKey, body)
	if first.traits() != second.traits() || !strings.Contains(second.traits(), `k00="again"`) {
		t.Errorf("retried POST: %s then %s", first.traits(), second.traits())
	}
	if got := lookup(t, p, exampleServerKey, "identifier=shared").traits(); got != second.traits() {
		t.Errorf("GET after POST: %s, want %s", got, second.traits())
	}
}

// TestAPISettings: allow_client_traits and persist_trait_data as core
// applies them.
func TestAPISettings(t *testing.T) {
	t.Run("allow_client_traits off", func(t *testing.T) {
		doc := exampleVariant(t, map[string]any{"allow_client_traits": false}, nil)
		p := startAPI(t, apiConfig(t, t.TempDir(), doc))
		a := identify(t, p, exampleClientKey, `{"identifier":"c1","traits":[{"trait_key":"plan","trait_value":"beta"}]}`)
		if a.traits() != "" || a.flag("new_checkout") == `true "v2"` {
			t.Errorf("client traits were used: traits %s, new_checkout %s", a.traits(), a.flag("new_checkout"))
		}
		a = identify(t, p, exampleServerKey, `{"identifier":"c1","traits":[{"trait_key":"plan","trait_value":"beta"}]}`)
		if a.traits() != `plan="beta"` {
			t.Errorf("server key traits: %s", a.traits())
		}
		// Stored traits still evaluate for the client key.
		if got := identify(t, p, exampleClientKey, `{"identifier":"c1","traits":[{"trait_key":"plan","trait_value":null}]}`); got.traits() != `plan="beta"` || got.flag("new_checkout") != `true "v2"` {
			t.Errorf("client key after a server-side write: traits %s, new_checkout %s", got.traits(), got.flag("new_checkout"))
		}
	})
	t.Run("persist_trait_data off", func(t *testing.T) {
		doc := exampleVariant(t, nil, map[string]any{"persist_trait_data": false})
		p := startAPI(t, apiConfig(t, t.TempDir(), doc))
		a := identify(t, p, exampleClientKey, `{"identifier":"p1","traits":[{"trait_key":"plan","trait_value":"beta"}]}`)
		if a.traits() != `plan="beta"` || a.flag("new_checkout") != `true "v2"` {
			t.Errorf("evaluated traits: %s, new_checkout %s", a.traits(), a.flag("new_checkout"))
		}
		if got := lookup(t, p, exampleClientKey, "identifier=p1").traits(); got != "" {
			t.Errorf("traits were stored: %s", got)
		}
		r := p.post(t, "/api/v1/traits/", exampleServerKey, []byte(`{"identity":{"identifier":"p1"},"trait_key":"k","trait_value":1}`))
		assertStatusJSON(t, "POST /traits/ with persistence off", r, http.StatusForbidden)
	})
}

// TestAPITraitEndpoints: POST /api/v1/traits/ (iOS setTrait) and
// bulk-identities (Go SDK).
func TestAPITraitEndpoints(t *testing.T) {
	p := startAPI(t, apiConfig(t, t.TempDir(), ""))
	r := p.post(t, "/api/v1/traits/", exampleClientKey, []byte(`{"identity":{"identifier":"ios"},"trait_key":"plan","trait_value":"beta"}`))
	if r.status != http.StatusOK || string(r.body) != `{"identity":{"identifier":"ios"},"trait_key":"plan","trait_value":"beta"}` {
		t.Errorf("POST /traits/: %d %s", r.status, r.body)
	}
	if a := lookup(t, p, exampleClientKey, "identifier=ios"); a.traits() != `plan="beta"` || a.flag("new_checkout") != `true "v2"` {
		t.Errorf("after /traits/: %s %s", a.traits(), a.flag("new_checkout"))
	}
	r = p.post(t, "/api/v1/traits/", exampleClientKey, []byte(`{"identity":{"identifier":"ios"},"trait_key":"plan","trait_value":null}`))
	assertStatusJSON(t, "POST /traits/ with null", r, http.StatusBadRequest)

	identify(t, p, exampleServerKey, `{"identifier":"b1","traits":[{"trait_key":"old","trait_value":1},{"trait_key":"keep","trait_value":2}]}`)
	bulk := `{"data":[{"identifier":"b1","traits":[{"trait_key":"keep","trait_value":3}]},{"identifier":"b2","traits":null}]}`
	r = p.do(t, p.request(t, http.MethodPut, "/api/v1/bulk-identities/", exampleServerKey, []byte(bulk)))
	assertStatusJSON(t, "PUT bulk", r, http.StatusAccepted)
	if got := lookup(t, p, exampleServerKey, "identifier=b1").traits(); got != "keep=3 old=1" {
		t.Errorf("PUT merges: %s", got)
	}
	r = p.post(t, "/api/v1/bulk-identities/", exampleServerKey, []byte(bulk))
	assertStatusJSON(t, "POST bulk", r, http.StatusAccepted)
	if got := lookup(t, p, exampleServerKey, "identifier=b1").traits(); got != "keep=3" {
		t.Errorf("POST replaces: %s", got)
	}
	items := make([]string, 101)
	for i := range items {
		items[i] = fmt.Sprintf(`{"identifier":"x%d"}`, i)
	}
	r = p.post(t, "/api/v1/bulk-identities/", exampleServerKey, []byte(`{"data":[`+strings.Join(items, ",")+`]}`))
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "must not be more than 100") {
		t.Errorf("101 identities: %d %s", r.status, r.body)
	}
}

// TestAPIKill9LosesNoAcknowledgedWrite: every trait write answered 200
// before a SIGKILL is there after the restart.
func TestAPIKill9LosesNoAcknowledgedWrite(t *testing.T) {
	dir := t.TempDir()
	cfg := apiConfig(t, dir, "")
	p := startAPI(t, cfg)
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				body := fmt.Sprintf(`{"identifier":%q,"traits":[{"trait_key":"seq","trait_value":%d}]}`, id, i)
				req := p.request(t, http.MethodPost, "/api/v1/identities/", exampleServerKey, []byte(body))
				resp, err := client.Do(req)
				if err != nil {
					return // the process is gone
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	close(stop)
	wg.Wait()
	if len(acked) < 50 {
		t.Fatalf("only %d writes acknowledged before the kill", len(acked))
	}
	p = startAPI(t, cfg)
	lost := 0
	for _, id := range acked {
		a := lookup(t, p, exampleServerKey, "identifier="+id+"&transient=true")
		if len(a.Traits) != 1 {
			lost++
			if lost < 5 {
				t.Errorf("acknowledged write of %s lost: %s", id, a.traits())
			}
		}
	}
	t.Logf("%d acknowledged writes before SIGKILL, %d lost", len(acked), lost)
	if lost > 0 {
		t.Errorf("%d of %d acknowledged writes lost", lost, len(acked))
	}
}

// TestAPIStoreCommitMetrics: the api role's /metrics shows the embedded
// store's group commits (how many writes each made durable, how long it
// took) next to the identities written.
func TestAPIStoreCommitMetrics(t *testing.T) {
	t.Parallel()
	cfg := apiConfig(t, t.TempDir(), "")
	debug := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg.section("server")["debug_address"] = debug
	api := startAPI(t, cfg)
	const writes = 3
	for i := range writes {
		body := fmt.Sprintf(`{"identifier":"metrics-user","traits":[{"trait_key":"n","trait_value":%d}]}`, i)
		decodeIdentity(t, "POST", api.post(t, "/api/v1/identities/", exampleClientKey, []byte(body)))
	}
	resp, err := http.Get("http://" + debug + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	series := func(name string) float64 {
		for line := range strings.Lines(string(body)) {
			if rest, ok := strings.CutPrefix(line, name+" "); ok {
				v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				return v
			}
		}
		t.Fatalf("no %s in /metrics:\n%s", name, body)
		return 0
	}
	if got := series("fledge_identities_written_total"); got != writes {
		t.Errorf("identities written %v; want %d", got, writes)
	}
	// One identity written three times in turn: three commits of one write.
	if got := series("fledge_store_commit_writes_sum"); got != writes {
		t.Errorf("writes committed %v; want %d", got, writes)
	}
	if got := series("fledge_store_commit_duration_seconds_count"); got != writes {
		t.Errorf("commits timed %v; want %d", got, writes)
	}
}
