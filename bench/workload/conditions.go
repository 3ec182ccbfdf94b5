package workload

import "fmt"

// A traitKind ties one request trait to the segment conditions that test it.
// Each condition position i reads trait i, so a single request can satisfy
// (or deliberately fail) the same position in every segment while the
// condition values still differ from segment to segment — an engine cannot
// share work across segments by deduplicating identical conditions.
type traitKind struct {
	name  string // suffix that makes the trait's meaning readable in dumps
	match any    // value that satisfies every condition built from gens
	fail  any    // value that fails every condition built from gens; nil for pass-only kinds
	gens  []condGen
}

// condGen builds the condition for segment s. A nil value means JSON null,
// which is how Flagsmith stores IS_SET/IS_NOT_SET conditions.
type condGen func(s int) (op string, value *string)

func str(s string) *string { return &s }

func cond(op, format string, args ...any) condGen {
	return func(s int) (string, *string) {
		vals := make([]any, len(args))
		for i, a := range args {
			if f, ok := a.(func(int) int); ok {
				vals[i] = f(s)
			} else {
				vals[i] = a
			}
		}
		return op, str(fmt.Sprintf(format, vals...))
	}
}

func isSet() condGen { return func(int) (string, *string) { return "IS_SET", nil } }

// plus returns s+n; used as a format argument so values vary per segment.
func plus(n int) func(int) int { return func(s int) int { return s + n } }

func mulPlus(m, n int) func(int) int { return func(s int) int { return m*s + n } }

// passKinds are the conditions every request trait set satisfies (both the
// worst-case and the matching one). Only types with one unambiguous meaning
// in every engine are used: ints as JSON integers, floats with a fractional
// part, non-numeric strings (a numeric-looking string is normalised to a
// number by the Python engine but not by the Node SDK), a semver string and a
// bool.
var passKinds = []traitKind{
	{name: "plan", match: "enterprise", gens: []condGen{
		cond("EQUAL", "enterprise"),
		cond("IN", "free,starter,growth-%d,enterprise,scale-%d", plus(1), plus(4)),
		cond("NOT_EQUAL", "free-trial-%d", plus(0)),
		cond("NOT_CONTAINS", "legacy-%d", plus(0)),
	}},
	{name: "region", match: "eu-west-1", gens: []condGen{
		cond("CONTAINS", "eu-"),
		cond("NOT_CONTAINS", "us-east-%d", plus(1)),
		cond("IN", "eu-west-1,eu-west-2,eu-central-%d,ap-south-%d,sa-east-1", plus(1), plus(2)),
		cond("CONTAINS", "west"),
	}},
	{name: "age", match: int64(57), gens: []condGen{
		cond("GREATER_THAN", "%d", plus(18)),
		cond("GREATER_THAN_INCLUSIVE", "%d", plus(21)),
		cond("LESS_THAN", "%d", plus(60)),
		cond("LESS_THAN_INCLUSIVE", "%d", plus(57)),
		cond("NOT_EQUAL", "%d", plus(0)),
	}},
	{name: "score", match: 3.75, gens: []condGen{
		cond("GREATER_THAN", "%d.%d", func(s int) int { return 1 + (5+s)/10 }, func(s int) int { return (5 + s) % 10 }),
		cond("LESS_THAN", "%d.%d", func(s int) int { return 4 + (1+s)/10 }, func(s int) int { return (1 + s) % 10 }),
		cond("GREATER_THAN_INCLUSIVE", "3.%02d", mulPlus(5, 0)),
		cond("LESS_THAN_INCLUSIVE", "%d.%02d", func(s int) int { return 3 + (75+5*s)/100 }, func(s int) int { return (75 + 5*s) % 100 }),
		cond("NOT_EQUAL", "%d.25", plus(0)),
	}},
	{name: "app_version", match: "1.4.3", gens: []condGen{
		cond("GREATER_THAN_INCLUSIVE", "1.%d.0:semver", func(s int) int { return s % 5 }),
		cond("GREATER_THAN", "1.2.%d:semver", plus(0)),
		cond("LESS_THAN", "1.%d.0:semver", plus(5)),
		cond("LESS_THAN_INCLUSIVE", "2.%d.1:semver", plus(0)),
		cond("EQUAL", "1.4.3:semver"),
	}},
	// 42 is divisible by many small numbers, so "d|42%d" differs per segment
	// and starts with the canonical "2|0".
	{name: "orders", match: int64(42), gens: []condGen{
		func(s int) (string, *string) {
			d := 2 + s
			return "MODULO", str(fmt.Sprintf("%d|%d", d, 42%d))
		},
	}},
	{name: "beta_tester", match: true, gens: []condGen{
		cond("EQUAL", "true"),
		cond("NOT_EQUAL", "false"),
		cond("EQUAL", "True"),
	}},
	{name: "company", match: "acme-industries", gens: []condGen{
		isSet(),
		cond("CONTAINS", "acme"),
		cond("NOT_EQUAL", "competitor-%d", plus(0)),
	}},
	{name: "platform", match: "ios", gens: []condGen{
		cond("IN", "ios,android,web,macos-%d,tvos-%d", plus(10), plus(20)),
		cond("EQUAL", "ios"),
		cond("NOT_EQUAL", "windows-%d", plus(0)),
	}},
	{name: "lifetime_spend", match: int64(1250), gens: []condGen{
		cond("GREATER_THAN_INCLUSIVE", "%d", mulPlus(10, 1000)),
		cond("LESS_THAN", "%d", mulPlus(100, 2000)),
		cond("IN", "%d,%d,1250,%d,%d", plus(1000), plus(1100), plus(1300), plus(1500)),
		cond("NOT_EQUAL", "%d", plus(1251)),
	}},
	{name: "conversion_rate", match: 0.82, gens: []condGen{
		cond("GREATER_THAN", "0.%02d", plus(50)),
		cond("LESS_THAN_INCLUSIVE", "0.%02d", plus(85)),
		cond("NOT_EQUAL", "0.%02d", plus(1)),
	}},
	{name: "locale", match: "en-GB", gens: []condGen{
		cond("IN", "en-GB,en-US,fr-FR,de-DE,nl-%d", plus(0)),
		cond("CONTAINS", "en-"),
		cond("NOT_CONTAINS", "zh-%d", plus(0)),
		cond("EQUAL", "en-GB"),
	}},
	{name: "sessions", match: int64(7), gens: []condGen{
		cond("GREATER_THAN", "%d", func(s int) int { return s % 5 }),
		cond("LESS_THAN_INCLUSIVE", "%d", plus(10)),
		cond("IN", "3,5,7,%d,%d", plus(20), plus(40)),
		isSet(),
	}},
	{name: "email", match: "qa.benchmark.user@example.com", gens: []condGen{
		cond("CONTAINS", "@example.com"),
		cond("NOT_CONTAINS", "@competitor-%d.io", plus(0)),
		isSet(),
		cond("CONTAINS", ".user@"),
	}},
}

