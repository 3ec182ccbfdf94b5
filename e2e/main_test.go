// Package e2e runs the real fledge binary as a subprocess against a stand-in
// Flagsmith API (internal/fakeapi) and checks what clients see over HTTP:
// the wire contract of shared/spec/api.md §1–§2, configuration errors,
// polling, health and shutdown, and agreement with the Flagsmith Node SDK.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var (
	// repoRoot is the module root (the parent of this package).
	repoRoot string
	// fledgeBin is the binary built once for the whole package.
	fledgeBin string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := filepath.Abs("..")
	if err == nil {
		_, err = os.Stat(filepath.Join(root, "go.mod"))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot find the module root: %v\n", err)
		return 1
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "fledge-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	fledgeBin = filepath.Join(dir, "fledge")
	build := exec.Command("go", "build", "-o", fledgeBin, "./cmd/fledge")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/fledge: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// cleanEnv is the environment of every subprocess. Fledge reads its
// settings from environment variables too (case-insensitively), so the
// tests' own environment must not leak into it: only what a program needs
// to run is passed on.
func cleanEnv(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	if home := os.Getenv("HOME"); home != "" {
		env = append(env, "HOME="+home)
	}
	return append(env, extra...)
}
