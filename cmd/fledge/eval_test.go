package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var fixtureDoc = filepath.Join("..", "..", "testdata", "fixtures", "environment-documents", "environment.json")

func runCmd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestEvalOutputs(t *testing.T) {
	doc, err := os.ReadFile(fixtureDoc)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		check func(t *testing.T, out string)
	}{
		{"environment flags", "", []string{"eval", "--environment", fixtureDoc}, func(t *testing.T, out string) {
			var flags []map[string]any
			if err := json.Unmarshal([]byte(out), &flags); err != nil || len(flags) != 2 {
				t.Fatalf("want 2 flags, got %v (%v)", out, err)
			}
		}},
		{"identity override from stdin", string(doc), []string{"eval", "--environment", "-", "--identity", "overridden-id"}, func(t *testing.T, out string) {
			if !strings.Contains(out, `"some-overridden-value"`) || !strings.Contains(out, `"identifier": "overridden-id"`) {
				t.Fatalf("override not applied: %s", out)
			}
		}},
		{"segment via traits", "", []string{"eval", "--environment", fixtureDoc, "--identity", "u1", "--traits", `[{"trait_key":"age","trait_value":30}]`}, func(t *testing.T, out string) {
			if !strings.Contains(out, `"segment_override"`) || !strings.Contains(out, `"trait_value": 30`) {
				t.Fatalf("segment override not applied: %s", out)
			}
		}},
		{"context", `{"environment":{"key":"test_env","name":"n"},"identity":{"identifier":"foobar"},"features":{"f":{"key":"78986","name":"f","enabled":true,"value":"foo","variants":[{"value":"v","weight":54.54,"priority":1}]}}}`,
			[]string{"eval", "--context", "-"}, func(t *testing.T, out string) {
				var res struct {
					Flags map[string]struct {
						Value  any
						Reason string
					}
				}
				if err := json.Unmarshal([]byte(out), &res); err != nil {
					t.Fatal(err)
				}
				// engine.md §2.7: "78986,test_env_foobar" hashes to 54.53, inside the 54.54 variant.
				if f := res.Flags["f"]; f.Reason != "SPLIT; weight=54.54" || f.Value != "v" {
					t.Fatalf("want the variant with SPLIT; weight=54.54: %s", out)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCmd(t, tt.stdin, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			tt.check(t, out)
		})
	}
}

func TestEvalBadInput(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"missing file", "", []string{"eval", "--environment", "/nonexistent.json"}, "/nonexistent.json"},
		{"invalid JSON", `{"api_key":`, []string{"eval", "--environment", "-"}, "invalid JSON"},
		{"wrong shape", `[1,2]`, []string{"eval", "--environment", "-"}, "not an environment document"},
		{"not a document", `{"foo":1}`, []string{"eval", "--environment", "-"}, "api_key"},
		{"bad traits", "", []string{"eval", "--environment", fixtureDoc, "--identity", "u", "--traits", `{"a":1}`}, "traits"},
		{"traits without identity", "", []string{"eval", "--environment", fixtureDoc, "--traits", `[]`}, "--identity"},
		{"context wrong shape", `{"environment":{"key":"k"},"features":{"a":{"name":1}}}`, []string{"eval", "--context", "-"}, `features["a"]`},
		{"context without environment", `{}`, []string{"eval", "--context", "-"}, "environment.key"},
		{"no mode", "", []string{"eval"}, "--context or --environment"},
		{"both modes", "", []string{"eval", "--context", "a", "--environment", "b"}, "cannot be combined"},
		{"unknown flag", "", []string{"eval", "--bogus"}, "bogus"},
		{"binary garbage", "\x00\xff\xfe", []string{"eval", "--context", "-"}, "fledge eval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCmd(t, tt.stdin, tt.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2 (stdout %q, stderr %q)", code, out, stderr)
			}
			if strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 {
				t.Errorf("error is not one line: %q", stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not name %q", stderr, tt.want)
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, stderr := runCmd(t, "", "frobnicate"); code != 2 || !strings.Contains(stderr, "frobnicate") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

func TestEvalInputIsCapped(t *testing.T) {
	for _, args := range [][]string{
		{"eval", "--environment", "/dev/zero"},
		{"eval", "--context", "/dev/zero"},
	} {
		code, out, stderr := runCmd(t, "", args...)
		if code != 2 || out != "" {
			t.Errorf("%v: exit %d, stdout %q; want 2 and nothing", args, code, out)
		}
		if !strings.Contains(stderr, "/dev/zero") || !strings.Contains(stderr, "larger than 32 MiB") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: want one line naming the file and the limit, got %q", args, stderr)
		}
	}
}
