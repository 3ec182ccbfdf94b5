package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/bench/workload"
	"github.com/fledge-flags/fledge/internal/fakeapi"
)

// identityCase is one identity the SDK asks about; traits as the SDK takes
// them ({key: value}).
type identityCase struct {
	Identifier string         `json:"identifier"`
	Traits     map[string]any `json:"traits"`
}

// traitList is the case's traits as an /identities/ trait list, sorted by
// key (order does not matter to evaluation).
func (c identityCase) traitList() []map[string]any {
	out := []map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(c.Traits)) {
		out = append(out, map[string]any{"trait_key": k, "trait_value": c.Traits[k]})
	}
	return out
}

// flagState is what an SDK user sees of a flag.
type flagState struct {
	Enabled bool `json:"enabled"`
	Value   any  `json:"value"`
}

type sdkFlags struct {
	Flags map[string]flagState `json:"flags"`
}

type sdkRun struct {
	Environment sdkFlags   `json:"environment"`
	Identities  []sdkFlags `json:"identities"`
	Requests    []struct {
		Method string `json:"method"`
		URL    string `json:"url"`
		Status int    `json:"status"`
	} `json:"requests"`
}

// sdkOutput is what bench/node/sdk-e2e.mjs prints.
type sdkOutput struct {
	SDKVersion   string `json:"sdk_version"`
	Remote       sdkRun `json:"remote"`        // server key, remote evaluation
	RemoteClient sdkRun `json:"remote_client"` // client key, remote evaluation
	Local        sdkRun `json:"local"`         // server key, local evaluation
}

// sdkDocument is a document the Node SDK is driven against.
type sdkDocument struct {
	env   env
	cases []identityCase
}

func workloadTraits(ts []workload.Trait) map[string]any {
	m := map[string]any{}
	for _, t := range ts {
		m[t.Key] = t.Value
	}
	return m
}

