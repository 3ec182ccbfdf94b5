// Package deploy_test keeps the deployment files honest: every YAML file
// under deploy/ and examples/ is parsed, and what it says about Fledge
// (probe paths, ports, the metrics endpoint, where the config and the
// embedded store live) is checked against a real instance started from the
// configuration the file carries, so that files and server cannot drift.
package deploy_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/fledge-flags/fledge/app"
	"github.com/fledge-flags/fledge/config"
)

// The parts of Kubernetes objects the checks read.
type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	StringData map[string]string `json:"stringData"`
	Spec       struct {
		Template             *podTemplate `json:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"volumeClaimTemplates"`
		Ports []struct {
			Name       string `json:"name"`
			TargetPort any    `json:"targetPort"`
		} `json:"ports"`
		Selector map[string]any `json:"selector"`
	} `json:"spec"`
}

type podTemplate struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Containers []container `json:"containers"`
		Volumes    []struct {
			Name   string `json:"name"`
			Secret *struct {
				SecretName string `json:"secretName"`
			} `json:"secret"`
		} `json:"volumes"`
	} `json:"spec"`
}

type container struct {
	Name  string   `json:"name"`
	Args  []string `json:"args"`
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	Env []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"env"`
	LivenessProbe  *probe `json:"livenessProbe"`
	ReadinessProbe *probe `json:"readinessProbe"`
	VolumeMounts   []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
	} `json:"volumeMounts"`
}

type probe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port any    `json:"port"` // a name or a number
	} `json:"httpGet"`
}

func (c container) port(nameOrNumber any) (int, bool) {
	switch v := nameOrNumber.(type) {
	case string:
		for _, p := range c.Ports {
			if p.Name == v {
				return p.ContainerPort, true
			}
		}
	case float64:
		return int(v), true
	}
	return 0, false
}

// splitDocuments splits a multi-document YAML file.
func splitDocuments(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range strings.Split("\n"+string(b), "\n---") {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func yamlFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml", "../examples/*.yaml", "../examples/*.yml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 4 {
		t.Fatalf("only %d YAML files found: %v", len(files), files)
	}
	return files
}

// TestManifests checks every Kubernetes manifest.
func TestManifests(t *testing.T) {
	for _, file := range yamlFiles(t) {
		if strings.Contains(filepath.Base(file), "compose") {
			continue
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var objs []object
			for i, d := range splitDocuments(raw) {
				var o object
				if err := yaml.UnmarshalStrict(d, &o, yaml.DisallowUnknownFields); err != nil {
					// Strict decoding would need every Kubernetes field;
					// plain decoding still proves the YAML parses.
					if err := yaml.Unmarshal(d, &o); err != nil {
						t.Fatalf("document %d: %v", i, err)
					}
				}
				if o.Kind == "" {
					t.Fatalf("document %d has no kind", i)
				}
				objs = append(objs, o)
			}
			workloads := 0
			for _, o := range objs {
				if o.Spec.Template == nil {
					continue
				}
				workloads++
				checkWorkload(t, o, objs)
			}
			if workloads == 0 {
				t.Fatal("no workload (Deployment or StatefulSet) in the file")
			}
		})
	}
}

func checkWorkload(t *testing.T, o object, objs []object) {
	t.Helper()
	pod := o.Spec.Template
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", o.Metadata.Name, len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	role, cfgPath := roleAndConfig(t, c.Args)

	// The config comes from a Secret in the same file, mounted where
	// --config points.
	cfgText := ""
	for _, m := range c.VolumeMounts {
		if m.MountPath != path.Dir(cfgPath) {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			for _, s := range objs {
				if s.Kind == "Secret" && s.Metadata.Name == v.Secret.SecretName {
					cfgText = s.StringData[path.Base(cfgPath)]
				}
			}
		}
	}
	if cfgText == "" {
		t.Fatalf("%s: --config %s is not a Secret of this file mounted there", o.Metadata.Name, cfgPath)
	}
	var env []string
	for _, e := range c.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	cfg := loadConfig(t, cfgText, env)

	// The embedded store is on a volume of its own that outlives the pod.
	if role == app.API && cfg.Store.Type == "embedded" {
		if o.Kind != "StatefulSet" {
			t.Errorf("%s: the embedded store needs a StatefulSet, not a %s", o.Metadata.Name, o.Kind)
		}
		onClaim := false
		for _, m := range c.VolumeMounts {
			if isUnder(cfg.Store.Path, m.MountPath) {
				for _, vc := range o.Spec.VolumeClaimTemplates {
					onClaim = onClaim || vc.Metadata.Name == m.Name
				}
			}
		}
		if !onClaim {
			t.Errorf("%s: store.path %s is not on a volumeClaimTemplate's mount", o.Metadata.Name, cfg.Store.Path)
		}
	}

	// Ports: the http port is server.port; the metrics port, its
	// annotation and debug_address agree.
	httpPort, ok := c.port("http")
	if !ok || httpPort != cfg.Server.Port {
		t.Errorf("%s: container port http %d, server.port %d", o.Metadata.Name, httpPort, cfg.Server.Port)
	}
	ann := pod.Metadata.Annotations
	if ann["prometheus.io/scrape"] != "true" {
		t.Errorf("%s: no prometheus.io/scrape annotation", o.Metadata.Name)
	}
	metricsPort, _ := strconv.Atoi(ann["prometheus.io/port"])
	if p, ok := c.port("metrics"); !ok || p != metricsPort {
		t.Errorf("%s: prometheus.io/port %d, container port metrics %d", o.Metadata.Name, metricsPort, p)
	}
	_, debugPort, _ := net.SplitHostPort(cfg.Server.DebugAddress)
	if strconv.Itoa(metricsPort) != debugPort {
		t.Errorf("%s: prometheus.io/port %d, server.debug_address %q", o.Metadata.Name, metricsPort, cfg.Server.DebugAddress)
	}
	// Services target the pod's named ports.
	for _, s := range objs {
		if s.Kind != "Service" {
			continue
		}
		for _, sp := range s.Spec.Ports {
			if _, ok := c.port(sp.TargetPort); !ok {
				t.Errorf("Service %s: targetPort %v is not a port of %s", s.Metadata.Name, sp.TargetPort, o.Metadata.Name)
			}
			if sp.TargetPort == "metrics" {
				t.Errorf("Service %s exposes the diagnostics port", s.Metadata.Name)
			}
		}
	}

	// What the file says is served, is: probes on the main port, metrics
	// on the diagnostics one, by a real instance of the role.
	if c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Fatalf("%s: probes missing", o.Metadata.Name)
	}
	inst := start(t, role, cfg)
	for _, p := range []*probe{c.LivenessProbe, c.ReadinessProbe} {
		port, ok := c.port(p.HTTPGet.Port)
		if !ok || port != cfg.Server.Port {
			t.Errorf("%s: probe %s on port %v, not server.port", o.Metadata.Name, p.HTTPGet.Path, p.HTTPGet.Port)
		}
		inst.get(t, inst.main, p.HTTPGet.Path, "")
	}
	if p := c.ReadinessProbe.HTTPGet.Path; p == c.LivenessProbe.HTTPGet.Path {
		t.Errorf("%s: liveness and readiness both probe %s", o.Metadata.Name, p)
	}
	inst.get(t, inst.debug, ann["prometheus.io/path"], "fledge_http_requests_total")
}

func roleAndConfig(t *testing.T, args []string) (app.Role, string) {
	t.Helper()
	if len(args) == 0 {
		t.Fatal("container has no args (the role)")
	}
	role := app.Role(args[0])
	if role != app.Proxy && role != app.API {
		t.Fatalf("role %q", args[0])
	}
	i := slices.Index(args, "--config")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("args %v: no --config", args)
	}
	return role, args[i+1]
}

func isUnder(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

func loadConfig(t *testing.T, text string, env []string) *config.Config {
	t.Helper()
	f := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f, env)
	if err != nil {
		t.Fatalf("the file's configuration does not load: %v", err)
	}
	if len(cfg.Unknown) > 0 {
		t.Errorf("unknown settings: %v", cfg.Unknown)
	}
	return cfg
}

// instance is a running role on loopback listeners.
type instance struct{ main, debug string }

// start runs the role with cfg, except what needs the outside world: the
// example environment is served from its file (no upstream), and the store
// is an embedded one in a temporary directory (no AWS). Routes, probes and
// the metrics listener are the role's own.
func start(t *testing.T, role app.Role, cfg *config.Config) instance {
	t.Helper()
	example, err := filepath.Abs("../examples/environment.json")
	if err != nil {
		t.Fatal(err)
	}
	c := *cfg
	c.Environments = []string{example}
	c.EnvironmentKeyPairs = nil
	c.Store.Type, c.Store.Path = "embedded", filepath.Join(t.TempDir(), "store")
	mainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	debugLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, role, &c, app.Listeners{Main: mainLn, Debug: debugLn}, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("fledge %s: %v", role, err)
		}
	})
	return instance{main: "http://" + mainLn.Addr().String(), debug: "http://" + debugLn.Addr().String()}
}

// get wants 200 (and contains in the body) from base+p, retrying while the
// instance starts.
func (inst instance) get(t *testing.T, base, p, contains string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(base + p)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), contains) {
				return
			}
			err = errors.New(resp.Status + " " + string(body[:min(len(body), 200)]))
		}
		if time.Now().After(deadline) {
			t.Errorf("GET %s: %v", p, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCompose checks examples/docker-compose.yml: fledge api on the
// example config, the store on a volume, ports and health check matching
// the server's.
func TestCompose(t *testing.T) {
	raw, err := os.ReadFile("../examples/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command     []string          `json:"command"`
			WorkingDir  string            `json:"working_dir"`
			Environment map[string]string `json:"environment"`
			Ports       []string          `json:"ports"`
			Volumes     []string          `json:"volumes"`
			Healthcheck struct {
				Test []string `json:"test"`
			} `json:"healthcheck"`
		} `json:"services"`
		Volumes map[string]any `json:"volumes"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	svc, ok := compose.Services["fledge"]
	if !ok {
		t.Fatal("no fledge service")
	}
	role, cfgPath := roleAndConfig(t, svc.Command)
	if role != app.API {
		t.Errorf("role %s, want api", role)
	}
	// The config path is inside a bind mount of this directory.
	local := ""
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && isUnder(cfgPath, parts[1]) && strings.HasPrefix(parts[0], ".") {
			rel, _ := filepath.Rel(parts[1], cfgPath)
			local = filepath.Join("../examples", parts[0], rel)
		}
	}
	cfgText, err := os.ReadFile(local)
	if local == "" || err != nil {
		t.Fatalf("--config %s is not a file of examples/ mounted in the container (%v)", cfgPath, err)
	}
	var env []string
	for k, v := range svc.Environment {
		env = append(env, k+"="+v)
	}
	cfg := loadConfig(t, string(cfgText), env)
	// Offline files are relative to the working directory.
	for _, f := range cfg.Environments {
		p := f
		if !path.IsAbs(p) {
			p = path.Join(svc.WorkingDir, p)
		}
		found := false
		for _, v := range svc.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && isUnder(p, parts[1]) {
				rel, _ := filepath.Rel(parts[1], p)
				_, err := os.Stat(filepath.Join("../examples", parts[0], rel))
				found = err == nil
			}
		}
		if !found {
			t.Errorf("environments file %s is not mounted", f)
		}
	}
	// The store is on a named volume.
	onVolume := false
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if _, named := compose.Volumes[parts[0]]; named && len(parts) >= 2 && isUnder(cfg.Store.Path, parts[1]) {
			onVolume = true
		}
	}
	if cfg.Store.Type != "embedded" || !onVolume {
		t.Errorf("store %s at %s is not on a named volume", cfg.Store.Type, cfg.Store.Path)
	}
	published := map[string]bool{}
	for _, p := range svc.Ports {
		_, container, _ := strings.Cut(p, ":")
		published[container] = true
	}
	_, debugPort, _ := net.SplitHostPort(cfg.Server.DebugAddress)
	if !published[strconv.Itoa(cfg.Server.Port)] || !published[debugPort] {
		t.Errorf("ports %v do not publish server.port %d and the metrics port %s", svc.Ports, cfg.Server.Port, debugPort)
	}
	// The health check probes readiness on the server's port.
	i := slices.Index(svc.Healthcheck.Test, "--url")
	if i < 0 || i+1 >= len(svc.Healthcheck.Test) || svc.Healthcheck.Test[1] != "/usr/local/bin/fledge" {
		t.Fatalf("health check %v: want fledge health --url", svc.Healthcheck.Test)
	}
	u := svc.Healthcheck.Test[i+1]
	wantPrefix := "http://127.0.0.1:" + strconv.Itoa(cfg.Server.Port) + "/"
	if !strings.HasPrefix(u, wantPrefix) {
		t.Errorf("health check URL %s, want %s…", u, wantPrefix)
	}
	inst := start(t, role, cfg)
	inst.get(t, inst.main, strings.TrimPrefix(u, wantPrefix[:len(wantPrefix)-1]), `"status":"ok"`)
	inst.get(t, inst.debug, "/metrics", "fledge_environment_document_loaded")
}
