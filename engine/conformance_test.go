package engine_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/internal/jsonc"
)

// conformanceDir holds Flagsmith's engine-test-data v3.9.0, kept in the
// repository (testdata/README.md) so that the suite runs from any clone.
var conformanceDir = filepath.Join("..", "testdata", "engine-test-data", "test_cases")

// conformanceCases is how many cases v3.9.0 has. Fewer files means data went
// missing, which must fail the run rather than quietly test less.
const conformanceCases = 199

func loadCases(t testing.TB) []string {
	var files []string
	for _, pat := range []string{"*.json", "*.jsonc"} {
		m, err := filepath.Glob(filepath.Join(conformanceDir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) != conformanceCases {
		t.Fatalf("found %d conformance cases in %s, want %d (see testdata/README.md)", len(files), conformanceDir, conformanceCases)
	}
	sort.Strings(files)
	return files
}

func TestConformance(t *testing.T) {
	files := loadCases(t)
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			std, err := jsonc.Standardize(src)
			if err != nil {
				t.Fatal(err)
			}
			var tc struct {
				Context json.RawMessage `json:"context"`
				Result  json.RawMessage `json:"result"`
			}
			if err := json.Unmarshal(std, &tc); err != nil {
				t.Fatal(err)
			}
			ctx, err := engine.ParseContext(tc.Context)
			if err != nil {
				t.Fatalf("parse context: %v", err)
			}
			res, _, err := engine.EvaluateContext(ctx)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			got := res.AppendJSON(nil)
			if diff := jsonDiff(decode(t, got), decode(t, tc.Result), "result"); diff != "" {
				t.Errorf("%s: result differs:\n%s\ngot:  %s\nwant: %s", filepath.Base(file), diff, got, compact(tc.Result))
			}
		})
	}
	t.Logf("%d conformance cases", len(files))
}

func decode(t testing.TB, b []byte) any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return x
}

func compact(b []byte) string {
	var buf bytes.Buffer
	_ = json.Compact(&buf, b)
	return buf.String()
}

// jsonDiff compares two decoded JSON values exactly as the reference runner
// does: same keys, lists in order, numbers by value (1 == 1.0), bools apart
// from numbers. It returns "" when equal, else the first differences found.
func jsonDiff(got, want any, path string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: got %v, want an object\n", path, got)
		}
		var out strings.Builder
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				fmt.Fprintf(&out, "%s.%s: missing\n", path, k)
				continue
			}
			out.WriteString(jsonDiff(gv, wv, path+"."+k))
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				fmt.Fprintf(&out, "%s.%s: unexpected (%v)\n", path, k, g[k])
			}
		}
		return out.String()
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: got %v, want %v\n", path, got, want)
		}
		var out strings.Builder
		for i := range w {
			out.WriteString(jsonDiff(g[i], w[i], fmt.Sprintf("%s[%d]", path, i)))
		}
		return out.String()
	case json.Number:
		g, ok := got.(json.Number)
		if !ok {
			return fmt.Sprintf("%s: got %v, want %v\n", path, got, want)
		}
		a, _ := new(big.Float).SetString(g.String())
		b, _ := new(big.Float).SetString(w.String())
		if a == nil || b == nil || a.Cmp(b) != 0 {
			return fmt.Sprintf("%s: got %v, want %v\n", path, g, w)
		}
		return ""
	default:
		if got != want {
			return fmt.Sprintf("%s: got %#v, want %#v\n", path, got, want)
		}
		return ""
	}
}

func TestJSONDiffDetectsDifferences(t *testing.T) {
	// The comparator is what makes the conformance test honest; make sure it
	// fails on the differences that matter.
	cases := []struct{ got, want string }{
		{`{"a":1}`, `{"a":2}`},
		{`{"a":1}`, `{"a":1,"b":null}`},
		{`{"a":1,"b":null}`, `{"a":1}`},
		{`[{"name":"x"},{"name":"y"}]`, `[{"name":"y"},{"name":"x"}]`},
		{`{"v":null}`, `{"v":"control"}`},
		{`{"v":true}`, `{"v":1}`},
	}
	for _, c := range cases {
		if jsonDiff(decode(t, []byte(c.got)), decode(t, []byte(c.want)), "$") == "" {
			t.Errorf("jsonDiff(%s, %s) found no difference", c.got, c.want)
		}
	}
	if d := jsonDiff(decode(t, []byte(`{"a":1.0}`)), decode(t, []byte(`{"a":1}`)), "$"); d != "" {
		t.Errorf("1.0 vs 1: %s", d)
	}
}