// TestNodeSDKAgreement drives the Flagsmith Node SDK against fledge, one
// node process per document:
//   - remote evaluation with the server key returns exactly what
//     `fledge eval` computes for the same document and identity;
//   - remote evaluation with the client key returns the same minus what
//     client keys may not see;
//   - the SDK's local evaluation, on the document it fetched from fledge's
//     /environment-document/, agrees with fledge's remote answers.
//
// The documents avoid the type-coercion corners where the Node SDK's
// engine lags Flagsmith's conformance suite (numeric-looking strings,
// NOT_EQUAL between a number and a non-numeric string): the example
// document's rules compare strings with strings and numbers with numbers,
// and the workload generator uses only types with one meaning in every
// engine (bench/workload/conditions.go, passKinds), each trait read by
// conditions of its own type. So P2 stays in the local-evaluation
// agreement, with its own worst-case and matching trait sets (every segment
// evaluated to its last condition, or every segment matching).
func TestNodeSDKAgreement(t *testing.T) {
	t.Parallel()
	nodeBin := requireNode(t)

	plain := func(ids ...string) []identityCase {
		var out []identityCase
		for _, id := range ids {
			out = append(out, identityCase{id, map[string]any{}})
		}
		return out
	}
	p1Traits := workloadTraits(workload.Traits(workload.P1))
	var p1Cases []identityCase
	for _, id := range []string{"qa-override-user-1", "qa-override-user-2", "support-agent-override",
		"user-1", "user-2", "user-3", "user-4", "user-5", "user-6", "user-7", "user-8"} {
		p1Cases = append(p1Cases, identityCase{id, p1Traits})
	}
	docs := []sdkDocument{
		{env: exampleEnv(t), cases: append(plain("qa-alice", "user-1", "user-2", "user-3", "user-4", "user-5", "user-6"),
			identityCase{"qa-alice", map[string]any{"plan": "beta"}},
			identityCase{"user-beta", map[string]any{"plan": "beta"}},
			identityCase{"user-free", map[string]any{"plan": "free", "logins": 3}},
			identityCase{"user-nz", map[string]any{"country": "NZ"}},
			identityCase{"user-us", map[string]any{"country": "US"}},
			identityCase{"user-power", map[string]any{"logins": 150, "app_version": "2.10.0"}},
			identityCase{"user-power-old", map[string]any{"logins": 150, "app_version": "2.3.0"}},
			identityCase{"user-both", map[string]any{"country": "SE", "logins": 100, "app_version": "2.3.1", "beta": true, "score": 4.5}},
		)},
		{env: workloadEnv(t, workload.P1, 1), cases: append(p1Cases, plain("user-no-traits")...)},
		{env: workloadEnv(t, workload.P2, 1), cases: []identityCase{
			{"user-worst-case", workloadTraits(workload.Traits(workload.P2))},
			{"user-all-segments", workloadTraits(workload.MatchingTraits(workload.P2))},
			{"qa-override-user-1", workloadTraits(workload.MatchingTraits(workload.P2))},
			{"user-9", workloadTraits(workload.MatchingTraits(workload.P2))},
		}},
	}

	api := fakeapi.New()
	t.Cleanup(api.Close)
	var envs []env
	for _, d := range docs {
		envs = append(envs, d.env)
	}
	cfg := baseConfig(api, serve(api, envs...)...)
	cfg["api_poll_frequency_seconds"] = 5
	cfg.section("logging")["enable_access_log"] = false
	px := startProxy(t, cfg)

	for _, d := range docs {
		t.Run(d.env.name, func(t *testing.T) {
			t.Parallel()
			out := runSDK(t, nodeBin, px, d)
			docPath := filepath.Join(t.TempDir(), "doc.json")
			if err := os.WriteFile(docPath, d.env.raw, 0o600); err != nil {
				t.Fatal(err)
			}
			compare := func(what string, got, want map[string]flagState) {
				t.Helper()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s:\n%s", what, flagDiff(got, want))
				}
			}

			// Remote evaluation, server key: exactly fledge eval's answer.
			wantEnv := fledgeEval(t, docPath, nil)
			compare("remote getEnvironmentFlags (server key) vs fledge eval", out.Remote.Environment.Flags, wantEnv)
			compare("remote getEnvironmentFlags (client key) vs fledge eval without server-key-only/hidden flags",
				out.RemoteClient.Environment.Flags, clientView(d.env.doc, wantEnv))
			compare("local getEnvironmentFlags vs remote", out.Local.Environment.Flags, out.Remote.Environment.Flags)
			for i, c := range d.cases {
				want := fledgeEval(t, docPath, &c)
				what := fmt.Sprintf("identity %q traits %v", c.Identifier, c.Traits)
				compare("remote getIdentityFlags (server key) vs fledge eval: "+what, out.Remote.Identities[i].Flags, want)
				compare("remote getIdentityFlags (client key): "+what, out.RemoteClient.Identities[i].Flags, clientView(d.env.doc, want))
				compare("local getIdentityFlags vs remote: "+what, out.Local.Identities[i].Flags, out.Remote.Identities[i].Flags)
			}

			// The local client's document came from fledge, in one request.
			reqs := out.Local.Requests
			wantURL := px.URL + "/api/v1/environment-document/"
			if len(reqs) != 1 || reqs[0].Method != "GET" || reqs[0].URL != wantURL || reqs[0].Status != 200 {
				t.Errorf("local evaluation requests %+v, want one GET %s answered 200", reqs, wantURL)
			}
		})
	}
}

// requireNode returns the node binary, failing (not skipping) when node or
// the SDK is missing: these tests are part of the suite.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found (%v): install Node.js 20, then run `make node-deps`", err)
	}
	sdk := filepath.Join(repoRoot, "bench", "node", "node_modules", "flagsmith-nodejs", "package.json")
	if _, err := os.Stat(sdk); err != nil {
		t.Fatalf("the Flagsmith Node SDK is not installed (%v): run `make node-deps`", err)
	}
	return node
}

