// Package dynalite runs dynalite, a DynamoDB implementation in Node.js, for
// tests: Start launches it on a free loopback port and stops it when the
// test ends. It needs node on PATH and the npm package installed under
// bench/node (`make node-deps`); without them the test fails, naming what
// to install, rather than skipping.
package dynalite

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// startTimeout bounds how long dynalite may take to start listening.
const startTimeout = 30 * time.Second

// Start runs a fresh, empty dynalite and returns its endpoint URL
// (http://127.0.0.1:PORT). It is stopped by t.Cleanup.
func Start(tb testing.TB) string {
	tb.Helper()
	root, err := repoRoot()
	if err != nil {
		tb.Fatalf("dynalite: %v", err)
	}
	node, nodeDir, err := requirements(root, exec.LookPath)
	if err != nil {
		tb.Fatalf("dynalite: %v", err)
	}
	cmd := exec.Command(node, filepath.Join(root, "internal", "dynalite", "server.cjs"), nodeDir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatalf("dynalite: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("dynalite: %v", err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("dynalite: starting node: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = stdin.Close() // the script exits when its input closes
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				port <- p
				break
			}
		}
		for sc.Scan() { // drain, so the child never blocks on a full pipe
		}
	}()
	select {
	case p := <-port:
		return "http://127.0.0.1:" + p
	case <-exited:
		tb.Fatalf("dynalite: node exited before listening (see its output above); run `make node-deps`")
	case <-time.After(startTimeout):
		tb.Fatalf("dynalite: not listening after %v", startTimeout)
	}
	return ""
}

// Client returns a DynamoDB client for endpoint with dummy static
// credentials, independent of the machine's AWS configuration.
func Client(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("fledge", "fledge", ""),
	})
}

// requirements finds node and the directory whose node_modules holds
// dynalite, or says in one line what to install.
func requirements(root string, lookPath func(string) (string, error)) (node, nodeDir string, err error) {
	node, err = lookPath("node")
	if err != nil {
		return "", "", fmt.Errorf("node not found (%v): install Node.js 20 or later, then run `make node-deps`", err)
	}
	nodeDir = filepath.Join(root, "bench", "node")
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "dynalite", "package.json")); err != nil {
		return "", "", fmt.Errorf("the npm package dynalite is not installed (%v): run `make node-deps`", err)
	}
	return node, nodeDir, nil
}

// repoRoot finds the module root from the working directory (go test runs
// each package in its own directory).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
