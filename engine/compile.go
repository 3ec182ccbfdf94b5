package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/fledge-flags/fledge/internal/jsonpath"
)

// Program is a compiled evaluation context without its identity: segment
// rules are pre-parsed, features indexed, and variant order fixed. It is
// immutable and safe for concurrent use; evaluating an identity against it
// does no parsing.
type Program struct {
	envKey    string
	keyPrefix string // envKey + "_", the derived identity key's prefix
	envName   *string

	features     []compiledFeature
	featureIndex map[string]int
	segments     []compiledSegment
	// scan lists the segments evaluated rule by rule. Segments that are a
	// single IN condition on one property (identity overrides are) are
	// indexed instead: byValue maps each listed value to those segments, so
	// thousands of overrides cost one lookup. nil when not worth it.
	scan      []int32
	byValue   map[string][]int32
	indexProp accessor

	// traitSlots maps every trait name a condition can read to its slot in
	// the per-evaluation trait table.
	traitSlots map[string]int
	nslots     int

	// tree is the context as generic JSON, for JSONPath queries that are
	// not simple member chains. Built on first use.
	treeOnce sync.Once
	tree     map[string]any
	source   *Context

	warnings []string
	states   sync.Pool
}

type compiledFeature struct {
	f        *Feature
	variants []compiledVariant // sorted by priority
}

type compiledVariant struct {
	v      *Variant
	reason string
}

type compiledSegment struct {
	s         *Segment
	rules     []compiledRule
	reason    string
	overrides []compiledOverride
}

type compiledOverride struct {
	feature int // index into Program.features
	cf      compiledFeature
	rank    int // global order by (priority, segment, position); lower wins
}

type ruleType uint8

const (
	ruleAll ruleType = iota
	ruleAny
	ruleNone
	ruleUnknown
)

type compiledRule struct {
	typ   ruleType
	conds []compiledCond
	rules []compiledRule
}

type opcode uint8

const (
	opUnknown opcode = iota
	opEqual
	opNotEqual
	opGreaterThan
	opGreaterThanInclusive
	opLessThan
	opLessThanInclusive
	opContains
	opNotContains
	opRegex
	opPercentageSplit
	opModulo
	opIsSet
	opIsNotSet
	opIn
)

var opcodes = map[string]opcode{
	"EQUAL": opEqual, "NOT_EQUAL": opNotEqual, "GREATER_THAN": opGreaterThan,
	"GREATER_THAN_INCLUSIVE": opGreaterThanInclusive, "LESS_THAN": opLessThan,
	"LESS_THAN_INCLUSIVE": opLessThanInclusive, "CONTAINS": opContains, "NOT_CONTAINS": opNotContains,
	"REGEX": opRegex, "PERCENTAGE_SPLIT": opPercentageSplit, "MODULO": opModulo, "IS_SET": opIsSet,
	"IS_NOT_SET": opIsNotSet, "IN": opIn,
}

type propKind uint8

const (
	propTrait   propKind = iota // a trait named exactly Property
	propDollar                  // "$." property: literal trait, then JSONPath
	propHashKey                 // PERCENTAGE_SPLIT with an empty property
)

type fastPath uint8

const (
	fastNone fastPath = iota // generic JSONPath on the context tree
	fastIdentifier
	fastIdentityKey
	fastEnvName
	fastEnvKey
	fastTrait
	fastNothing // a member chain that can never find a scalar
)

type accessor struct {
	kind     propKind
	slot     int // trait slot of the whole property text
	path     *jsonpath.Path
	fast     fastPath
	pathSlot int // fastTrait: slot of the named trait
}

type compiledCond struct {
	// Hot fields first: most evaluations touch only these.
	op       opcode
	sIntOK   bool
	sFloatOK bool
	sBool    bool
	isSemver bool
	semverOK bool
	sNull    bool
	modOK    bool
	prop     accessor
	s        string
	sInt     int64
	sFloat   float64
	in       inSet

	sBig   *big.Int
	semver semver
	re     *regexp.Regexp
	modD   float64
	modR   float64
	// modDInt is the divisor as an integer when divisor and remainder are
	// both small integral values, enabling an exact integer fast path.
	modDInt  int64
	modIntOK bool
	segKey   string
	pctOK    bool
	pctThr   float64
}

