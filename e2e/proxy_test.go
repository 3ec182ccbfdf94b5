package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/internal/fakeapi"
)

const (
	readinessPath = "/proxy/health/readiness"
	livenessPath  = "/proxy/health/liveness"

	// startTimeout bounds how long a proxy may take to listen (and, when
	// asked, to become ready). Start-up is normally tens of milliseconds.
	startTimeout = 10 * time.Second
	// pollSeconds is the poll interval of proxies whose tests watch polling:
	// the shortest api_poll_frequency_seconds accepted.
	pollSeconds = 1.0
)

// keyPair is one environment_key_pairs entry.
type keyPair struct {
	Server string `json:"server_side_key"`
	Client string `json:"client_side_key"`
}

// config is a fledge config.json, as a JSON object.
type config map[string]any

// baseConfig polls api every pollSeconds for the given environments; start
// fills in server.port. Tests adjust the map before starting the proxy.
func baseConfig(api *fakeapi.Server, pairs ...keyPair) config {
	return config{
		"environment_key_pairs":      pairs,
		"api_url":                    api.URL(),
		"api_poll_frequency_seconds": pollSeconds,
		"api_poll_timeout_seconds":   2,
		"server":                     map[string]any{"host": "127.0.0.1"},
		"health_check":               map[string]any{"environment_update_grace_period_seconds": 30},
		"logging":                    map[string]any{"enable_access_log": true},
	}
}

// section returns the nested object cfg[name], creating it if needed.
func (c config) section(name string) map[string]any {
	m, ok := c[name].(map[string]any)
	if !ok {
		m = map[string]any{}
		c[name] = m
	}
	return m
}

// write stores the configuration as JSON in a fresh file and returns its path.
func (c config) write(t *testing.T) string {
	t.Helper()
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatalf("encoding config: %v", err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncBuffer collects a subprocess's output while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proxy is a running `fledge proxy` subprocess.
type proxy struct {
	URL    string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's result, set before done is closed
}

// startProxy runs fledge with cfg and waits until readiness answers 200.
func startProxy(t *testing.T, cfg config) *proxy {
	t.Helper()
	return startProxyWaiting(t, cfg, readinessPath)
}

// startProxyWaiting runs fledge with cfg and waits until path answers 200:
// readinessPath for a proxy that has its documents, livenessPath for one
// that is only expected to listen. The process is killed when the test ends,
// and its stderr is logged if the test failed.
func startProxyWaiting(t *testing.T, cfg config, path string) *proxy {
	t.Helper()
	return startRole(t, "proxy", cfg, path)
}

// startRole runs `fledge ROLE` with cfg and waits until path answers 200.
func startRole(t *testing.T, role string, cfg config, path string) *proxy {
	t.Helper()
	return startRoleEnv(t, role, cfg, path)
}

// startRoleEnv is startRole with extra environment variables.
func startRoleEnv(t *testing.T, role string, cfg config, path string, env ...string) *proxy {
	t.Helper()
	// The port is picked by binding and releasing it, so another process may
	// grab it in between; a start that fails that way is retried.
	for attempt := 1; ; attempt++ {
		p, err := launch(t, role, cfg, freePort(t), path, env)
		if err == nil {
			return p
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatalf("starting fledge %s: %v", role, err)
		}
	}
}

var errPortTaken = errors.New("port taken")

func launch(t *testing.T, role string, cfg config, port int, path string, env []string) (*proxy, error) {
	t.Helper()
	cfg = maps.Clone(cfg)
	server := maps.Clone(cfg.section("server"))
	server["port"] = port
	cfg["server"] = server
	p := &proxy{
		URL:    "http://127.0.0.1:" + strconv.Itoa(port),
		cmd:    exec.Command(fledgeBin, role, "--config", cfg.write(t)),
		stderr: &syncBuffer{},
		done:   make(chan struct{}),
	}
	p.cmd.Env = cleanEnv(env...)
	p.cmd.Stdout = p.stderr // fledge logs to stderr; stdout should stay empty
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("fledge %s (%s) output:\n%s", role, p.URL, p.stderr.String())
		}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-p.done:
			out := p.stderr.String()
			if strings.Contains(out, "address already in use") {
				return nil, errPortTaken
			}
			return nil, errors.New("fledge exited before answering " + path + ": " + p.exitStatus() + "\n" + out)
		default:
		}
		resp, err := http.Get(p.URL + path)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, errors.New("fledge did not answer 200 on " + path + " within " + startTimeout.String() +
				" (last: " + describe(resp, err) + ")\n" + p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describe(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// kill stops the process if it is still running and waits for it.
func (p *proxy) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// signal sends sig to the process.
func (p *proxy) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling fledge: %v", err)
	}
}

// waitExit waits up to d for the process to exit and reports its exit code
// (-1 if it was killed by a signal).
func (p *proxy) waitExit(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("fledge still running %v after being asked to stop", d)
		return 0
	}
}

func (p *proxy) exitStatus() string {
	if p.err == nil {
		return "exit status 0"
	}
	return p.err.Error()
}

// client never follows redirects (the proxy must not send any) and never
// decompresses, so tests see Content-Encoding and the raw bytes.
var client = &http.Client{
	Transport: &http.Transport{DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
	Timeout: 10 * time.Second,
}

// response is a completed HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// request builds a request to the proxy; key is sent as X-Environment-Key
// unless it is empty.
func (p *proxy) request(t *testing.T, method, path, key string, body []byte) *http.Request {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, p.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-Environment-Key", key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

func (p *proxy) do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL.Path, err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

func (p *proxy) get(t *testing.T, path, key string) response {
	t.Helper()
	return p.do(t, p.request(t, http.MethodGet, path, key, nil))
}

func (p *proxy) post(t *testing.T, path, key string, body []byte) response {
	t.Helper()
	return p.do(t, p.request(t, http.MethodPost, path, key, body))
}

// eventually retries check every 20ms until it returns "" or d passes, then
// fails with check's last complaint.
func eventually(t *testing.T, d time.Duration, check func() string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		msg := check()
		if msg == "" {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("not within %v: %s", d, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
