package engine

import (
	"fmt"
	"strings"
	"testing"
)

// TestIdentifierIndexMatchesScan: the identifier index is an optimisation
// only; for any identity it must give exactly the result of evaluating every
// segment's rules.
func TestIdentifierIndexMatchesScan(t *testing.T) {
	var segs []string
	for i := 0; i < 12; i++ {
		switch i % 4 {
		case 1: // an ordinary segment between the indexed ones
			segs = append(segs, fmt.Sprintf(`"s%d":{"key":"s%d","name":"plan_%d","rules":[{"type":"ALL","conditions":[{"property":"plan","operator":"EQUAL","value":"gold"}]}],
				"overrides":[{"key":"o%d","name":"f%d","enabled":true,"value":"seg%d","priority":%d}]}`, i, i, i, i, i%3, i, i))
		default:
			segs = append(segs, fmt.Sprintf(`"io%d":{"key":"","name":"identity_overrides","rules":[{"type":"ALL","conditions":[{"property":"$.identity.identifier","operator":"IN","value":["u%d","shared","7","a,b"]}]}],
				"overrides":[{"key":"","name":"f%d","enabled":false,"value":"id%d","priority":-1e300}]}`, i, i, i%3, i))
		}
	}
	ctxJSON := `{"environment":{"key":"env","name":"e"},"features":{
		"f0":{"key":"1","name":"f0","enabled":true,"value":"d0"},
		"f1":{"key":"2","name":"f1","enabled":true,"value":"d1"},
		"f2":{"key":"3","name":"f2","enabled":true,"value":"d2"}},
		"segments":{` + strings.Join(segs, ",") + `}}`
	ctx, err := ParseContext([]byte(ctxJSON))
	if err != nil {
		t.Fatal(err)
	}
	indexed, err := Compile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if indexed.byValue == nil {
		t.Fatal("the identity-override segments were not indexed")
	}
	scanned, _ := Compile(ctx)
	scanned.byValue, scanned.scan = nil, nil

	identities := []*Identity{
		nil,
		{Identifier: "u0"}, {Identifier: "u4"}, {Identifier: "shared"}, {Identifier: "nobody"},
		{Identifier: "007"}, {Identifier: "7"}, {Identifier: "a,b"}, {Identifier: "a"},
		{Identifier: "u8", Traits: []Trait{{Name: "plan", Value: String("gold")}}},
		{Identifier: "shared", Traits: []Trait{{Name: "plan", Value: String("gold")}}},
		// A trait literally named like the property wins over the JSONPath.
		{Identifier: "nobody", Traits: []Trait{{Name: "$.identity.identifier", Value: String("u0")}}},
		{Identifier: "u0", Traits: []Trait{{Name: "$.identity.identifier", Value: Int(7)}}},
	}
	for _, id := range identities {
		var a, b Result
		indexed.Evaluate(id, &a)
		scanned.Evaluate(id, &b)
		ga, gb := string(a.AppendJSON(nil)), string(b.AppendJSON(nil))
		if ga != gb {
			t.Errorf("identity %+v:\nindexed %s\nscanned %s", id, ga, gb)
		}
	}
	// The cases above must exercise matches, not only misses.
	var r Result
	indexed.Evaluate(&Identity{Identifier: "shared", Traits: []Trait{{Name: "plan", Value: String("gold")}}}, &r)
	if len(r.Segments) != 12 {
		t.Fatalf("shared gold identity matched %d segments, want all 12", len(r.Segments))
	}
}