// Compile compiles ctx's environment, features and segments. The identity in
// ctx, if any, is ignored: pass identities to Evaluate. Rules that cannot be
// compiled (a bad regex, an unparsable number) evaluate as the reference
// engine does, as no match, and are reported by Warnings.
func Compile(ctx *Context) (*Program, error) {
	p := &Program{
		envKey:       ctx.Environment.Key,
		keyPrefix:    ctx.Environment.Key + "_",
		envName:      ctx.Environment.Name,
		featureIndex: make(map[string]int, len(ctx.Features)),
		traitSlots:   make(map[string]int),
		source:       ctx,
	}
	for i := range ctx.Features {
		f := &ctx.Features[i]
		cf, err := compileFeature(f)
		if err != nil {
			return nil, fmt.Errorf("feature %q: %w", f.Name, err)
		}
		if j, ok := p.featureIndex[f.Name]; ok {
			p.features[j] = cf // a later feature with the same name wins
			continue
		}
		p.featureIndex[f.Name] = len(p.features)
		p.features = append(p.features, cf)
	}
	type rankKey struct {
		prio     *big.Float
		seg, pos int
		ref      *compiledOverride
	}
	var ranks []rankKey
	p.segments = make([]compiledSegment, len(ctx.Segments))
	for i := range ctx.Segments {
		s := &ctx.Segments[i]
		cs := compiledSegment{s: s, reason: "TARGETING_MATCH; segment=" + s.Name}
		for j := range s.Rules {
			cs.rules = append(cs.rules, p.compileRule(s, &s.Rules[j]))
		}
		for j := range s.Overrides {
			o := &s.Overrides[j]
			fi, ok := p.featureIndex[o.Name]
			if !ok {
				continue // overrides of unknown features are ignored
			}
			cf, err := compileFeature(o)
			if err != nil {
				return nil, fmt.Errorf("segment %q override %q: %w", s.Name, o.Name, err)
			}
			cs.overrides = append(cs.overrides, compiledOverride{feature: fi, cf: cf})
		}
		p.segments[i] = cs
	}
	posInf := new(big.Float).SetInf(false)
	for i := range p.segments {
		for j := range p.segments[i].overrides {
			o := &p.segments[i].overrides[j]
			prio := o.cf.f.Priority
			if prio == nil {
				prio = posInf
			}
			ranks = append(ranks, rankKey{prio: prio, seg: i, pos: j, ref: o})
		}
	}
	sort.SliceStable(ranks, func(a, b int) bool { return ranks[a].prio.Cmp(ranks[b].prio) < 0 })
	for r := range ranks {
		ranks[r].ref.rank = r
	}
	p.buildIndex()
	p.nslots = len(p.traitSlots)
	p.states.New = func() any { return p.newState() }
	return p, nil
}

func compileFeature(f *Feature) (compiledFeature, error) {
	cf := compiledFeature{f: f}
	if len(f.Variants) == 0 {
		return cf, nil
	}
	cf.variants = make([]compiledVariant, len(f.Variants))
	for i := range f.Variants {
		v := &f.Variants[i]
		if v.Priority == nil {
			return cf, fmt.Errorf("variant %d has no priority", i)
		}
		cf.variants[i] = compiledVariant{v: v, reason: "SPLIT; weight=" + v.WeightText}
	}
	sort.SliceStable(cf.variants, func(a, b int) bool {
		return cf.variants[a].v.Priority.Cmp(cf.variants[b].v.Priority) < 0
	})
	return cf, nil
}

// Warnings lists the rules that could not be compiled and therefore never
// match. Callers log them once per compiled document.
func (p *Program) Warnings() []string { return p.warnings }

func (p *Program) slot(name string) int {
	if i, ok := p.traitSlots[name]; ok {
		return i
	}
	i := len(p.traitSlots)
	p.traitSlots[name] = i
	return i
}

func (p *Program) warnf(format string, args ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf(format, args...))
}

func (p *Program) compileRule(s *Segment, r *Rule) compiledRule {
	cr := compiledRule{}
	switch r.Type {
	case "ALL":
		cr.typ = ruleAll
	case "ANY":
		cr.typ = ruleAny
	case "NONE":
		cr.typ = ruleNone
	default:
		cr.typ = ruleUnknown
		if len(r.Conditions) > 0 || len(r.Rules) > 0 {
			p.warnf("segment %q: unknown rule type %q never matches", s.Name, r.Type)
		}
	}
	for i := range r.Conditions {
		cr.conds = append(cr.conds, p.compileCond(s, &r.Conditions[i]))
	}
	for i := range r.Rules {
		cr.rules = append(cr.rules, p.compileRule(s, &r.Rules[i]))
	}
	return cr
}

