package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/internal/jsonc"
	"github.com/fledge-flags/fledge/sdk"
	"github.com/fledge-flags/fledge/source"
)

const evalUsage = `Usage:
  fledge eval --context CTX.json
      print the evaluation result of an evaluation context
  fledge eval --environment DOC.json
      print the body of GET /api/v1/flags/ for the document (server-side key)
  fledge eval --environment DOC.json --identity ID [--traits JSON]
      print the body of POST /api/v1/identities/ (server-side key)

A file name of "-" reads standard input. --traits takes a JSON list of
{"trait_key": ..., "trait_value": ...} objects.
`

// usageError marks bad input: the command exits with status 2.
type usageError struct{ error }

func runEval(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ctxPath := fs.String("context", "", "evaluation context file")
	envPath := fs.String("environment", "", "environment document file")
	identifier := fs.String("identity", "", "identity identifier")
	traits := fs.String("traits", "", "identity traits as a JSON list")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, evalUsage)
			return 0
		}
		fmt.Fprintf(stderr, "fledge eval: %v\n", err)
		return 2
	}
	out, err := evaluate(*ctxPath, *envPath, *identifier, *traits, fs.NArg(), stdin)
	if err != nil {
		fmt.Fprintf(stderr, "fledge eval: %s\n", oneLine(err.Error()))
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	out = append(out, '\n')
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "fledge eval: writing output: %v\n", err)
		return 1
	}
	return 0
}

func evaluate(ctxPath, envPath, identifier, traits string, extra int, stdin io.Reader) ([]byte, error) {
	switch {
	case extra > 0:
		return nil, usageError{errors.New("unexpected arguments; see fledge eval -h")}
	case ctxPath != "" && envPath != "":
		return nil, usageError{errors.New("--context and --environment cannot be combined")}
	case ctxPath != "":
		if identifier != "" || traits != "" {
			return nil, usageError{errors.New("--identity and --traits go with --environment; a context carries its own identity")}
		}
		return evalContext(ctxPath, stdin)
	case envPath != "":
		return evalEnvironment(envPath, identifier, traits, stdin)
	}
	return nil, usageError{errors.New("one of --context or --environment is required; see fledge eval -h")}
}

// readInput reads a file or standard input, capped like every document
// Fledge reads (source.MaxFileBytes), so /dev/zero is an error, not an OOM.
func readInput(path string, stdin io.Reader) ([]byte, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = source.ReadCapped(stdin, displayName(path))
	} else {
		data, err = source.ReadFileCapped(path)
	}
	if err != nil {
		return nil, usageError{err}
	}
	return data, nil
}

func displayName(path string) string {
	if path == "-" {
		return "standard input"
	}
	return path
}

func evalContext(path string, stdin io.Reader) ([]byte, error) {
	data, err := readInput(path, stdin)
	if err != nil {
		return nil, err
	}
	if data, err = jsonc.Standardize(data); err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", displayName(path), err)}
	}
	// Accept a conformance test case too: its context is under "context".
	var probe struct {
		Context json.RawMessage `json:"context"`
	}
	if json.Unmarshal(data, &probe) == nil && len(probe.Context) > 0 {
		data = probe.Context
	}
	ctx, err := engine.ParseContext(data)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", displayName(path), err)}
	}
	res, _, err := engine.EvaluateContext(ctx)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", displayName(path), err)}
	}
	return indent(res.AppendJSON(nil))
}

func evalEnvironment(path, identifier, traits string, stdin io.Reader) ([]byte, error) {
	data, err := readInput(path, stdin)
	if err != nil {
		return nil, err
	}
	doc, err := environment.Parse(data)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", displayName(path), err)}
	}
	snap, err := environment.Compile(doc, nil)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", displayName(path), err)}
	}
	if identifier == "" {
		if traits != "" {
			return nil, usageError{errors.New("--traits needs --identity")}
		}
		return indent(snap.FlagsJSON(environment.ServerKey))
	}
	body, err := json.Marshal(map[string]any{"identifier": identifier})
	if err != nil {
		return nil, err
	}
	if traits != "" {
		body = append(body[:len(body)-1], `,"traits":`...)
		body = append(body, traits...)
		body = append(body, '}')
	}
	req, err := sdk.DecodeIdentityRequest(body)
	if err != nil {
		return nil, usageError{fmt.Errorf("--traits: %w", err)}
	}
	return indent(sdk.AppendIdentityResponse(nil, snap, environment.ServerKey, req))
}

func indent(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return nil, fmt.Errorf("encoding output: %w", err)
	}
	return buf.Bytes(), nil
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