// failKind is the last condition of every segment. The worst-case value 99
// fails all of its variants, so an engine has evaluated every earlier
// condition before it can reject the segment; 25 satisfies them all.
var failKind = traitKind{name: "seats", match: int64(25), fail: int64(99), gens: []condGen{
	cond("LESS_THAN", "%d", plus(50)),
	cond("LESS_THAN_INCLUSIVE", "%d", plus(30)),
	cond("IN", "%d,%d,25,%d,%d", plus(5), plus(10), plus(40), plus(60)),
	cond("EQUAL", "25"),
	cond("MODULO", "5|0"),
}}

// regexCondition replaces one condition of one segment: the engines differ in
// regex dialect and compile cost, so a benchmark should contain one realistic
// pattern, not many.
const (
	regexPosition = 1 // the "region" kind
	regexPattern  = `^eu-(west|central)-[0-9]+$`
)

// kindAt returns the trait kind read by condition position pos of a segment
// with n conditions.
func kindAt(pos, n int) traitKind {
	if pos == n-1 {
		return failKind
	}
	return passKinds[pos%len(passKinds)]
}

func conditionFor(p Profile, seg, pos int) condition {
	n := p.ConditionsPerSegment
	if pos == regexPosition && seg == regexSegment(p) && n > regexPosition+1 {
		return condition{Operator: "REGEX", Property: traitKey(pos), Value: str(regexPattern)}
	}
	k := kindAt(pos, n)
	op, v := k.gens[(seg+pos)%len(k.gens)](seg % segmentVariety)
	return condition{Operator: op, Property: traitKey(pos), Value: v}
}

// segmentVariety bounds the per-segment offsets in condition values: the
// generators keep their trait values satisfiable only for offsets below 15,
// so larger profiles repeat values every 15 segments.
const segmentVariety = 15

func regexSegment(p Profile) int { return p.Segments / 2 }

func traitKey(i int) string { return fmt.Sprintf("trait_%02d", i) }