func (p *Program) compileCond(s *Segment, c *Condition) compiledCond {
	cc := compiledCond{op: opcodes[c.Operator], s: c.Value.Str, sNull: c.Value.IsNull, segKey: s.Key}
	if cc.op == opUnknown {
		p.warnf("segment %q: unknown operator %q never matches", s.Name, c.Operator)
	}
	cc.prop = p.compileAccessor(c.Property, cc.op)
	if c.Value.IsList {
		// Only IN gives a list meaning; elsewhere use its Python text.
		cc.s = string(appendPyRepr(nil, toAnySlice(c.Value.List)))
	}
	cc.sInt, cc.sBig, cc.sIntOK = pyInt(cc.s)
	cc.sFloat, cc.sFloatOK = pyFloat(cc.s)
	cc.sBool = cc.s != "False" && cc.s != "false"
	if strings.HasSuffix(cc.s, semverSuffix) {
		cc.isSemver = true
		cc.semver, cc.semverOK = parseSemver(cc.s[:len(cc.s)-len(semverSuffix)])
	}
	switch cc.op {
	case opIn:
		cc.in = newInSet(c.Value)
	case opRegex:
		re, err := regexp.Compile("^(?:" + translateRegex(cc.s) + ")")
		if err != nil {
			p.warnf("segment %q: REGEX %q does not compile and never matches: %v", s.Name, cc.s, err)
		} else {
			cc.re = re
		}
	case opModulo:
		parts := strings.Split(cc.s, "|")
		if len(parts) == 2 {
			d, ok1 := pyFloat(parts[0])
			r, ok2 := pyFloat(parts[1])
			cc.modD, cc.modR, cc.modOK = d, r, ok1 && ok2 && d != 0
			if cc.modOK && d == math.Trunc(d) && math.Abs(d) < maxExactInt && r == math.Trunc(r) {
				cc.modDInt, cc.modIntOK = int64(d), true
			}
		}
		if !cc.modOK {
			p.warnf("segment %q: MODULO value %q is not divisor|remainder and never matches", s.Name, cc.s)
		}
	case opPercentageSplit:
		cc.pctThr, cc.pctOK = pyFloat(cc.s)
		cc.pctOK = cc.pctOK && !cc.sNull
		if !cc.pctOK {
			p.warnf("segment %q: PERCENTAGE_SPLIT value %q is not a number and never matches", s.Name, cc.s)
		}
	}
	return cc
}

func toAnySlice(xs []string) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// inSet is the set an IN condition tests against. Small sets, the common
// case, are scanned: that beats hashing the candidate.
type inSet struct {
	valid bool
	small []string
	large map[string]struct{}
}

const smallInSet = 8

func (s *inSet) contains(x string) bool {
	if s.large != nil {
		_, ok := s.large[x]
		return ok
	}
	for _, e := range s.small {
		if e == x {
			return true
		}
	}
	return false
}

// newInSet parses an IN condition's value: a JSON array, a string holding a
// JSON array, or comma-separated text (no trimming).
func newInSet(v ConditionValue) inSet {
	if v.IsNull {
		return inSet{}
	}
	var elems []string
	switch {
	case v.IsList:
		elems = v.List
	case strings.HasPrefix(v.Str, "["):
		if x, err := decodeAny(json.RawMessage(v.Str)); err == nil {
			if list, ok := x.([]any); ok {
				elems = inElements(list)
				break
			}
		}
		elems = strings.Split(v.Str, ",")
	default:
		elems = strings.Split(v.Str, ",")
	}
	if len(elems) <= smallInSet {
		return inSet{valid: true, small: elems}
	}
	set := make(map[string]struct{}, len(elems))
	for _, e := range elems {
		set[e] = struct{}{}
	}
	return inSet{valid: true, large: set}
}

// translateRegex maps the Python-only escapes that have an RE2 equivalent.
func translateRegex(s string) string {
	if !strings.Contains(s, `\Z`) {
		return s
	}
	return strings.ReplaceAll(s, `\Z`, `\z`)
}

