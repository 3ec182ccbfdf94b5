// Package workload generates the deterministic environment documents and
// identity requests behind fledge's benchmark profiles (design.md, "Workload
// profiles"), so that our engine, the Flagsmith Node SDK and the HTTP
// benchmarks all measure exactly the same inputs.
package workload

// Profile sizes a benchmark environment.
type Profile struct {
	Name                 string
	Features             int
	Segments             int
	ConditionsPerSegment int
	Traits               int
}

var (
	// P1 matches Flagsmith's published Rust-vs-Python edge proxy figures.
	P1 = Profile{"P1", 50, 0, 0, 0}
	// P2 matches the Edge Proxy sizing table: every segment overrides every
	// feature (750 overrides) and tests 15 traits.
	P2 = Profile{"P2", 50, 15, 15, 15}
)

// Profiles returns the standard profiles in order.
func Profiles() []Profile { return []Profile{P1, P2} }

// Document returns the environment document for p as compact JSON, in the
// shape GET /api/v1/environment-document/ serves. Different versions differ
// in updated_at and in a few feature values, so caches and conditional GETs
// can tell them apart.
func Document(p Profile, version int) []byte {
	return marshal(buildDocument(p, version))
}

// ClientKey is the document's api_key.
func ClientKey(p Profile) string { return apiKey("client/" + p.Name) }

// ServerKey is a server-side key ("ser.…") for the same environment.
func ServerKey(p Profile) string { return "ser." + apiKey("server/"+p.Name) }

// Trait is one request trait. Value is a string, int64, float64 or bool.
type Trait struct {
	Key   string
	Value any
}

// Traits returns the benchmark request traits. With segments they are the
// worst case: every segment's conditions hold except its last one, so an
// engine evaluates every condition of every segment and none matches.
// Without segments they are a couple of traits that no rule reads.
func Traits(p Profile) []Trait { return traits(p, false) }

// MatchingTraits returns traits that satisfy every condition, so every
// segment matches; tests use it to confirm the worst case is a near miss.
func MatchingTraits(p Profile) []Trait { return traits(p, true) }

func traits(p Profile, matching bool) []Trait {
	n := max(p.Traits, p.ConditionsPerSegment)
	if n == 0 {
		return []Trait{{"plan", "free"}, {"signup_year", int64(2024)}}
	}
	out := make([]Trait, n)
	for i := range out {
		if i >= p.ConditionsPerSegment {
			// Traits beyond the conditions are carried but never read.
			out[i] = Trait{traitKey(i), "unused-" + traitKey(i)}
			continue
		}
		k := kindAt(i, p.ConditionsPerSegment)
		v := k.match
		if !matching && k.fail != nil {
			v = k.fail
		}
		out[i] = Trait{traitKey(i), v}
	}
	return out
}

type identityTrait struct {
	TraitKey   string `json:"trait_key"`
	TraitValue any    `json:"trait_value"`
}

type identityRequest struct {
	Identifier string          `json:"identifier"`
	Traits     []identityTrait `json:"traits"`
}

// IdentityBody returns a POST /api/v1/identities/ body carrying Traits(p).
func IdentityBody(p Profile, identifier string) []byte {
	ts := Traits(p)
	req := identityRequest{Identifier: identifier, Traits: make([]identityTrait, len(ts))}
	for i, t := range ts {
		req.Traits[i] = identityTrait{t.Key, t.Value}
	}
	return marshal(req)
}
