package engine_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/fledge-flags/fledge/bench/workload"
	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
)

// compileProfile builds the engine program for a benchmark profile from its
// generated environment document, the way the proxy does.
func compileProfile(tb testing.TB, p workload.Profile) *engine.Program {
	tb.Helper()
	doc, err := environment.Parse(workload.Document(p, 1))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, err := doc.Context()
	if err != nil {
		tb.Fatal(err)
	}
	prog, err := engine.Compile(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if w := prog.Warnings(); len(w) > 0 {
		tb.Fatalf("profile %s does not compile cleanly: %v", p.Name, w)
	}
	return prog
}

func identityFor(p workload.Profile, traits []workload.Trait) *engine.Identity {
	id := &engine.Identity{Identifier: "bench-user-42"}
	for _, t := range traits {
		var v engine.Value
		switch x := t.Value.(type) {
		case string:
			v = engine.String(x)
		case int64:
			v = engine.Int(x)
		case float64:
			v = engine.Float(x)
		case bool:
			v = engine.Bool(x)
		default:
			panic(fmt.Sprintf("unexpected trait type %T", x))
		}
		id.Traits = append(id.Traits, engine.Trait{Name: t.Key, Value: v})
	}
	return id
}

// TestWorkloadProfiles checks that the benchmark inputs mean what the
// benchmarks claim: the P2 worst case evaluates every condition and matches
// nothing, while its matching twin matches every segment.
func TestWorkloadProfiles(t *testing.T) {
	p2 := compileProfile(t, workload.P2)
	var r engine.Result
	p2.Evaluate(identityFor(workload.P2, workload.Traits(workload.P2)), &r)
	for _, si := range r.Segments {
		if s := p2.Segment(si); s.Name != environment.IdentityOverridesSegmentName {
			t.Errorf("worst-case traits matched segment %q", s.Name)
		}
	}
	p2.Evaluate(identityFor(workload.P2, workload.MatchingTraits(workload.P2)), &r)
	matched := 0
	for _, si := range r.Segments {
		if p2.Segment(si).Name != environment.IdentityOverridesSegmentName {
			matched++
		}
	}
	if matched != workload.P2.Segments {
		t.Errorf("matching traits matched %d segments, want %d", matched, workload.P2.Segments)
	}
	if len(r.Flags) != workload.P2.Features {
		t.Errorf("%d flags, want %d", len(r.Flags), workload.P2.Features)
	}
}

func BenchmarkIdentity(b *testing.B) {
	for _, p := range workload.Profiles() {
		b.Run(p.Name, func(b *testing.B) {
			prog := compileProfile(b, p)
			id := identityFor(p, workload.Traits(p))
			var r engine.Result
			prog.Evaluate(id, &r)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				prog.Evaluate(id, &r)
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	for _, p := range workload.Profiles() {
		b.Run(p.Name, func(b *testing.B) {
			data := workload.Document(p, 1)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				doc, err := environment.Parse(data)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := environment.Compile(doc, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIdentityManyOverrides: a P1 document carrying 10,000 identities
// with distinct identity overrides, each its own virtual segment; the
// identifier index keeps this close to plain P1.
func BenchmarkIdentityManyOverrides(b *testing.B) {
	var doc map[string]any
	if err := json.Unmarshal(workload.Document(workload.P1, 1), &doc); err != nil {
		b.Fatal(err)
	}
	overrides := make([]any, 10000)
	for i := range overrides {
		overrides[i] = map[string]any{"identifier": fmt.Sprintf("user-%d", i), "identity_features": []any{map[string]any{
			"feature": map[string]any{"id": 1, "name": "feature_01", "type": "STANDARD"}, "enabled": true,
			"feature_state_value": fmt.Sprintf("v%d", i), "featurestate_uuid": "x", "multivariate_feature_state_values": []any{},
		}}}
	}
	doc["identity_overrides"] = overrides
	raw, _ := json.Marshal(doc)
	d, err := environment.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	ctx, _ := d.Context()
	prog, err := engine.Compile(ctx)
	if err != nil {
		b.Fatal(err)
	}
	id := &engine.Identity{Identifier: "user-5000"}
	var r engine.Result
	prog.Evaluate(id, &r)
	if len(r.Segments) != 1 {
		b.Fatalf("override segment not matched: %v", r.Segments)
	}
	b.ReportAllocs()
	for b.Loop() {
		prog.Evaluate(id, &r)
	}
}
