// Package dynalite runs dynalite, a DynamoDB implementation in Node.js, for
// tests: Start launches it on a free loopback port and stops it when the
// test ends. It needs node on PATH and the npm package installed under
// bench/node (`make node-deps`); without them the test fails, naming what
// to install, rather than skipping.
//
// StartServer returns a Server that can also be stopped abruptly (as a
// region outage) and restarted on the same port, optionally keeping its
// tables on disk across the restart, or paused (as a DynamoDB that stops
// answering) and resumed.
package dynalite

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	return StartServer(tb, Options{}).Endpoint
}

// Options configure StartServer.
type Options struct {
	// Persist keeps the tables in a LevelDB directory under tb.TempDir(),
	// so that they survive Stop and Restart; otherwise they are in memory
	// and a restart starts empty.
	Persist bool
}

// Server is a running (or stopped) dynalite.
type Server struct {
	// Endpoint is http://127.0.0.1:PORT; it stays the same across restarts.
	Endpoint string

	tb      testing.TB
	node    string
	script  string
	nodeDir string
	dataDir string
	port    string

	mu   sync.Mutex
	proc *process // nil while stopped
}

type process struct {
	cmd    *exec.Cmd
	stdin  io.Closer
	exited chan struct{}
}

// StartServer runs dynalite; it is stopped by t.Cleanup.
func StartServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	root, err := repoRoot()
	if err != nil {
		tb.Fatalf("dynalite: %v", err)
	}
	node, nodeDir, err := requirements(root, exec.LookPath)
	if err != nil {
		tb.Fatalf("dynalite: %v", err)
	}
	s := &Server{
		tb:      tb,
		node:    node,
		script:  filepath.Join(root, "internal", "dynalite", "server.cjs"),
		nodeDir: nodeDir,
		port:    "0",
	}
	if opts.Persist {
		s.dataDir = filepath.Join(tb.TempDir(), "dynalite")
	}
	tb.Cleanup(s.shutdown)
	if err := s.start(); err != nil {
		tb.Fatalf("dynalite: %v", err)
	}
	s.Endpoint = "http://127.0.0.1:" + s.port
	return s
}

// Stop kills dynalite at once (SIGKILL), as a crash or a network partition
// would end it: open connections are reset and new ones refused.
func (s *Server) Stop() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.cmd.Process.Kill()
	<-s.proc.exited
	_ = s.proc.stdin.Close()
	s.proc = nil
}

// Pause freezes dynalite (SIGSTOP): connections are still accepted by the
// kernel, but nothing answers, as with a DynamoDB that times out.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume lets a paused dynalite run again (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig os.Signal) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		s.tb.Fatalf("dynalite: signalling a stopped server")
	}
	if err := s.proc.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("dynalite: %v", err)
	}
}

// Restart starts a stopped dynalite again on the same port; with
// Options.Persist its tables and items are back.
func (s *Server) Restart() {
	s.tb.Helper()
	if err := s.start(); err != nil {
		s.tb.Fatalf("dynalite: restarting: %v", err)
	}
}

// Client returns a client for the server (see Client).
func (s *Server) Client() *dynamodb.Client { return Client(s.Endpoint) }

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return fmt.Errorf("already running")
	}
	args := []string{s.script, s.nodeDir, s.port}
	if s.dataDir != "" {
		args = append(args, s.dataDir)
	}
	cmd := exec.Command(s.node, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting node: %w", err)
	}
	p := &process{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()

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
	case got := <-port:
		if _, err := strconv.Atoi(got); err != nil {
			_ = cmd.Process.Kill()
			return fmt.Errorf("unexpected port %q", got)
		}
		s.port = got
		s.proc = p
		return nil
	case <-p.exited:
		return fmt.Errorf("node exited before listening (see its output above); run `make node-deps`")
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		return fmt.Errorf("not listening after %v", startTimeout)
	}
}

// shutdown ends the process gently: the script exits when its input closes.
func (s *Server) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.cmd.Process.Signal(syscall.SIGCONT) // in case it is paused
	_ = s.proc.stdin.Close()
	select {
	case <-s.proc.exited:
	case <-time.After(5 * time.Second):
		_ = s.proc.cmd.Process.Kill()
		<-s.proc.exited
	}
	s.proc = nil
}

// Client returns a DynamoDB client for endpoint with dummy static
// credentials, independent of the machine's AWS configuration, with
// optFns applied.
func Client(endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("fledge", "fledge", ""),
	}, optFns...)
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
