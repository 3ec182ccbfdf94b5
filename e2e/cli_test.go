package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/internal/fakeapi"
)

// runFledge runs fledge with args and extra environment variables, and
// returns its exit code, stdout and stderr. It must finish within limit.
func runFledge(t *testing.T, limit time.Duration, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, fledgeBin, args...)
	cmd.Env = cleanEnv(env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("fledge %s still running after %v\nstderr:\n%s", strings.Join(args, " "), limit, stderr.String())
	}
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("running fledge: %v", err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestConfigErrors: invalid configuration stops start-up at once with exit
// status 2 and a message naming the setting (README "Settings").
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	valid := func() config {
		return config{
			"environment_key_pairs": []keyPair{{"ser.configServerKey0001", "configClientKey0000001"}},
			"api_url":               "http://127.0.0.1:9/api/v1",
			"server":                map[string]any{"host": "127.0.0.1", "port": freePort(t)},
		}
	}
	pairs := func(server, client string) func(config) {
		return func(c config) { c["environment_key_pairs"] = []keyPair{{server, client}} }
	}
	for _, tc := range []struct {
		name    string
		edit    func(config) // applied to a valid configuration
		file    string       // raw file contents instead of a configuration
		env     []string
		setting string // must appear in stderr
	}{
		{name: "server key without ser.", edit: pairs("configServerKey0001", "configClientKey0000001"),
			setting: "environment_key_pairs[0].server_side_key"},
		{name: "blank server key", edit: pairs("", "configClientKey0000001"),
			setting: "environment_key_pairs[0].server_side_key"},
		{name: "empty client key", edit: pairs("ser.configServerKey0001", ""),
			setting: "environment_key_pairs[0].client_side_key"},
		{name: "unknown log level", edit: func(c config) { c["logging"] = map[string]any{"log_level": "LOUD"} },
			setting: "logging.log_level"},
		{name: "malformed api_url", edit: func(c config) { c["api_url"] = "http://flag smith.example.com/api/v1" },
			setting: "api_url"},
		{name: "api_url without scheme", edit: func(c config) { c["api_url"] = "flagsmith.example.com/api/v1" },
			setting: "api_url"},
		{name: "invalid JSON", file: `{"environment_key_pairs": [{"server_side_key": "ser.x", "client_side_key": "y"}],`,
			setting: "config.json"},
		{name: "env API_POLL_FREQUENCY_SECONDS=-1", env: []string{"API_POLL_FREQUENCY_SECONDS=-1"},
			setting: "api_poll_frequency_seconds"},
		{name: "env LOGGING with unknown level", env: []string{`LOGGING={"log_level":"LOUD"}`},
			setting: "logging.log_level"},
		{name: "env lower-case api_url", env: []string{"api_url=ftp://flagsmith.example.com/api/v1"},
			setting: "api_url"},
		{name: "debug address without port", edit: func(c config) { c.section("server")["debug_address"] = "127.0.0.1" },
			setting: "server.debug_address"},
		{name: "poll frequency under a second", edit: func(c config) { c["api_poll_frequency_seconds"] = 0.001 },
			setting: "api_poll_frequency_seconds"},
		{name: "missing tls_cert file", edit: func(c config) {
			c.section("server")["tls_cert"] = "/nonexistent/cert.pem"
			c.section("server")["tls_key"] = "/nonexistent/key.pem"
		}, setting: "server.tls_cert"},
		{name: "missing environments file", edit: func(c config) { c["environments"] = []string{"/nonexistent/env.json"} },
			setting: "environments[0]"},
		{name: "endless environments file", edit: func(c config) { c["environments"] = []string{"/dev/zero"} },
			setting: "environments[0]"},
		{name: "absurd identity cache", edit: func(c config) {
			c["endpoint_caches"] = map[string]any{"identities": map[string]any{"use_cache": true, "cache_max_size": 1e8}}
		}, setting: "endpoint_caches.identities.cache_max_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var path string
			if tc.file != "" {
				path = filepath.Join(t.TempDir(), "config.json")
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				c := valid()
				if tc.edit != nil {
					tc.edit(c)
				}
				path = c.write(t)
			}
			code, stdout, stderr := runFledge(t, 5*time.Second, tc.env, "proxy", "--config", path)
			if code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			if !strings.Contains(stderr, tc.setting) {
				t.Errorf("stderr does not name %s:\n%s", tc.setting, stderr)
			}
			// Key values stay out of messages: they end up in logs.
			for _, key := range []string{"configServerKey0001", "configClientKey0000001"} {
				if strings.Contains(stdout+stderr, key) {
					t.Errorf("output shows the key %s:\n%s%s", key, stdout, stderr)
				}
			}
		})
	}

	// The same configuration, valid, does start: the cases above fail for
	// the reason they name.
	t.Run("valid baseline", func(t *testing.T) {
		t.Parallel()
		code, stdout, stderr := runFledge(t, 5*time.Second, nil, "proxy", "--config", valid().write(t), "--print-config")
		if code != 0 {
			t.Errorf("valid configuration: exit %d\n%s%s", code, stdout, stderr)
		}
	})
}

