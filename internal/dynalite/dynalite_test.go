package dynalite

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
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
