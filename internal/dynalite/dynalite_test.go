package dynalite

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestRequirements(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	found := func(string) (string, error) { return "/usr/bin/node", nil }
	missing := func(string) (string, error) { return "", errors.New("executable file not found in $PATH") }
	cases := []struct {
		name     string
		root     string
		lookPath func(string) (string, error)
		want     string // "" for success, else a fragment of the one-line error
	}{
		{"node missing", root, missing, "install Node.js 20 or later, then run `make node-deps`"},
		{"package missing", t.TempDir(), found, "dynalite is not installed"},
		{"installed", root, found, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := requirements(tc.root, tc.lookPath)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("requirements: %v (run `make node-deps` first)", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n")):
				t.Fatalf("requirements = %v; want one line containing %q", err, tc.want)
			}
		})
	}
}

func TestStart(t *testing.T) {
	ep := Start(t)
	if !strings.HasPrefix(ep, "http://127.0.0.1:") {
		t.Fatalf("endpoint %q is not on loopback", ep)
	}
	if _, err := Client(ep).ListTables(context.Background(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("ListTables: %v", err)
	}
}

// TestStopRestart: a stopped server refuses connections; restarted, it
// listens on the same endpoint, and with Persist its tables are back.
func TestStopRestart(t *testing.T) {
	s := StartServer(t, Options{Persist: true})
	ctx := context.Background()
	c := s.Client()
	name := "persisted"
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            &name,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	s.Stop()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := c.ListTables(short, &dynamodb.ListTablesInput{}); err == nil {
		t.Fatal("ListTables succeeded on a stopped server")
	}
	ep := s.Endpoint
	s.Restart()
	if s.Endpoint != ep {
		t.Fatalf("endpoint moved from %s to %s", ep, s.Endpoint)
	}
	out, err := c.ListTables(ctx, &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatalf("ListTables after restart: %v", err)
	}
	if len(out.TableNames) != 1 || out.TableNames[0] != name {
		t.Fatalf("tables after restart = %v, want [%s]", out.TableNames, name)
	}
}

// TestPauseResume: a paused server accepts connections but does not
// answer; resumed, it answers again.
func TestPauseResume(t *testing.T) {
	s := StartServer(t, Options{})
	c := s.Client()
	s.Pause()
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.ListTables(short, &dynamodb.ListTablesInput{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ListTables on a paused server: %v; want a timeout", err)
	}
	s.Resume()
	if _, err := c.ListTables(context.Background(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("ListTables after Resume: %v", err)
	}
}

// TestSurvivesResetConnections: a client that resets its connection in the
// middle of a request (as a cancelled context does) must not take dynalite
// down for every other test using it.
func TestSurvivesResetConnections(t *testing.T) {
	ep := Start(t)
	addr := strings.TrimPrefix(ep, "http://")
	const partial = "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\n" +
		"X-Amz-Target: DynamoDB_20120810.ListTables\r\n" +
		"Authorization: AWS4-HMAC-SHA256 Credential=a/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=abc\r\n" +
		"Content-Length: 100\r\n\r\n{\"a\":"
	for range 10 {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(partial)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)    // let dynalite start reading the body
		_ = conn.(*net.TCPConn).SetLinger(0) // close with a reset, not a FIN
		_ = conn.Close()
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := Client(ep).ListTables(context.Background(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("ListTables after reset connections: %v", err)
	}
}