func (p *Program) compileAccessor(prop string, op opcode) accessor {
	if op == opPercentageSplit && prop == "" {
		return accessor{kind: propHashKey}
	}
	a := accessor{kind: propTrait, slot: p.slot(prop)}
	if !strings.HasPrefix(prop, "$.") {
		return a
	}
	path, err := jsonpath.Parse(prop)
	if err != nil {
		return a // not a JSONPath: the literal trait is all there is
	}
	a.kind = propDollar
	a.path = path
	names, simple := path.Names()
	if !simple {
		return a
	}
	switch {
	case len(names) == 2 && names[0] == "identity" && names[1] == "identifier":
		a.fast = fastIdentifier
	case len(names) == 2 && names[0] == "identity" && names[1] == "key":
		a.fast = fastIdentityKey
	case len(names) == 2 && names[0] == "environment" && names[1] == "name":
		a.fast = fastEnvName
	case len(names) == 2 && names[0] == "environment" && names[1] == "key":
		a.fast = fastEnvKey
	case len(names) == 3 && names[0] == "identity" && names[1] == "traits":
		a.fast = fastTrait
		a.pathSlot = p.slot(names[2])
	case len(names) >= 1 && names[0] == "identity":
		// Any other member of identity is an object, absent, or below a scalar.
		a.fast = fastNothing
	case len(names) >= 1 && names[0] == "environment" && (len(names) == 1 || len(names) > 2):
		a.fast = fastNothing
	}
	return a
}

// contextTree returns the compiled context as generic JSON (without identity)
// for the rare JSONPath queries that are not simple member chains.
func (p *Program) contextTree() map[string]any {
	p.treeOnce.Do(func() {
		ctx := p.source
		env := map[string]any{"key": ctx.Environment.Key}
		if ctx.Environment.Name != nil {
			env["name"] = *ctx.Environment.Name
		} else {
			env["name"] = nil
		}
		features := make(map[string]any, len(ctx.Features))
		for i := range ctx.Features {
			features[ctx.Features[i].Name] = featureTree(&ctx.Features[i])
		}
		segments := make(map[string]any, len(ctx.Segments))
		for i := range ctx.Segments {
			s := &ctx.Segments[i]
			overrides := make([]any, len(s.Overrides))
			for j := range s.Overrides {
				overrides[j] = featureTree(&s.Overrides[j])
			}
			segments[s.MapKey] = map[string]any{"key": s.Key, "name": s.Name, "overrides": overrides,
				"metadata": rawTree(s.Metadata)}
		}
		p.tree = map[string]any{"environment": env, "features": features, "segments": segments}
	})
	return p.tree
}

func featureTree(f *Feature) map[string]any {
	return map[string]any{"key": f.Key, "name": f.Name, "enabled": f.Enabled, "value": rawTree(f.Value),
		"metadata": rawTree(f.Metadata)}
}

func rawTree(r json.RawMessage) any {
	x, err := decodeAny(r)
	if err != nil {
		return nil
	}
	return x
}

// minIndexedSegments is where indexing IN-only segments starts to pay.
const minIndexedSegments = 4

// indexable reports whether a segment is exactly one IN condition on the
// identifier, so that it matches iff the identifier's IN candidate is listed.
func indexable(cs *compiledSegment) bool {
	if len(cs.rules) != 1 {
		return false
	}
	r := &cs.rules[0]
	if (r.typ != ruleAll && r.typ != ruleAny) || len(r.rules) != 0 || len(r.conds) != 1 {
		return false
	}
	c := &r.conds[0]
	return c.op == opIn && c.in.valid && c.prop.kind == propDollar && c.prop.fast == fastIdentifier
}

func (p *Program) buildIndex() {
	n := 0
	for i := range p.segments {
		if indexable(&p.segments[i]) {
			n++
		}
	}
	if n < minIndexedSegments {
		return
	}
	p.byValue = make(map[string][]int32)
	for i := range p.segments {
		cs := &p.segments[i]
		if !indexable(cs) {
			p.scan = append(p.scan, int32(i))
			continue
		}
		c := &cs.rules[0].conds[0]
		p.indexProp = c.prop
		add := func(v string) {
			list := p.byValue[v]
			if len(list) == 0 || list[len(list)-1] != int32(i) {
				p.byValue[v] = append(list, int32(i))
			}
		}
		for _, v := range c.in.small {
			add(v)
		}
		for v := range c.in.large {
			add(v)
		}
	}
}