// runSDK runs bench/node/sdk-e2e.mjs against the proxy for one document.
func runSDK(t *testing.T, nodeBin string, px *proxy, d sdkDocument) sdkOutput {
	t.Helper()
	casesPath := filepath.Join(t.TempDir(), "cases.json")
	if err := os.WriteFile(casesPath, marshal(t, d.cases), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "sdk-e2e.mjs", px.URL+"/api/v1/", d.env.keys.Client, d.env.keys.Server, casesPath)
	cmd.Dir = filepath.Join(repoRoot, "bench", "node")
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node sdk-e2e.mjs: %v\nstderr:\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("the SDK complained:\n%s", stderr.String())
	}
	var out sdkOutput
	dec := json.NewDecoder(&stdout)
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("decoding sdk-e2e.mjs output: %v\n%s", err, stdout.String())
	}
	for _, run := range []sdkRun{out.Remote, out.RemoteClient, out.Local} {
		if len(run.Identities) != len(d.cases) {
			t.Fatalf("sdk-e2e.mjs returned %d identities, want %d", len(run.Identities), len(d.cases))
		}
	}
	return out
}

// fledgeEval runs `fledge eval` on a document: environment flags when c is
// nil, else the identity's flags (both as seen with a server-side key).
func fledgeEval(t *testing.T, docPath string, c *identityCase) map[string]flagState {
	t.Helper()
	args := []string{"eval", "--environment", docPath}
	if c != nil {
		args = append(args, "--identity", c.Identifier, "--traits", string(marshal(t, c.traitList())))
	}
	cmd := exec.Command(fledgeBin, args...)
	cmd.Env = cleanEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("fledge %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var flags []json.RawMessage
	if c == nil {
		err = json.Unmarshal(stdout, &flags)
	} else {
		var body struct {
			Identifier string            `json:"identifier"`
			Flags      []json.RawMessage `json:"flags"`
		}
		err = json.Unmarshal(stdout, &body)
		flags = body.Flags
		if err == nil && body.Identifier != c.Identifier {
			t.Fatalf("fledge eval answered for identifier %q, want %q", body.Identifier, c.Identifier)
		}
	}
	if err != nil {
		t.Fatalf("fledge eval output: %v\n%s", err, stdout)
	}
	out := map[string]flagState{}
	for _, f := range flags {
		var item struct {
			Feature struct {
				Name string `json:"name"`
			} `json:"feature"`
			Enabled bool `json:"enabled"`
			Value   any  `json:"feature_state_value"`
		}
		dec := json.NewDecoder(bytes.NewReader(f))
		dec.UseNumber()
		if err := dec.Decode(&item); err != nil {
			t.Fatal(err)
		}
		out[item.Feature.Name] = flagState{item.Enabled, item.Value}
	}
	return out
}

// clientView filters server-key flags to what a client key sees (api.md
// §2.8).
func clientView(d *document, flags map[string]flagState) map[string]flagState {
	ids := map[string]int64{}
	for _, fs := range d.FeatureStates {
		ids[fs.Feature.Name] = fs.Feature.ID
	}
	out := map[string]flagState{}
	for name, f := range flags {
		if d.visible(false, ids[name], f.Enabled) {
			out[name] = f
		}
	}
	return out
}

// flagDiff lists the flags that differ.
func flagDiff(got, want map[string]flagState) string {
	var b strings.Builder
	names := map[string]bool{}
	for n := range got {
		names[n] = true
	}
	for n := range want {
		names[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		g, gok := got[n]
		w, wok := want[n]
		if gok != wok || !reflect.DeepEqual(g, w) {
			fmt.Fprintf(&b, "  %s: got %s, want %s\n", n, showFlag(g, gok), showFlag(w, wok))
		}
	}
	return b.String()
}

func showFlag(f flagState, ok bool) string {
	if !ok {
		return "(absent)"
	}
	return fmt.Sprintf("enabled=%v value=%v", f.Enabled, f.Value)
}
