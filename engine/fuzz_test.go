package engine_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/internal/jsonc"
)

// FuzzEvaluateContext feeds arbitrary evaluation contexts to the parser,
// compiler and evaluator: whatever the input, they must return an error or
// a result, never panic. The conformance cases seed the corpus.
func FuzzEvaluateContext(f *testing.F) {
	files := loadCases(f)
	for i, file := range files {
		if i%4 != 0 { // a quarter of the suite is variety enough as seeds
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		std, err := jsonc.Standardize(src)
		if err != nil {
			f.Fatal(err)
		}
		var tc struct {
			Context json.RawMessage `json:"context"`
		}
		if err := json.Unmarshal(std, &tc); err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(tc.Context))
	}
	f.Add([]byte(`{"environment":{"key":"k","name":"n"},"identity":{"identifier":"i","traits":{"a":"1.5"}},"segments":{"1":{"key":"1","name":"s","rules":[{"type":"ANY","conditions":[{"property":"$.identity.traits[?@ > 1]","operator":"MODULO","value":"2|1"}]}]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, err := engine.ParseContext(data)
		if err != nil {
			return
		}
		res, prog, err := engine.EvaluateContext(ctx)
		if err != nil {
			return
		}
		out := res.AppendJSON(nil)
		if len(out) == 0 {
			t.Fatal("empty result")
		}
		// A second evaluation through the same program must agree: the
		// pooled scratch state must not leak between evaluations.
		var again engine.Result
		prog.Evaluate(ctx.Identity, &again)
		if string(again.AppendJSON(nil)) != string(out) {
			t.Fatalf("re-evaluation differs:\n%s\n%s", out, again.AppendJSON(nil))
		}
	})
}