// TestPrintConfig: --print-config shows the effective configuration with
// defaults filled in and keys redacted, then exits.
func TestPrintConfig(t *testing.T) {
	t.Parallel()
	const (
		serverKey = "ser.printServerKey00001"
		clientKey = "printClientKey00000001"
		password  = "hunter2-e2e"
	)
	path := config{
		"environment_key_pairs": []keyPair{{serverKey, clientKey}},
		"api_url":               "https://proxyuser:" + password + "@flagsmith.example.com/api/v1",
	}.write(t)
	code, stdout, stderr := runFledge(t, 5*time.Second, []string{"API_POLL_TIMEOUT_SECONDS=7"},
		"proxy", "--config", path, "--print-config")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, secret := range []string{serverKey, clientKey, serverKey[4:], password} {
		if strings.Contains(stdout, secret) {
			t.Errorf("--print-config shows %q:\n%s", secret, stdout)
		}
	}
	var got struct {
		Pairs         []keyPair `json:"environment_key_pairs"`
		APIURL        string    `json:"api_url"`
		PollFrequency float64   `json:"api_poll_frequency_seconds"`
		PollTimeout   float64   `json:"api_poll_timeout_seconds"`
		AllowOrigins  []string  `json:"allow_origins"`
		Server        struct {
			Host         string  `json:"host"`
			Port         int     `json:"port"`
			KeepAlive    float64 `json:"timeout_keep_alive"`
			MaxBodyBytes int64   `json:"max_body_bytes"`
		} `json:"server"`
		HealthCheck struct {
			Grace *float64 `json:"environment_update_grace_period_seconds"`
		} `json:"health_check"`
		Logging struct {
			Level     string `json:"log_level"`
			Format    string `json:"log_format"`
			AccessLog bool   `json:"enable_access_log"`
		} `json:"logging"`
		EndpointCaches struct {
			Flags struct {
				UseCache     bool `json:"use_cache"`
				CacheMaxSize int  `json:"cache_max_size"`
			} `json:"flags"`
		} `json:"endpoint_caches"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("--print-config output is not JSON: %v\n%s", err, stdout)
	}
	if len(got.Pairs) != 1 || got.Pairs[0].Server == "" || got.Pairs[0].Client == "" {
		t.Errorf("environment_key_pairs = %+v, want one pair, redacted", got.Pairs)
	}
	// Defaults of Flagsmith's edge proxy (api.md §2.9, README "Settings"),
	// and the environment variable over the file.
	checks := []struct {
		name      string
		got, want any
	}{
		{"api_poll_frequency_seconds", got.PollFrequency, 10.0},
		{"api_poll_timeout_seconds (from the environment)", got.PollTimeout, 7.0},
		{"allow_origins", got.AllowOrigins, []string{"*"}},
		{"server.host", got.Server.Host, "0.0.0.0"},
		{"server.port", got.Server.Port, 8000},
		{"server.timeout_keep_alive", got.Server.KeepAlive, 5.0},
		{"server.max_body_bytes", got.Server.MaxBodyBytes, int64(1 << 20)},
		{"health_check.environment_update_grace_period_seconds", deref(got.HealthCheck.Grace), 30.0},
		{"logging.log_level", got.Logging.Level, "INFO"},
		{"logging.log_format", got.Logging.Format, "generic"},
		{"logging.enable_access_log", got.Logging.AccessLog, false},
		{"endpoint_caches.flags", []any{got.EndpointCaches.Flags.UseCache, got.EndpointCaches.Flags.CacheMaxSize}, []any{false, 128}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if !strings.HasPrefix(got.APIURL, "https://") || !strings.HasSuffix(got.APIURL, "@flagsmith.example.com/api/v1") {
		t.Errorf("api_url = %q, want the configured URL with its password masked", got.APIURL)
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// TestGracefulShutdown: on SIGTERM the proxy stops accepting, finishes the
// request in flight, logs the shutdown and exits 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	e := exampleEnv(t)
	api := fakeapi.New()
	t.Cleanup(api.Close)
	px := startProxy(t, baseConfig(api, serve(api, e)...))

	// A request in flight: headers and half of the body sent, the rest to
	// follow after the signal. A first request on the same connection makes
	// sure the server has accepted it.
	conn, err := net.Dial("tcp", strings.TrimPrefix(px.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	reader := bufio.NewReader(conn)
	if _, err := io.WriteString(conn, "GET /proxy/health/liveness HTTP/1.1\r\nHost: fledge\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(reader, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %v %v", resp, err)
	}
	body := []byte(`{"identifier":"qa-alice","traits":[{"trait_key":"plan","trait_value":"beta"}]}`)
	head := "POST /api/v1/identities/ HTTP/1.1\r\nHost: fledge\r\nContent-Type: application/json\r\n" +
		"X-Environment-Key: " + e.keys.Client + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head+string(body[:len(body)/2])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the server read the headers

	px.signal(t, syscall.SIGTERM)
	eventually(t, 5*time.Second, func() string {
		if !strings.Contains(px.stderr.String(), "shutting down") {
			return "no shutdown message logged"
		}
		return ""
	})
	select {
	case <-px.done:
		t.Fatalf("fledge exited (%s) with a request in flight", px.exitStatus())
	default:
	}
	if _, err := conn.Write(body[len(body)/2:]); err != nil {
		t.Fatalf("finishing the in-flight request: %v", err)
	}
	resp, err := http.ReadResponse(reader, nil)
	if err != nil {
		t.Fatalf("in-flight request got no response: %v", err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(got, []byte(`{"identifier":"qa-alice","flags":[`)) {
		t.Errorf("in-flight request: %d %s", resp.StatusCode, got)
	}

	if code := px.waitExit(t, 5*time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(px.URL, "http://"), time.Second); err == nil {
		t.Error("still accepting connections after exit")
	}
	logged := false
	for line := range strings.Lines(px.stderr.String()) {
		logged = logged || strings.Contains(line, "/api/v1/identities/") && strings.Contains(line, "200")
	}
	if !logged {
		t.Errorf("the access log has no line for the in-flight request:\n%s", px.stderr.String())
	}
}

// TestDebugAddressTaken: a diagnostics address that cannot be bound stops
// start-up with a message naming the setting, like the main listener.
func TestDebugAddressTaken(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	c := config{
		"environment_key_pairs": []keyPair{{"ser.configServerKey0001", "configClientKey0000001"}},
		"api_url":               "http://127.0.0.1:9/api/v1",
		"server":                map[string]any{"host": "127.0.0.1", "port": freePort(t), "debug_address": taken.Addr().String()},
	}
	code, _, stderr := runFledge(t, 5*time.Second, nil, "proxy", "--config", c.write(t))
	if code != 1 || !strings.Contains(stderr, "server.debug_address") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}
