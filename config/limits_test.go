package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "env.json")
	garbage := filepath.Join(dir, "garbage.pem")
	for _, p := range []string{doc, garbage} {
		if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, MaxFileBytes+1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		c    Config
		want string // "" for no error
	}{
		{"existing environments file", Config{Environments: []string{doc}}, ""},
		{"missing environments file", Config{Environments: []string{doc, missing}}, "config: environments[1]: cannot read " + missing + ": no such file or directory"},
		{"endless environments file", Config{Environments: []string{"/dev/zero"}}, "config: environments[0]: /dev/zero is not a regular file"},
		{"environments file over 32 MiB", Config{Environments: []string{big}}, "config: environments[0]: " + big + " is larger than 32 MiB"},
		{"environments directory", Config{Environments: []string{dir}}, "is not a regular file"},
		{"missing tls_cert", Config{Server: Server{TLSCert: missing, TLSKey: garbage}}, "config: server.tls_cert: cannot read " + missing},
		{"missing tls_key", Config{Server: Server{TLSCert: garbage, TLSKey: missing}}, "config: server.tls_key: cannot read " + missing},
		{"unusable certificate", Config{Server: Server{TLSCert: garbage, TLSKey: garbage}}, "config: server.tls_cert/server.tls_key: not a usable certificate and key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.CheckFiles()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"ordinary pair", `{"environment_key_pairs":[{"server_side_key":"ser.abc","client_side_key":"abc"}]}`, nil},
		{"no environments", `{"environment_key_pairs":[]}`, []string{"environment_key_pairs is empty and no environments file is set: every SDK request will get 401"}},
		{"offline only", `{"environments":["a.json"]}`, nil},
		{"ser. client key", `{"environment_key_pairs":[{"server_side_key":"ser.abc","client_side_key":"ser.def"}]}`, []string{`environment_key_pairs[0]: client_side_key starts with "ser."`}},
		{"client key is the server key", `{"environment_key_pairs":[{"server_side_key":"ser.abc","client_side_key":"ser.abc"}]}`, []string{"environment_key_pairs[0]: client_side_key is the server_side_key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustLoad(t, tt.file).Warnings()
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %d warnings like %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("warning %d: got %q, want it to start %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}
