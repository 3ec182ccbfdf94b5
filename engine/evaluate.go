package engine

import (
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Result is the outcome of evaluating one identity (or none). Flags are in
// the program's feature order. A Result can be reused across evaluations to
// avoid allocating.
type Result struct {
	Flags    []Flag
	Segments []int // indexes of matched segments, in document order
	prog     *Program
}

// Flag is the evaluated state of one feature.
type Flag struct {
	feature *compiledFeature // the environment default
	source  *compiledFeature // the state used: default or winning override
	segment int              // winning segment index, -1 for the default
	variant int              // index into source.variants; -1 none (null), -2 control
	// override is the identity's own override of the feature, which beats
	// source; nil when it has none.
	override *IdentityOverride
}

// identityOverrideReason is the reason Flagsmith's engine gives a flag
// decided by an identity override (carried there by a virtual segment).
const identityOverrideReason = "TARGETING_MATCH; segment=identity_overrides"

const (
	variantNone    = -1
	variantControl = -2
)

// Name is the feature's name.
func (f *Flag) Name() string { return f.feature.f.Name }

// Enabled is the flag's state, taken from the winning override if any.
func (f *Flag) Enabled() bool {
	if f.override != nil {
		return f.override.Enabled
	}
	return f.source.f.Enabled
}

// IdentityOverride reports whether the identity's own override decided the
// flag.
func (f *Flag) IdentityOverride() bool { return f.override != nil }

// Value is the flag's value as compact JSON; nil means null.
func (f *Flag) Value() json.RawMessage {
	if f.override != nil {
		return f.override.Value
	}
	if f.variant >= 0 {
		return f.source.variants[f.variant].v.Value
	}
	return f.source.f.Value
}

// Feature is the feature state the flag came from: the environment default
// or the segment override that won.
func (f *Flag) Feature() *Feature { return f.source.f }

// Default is the environment's default state of the feature.
func (f *Flag) Default() *Feature { return f.feature.f }

// Metadata is the metadata of the state used; nil when empty.
func (f *Flag) Metadata() json.RawMessage { return f.source.f.Metadata }

// Variant is the selected variant key: ok is false for null.
func (f *Flag) Variant() (key string, ok bool) {
	switch {
	case f.variant == variantControl:
		return "control", true
	case f.variant >= 0:
		if k := f.source.variants[f.variant].v.Key; k != nil {
			return *k, true
		}
	}
	return "", false
}

// Reason explains the flag's value: DEFAULT, TARGETING_MATCH; segment=X or
// SPLIT; weight=W.
func (f *Flag) Reason(p *Program) string {
	switch {
	case f.override != nil:
		return identityOverrideReason
	case f.variant >= 0:
		return f.source.variants[f.variant].reason
	case f.segment >= 0:
		return p.segments[f.segment].reason
	}
	return "DEFAULT"
}

// Segment returns the matched segment at index i of Result.Segments.
func (p *Program) Segment(i int) *Segment { return p.segments[i].s }

// Features returns the number of distinct features.
func (p *Program) Features() int { return len(p.features) }

// FeatureIndex returns the index of the named feature in Result.Flags.
func (p *Program) FeatureIndex(name string) (int, bool) {
	i, ok := p.featureIndex[name]
	return i, ok
}

// evalState is the scratch space of one evaluation, pooled per program.
type evalState struct {
	p     *Program
	id    *Identity
	slots []Value
	tmp   Value
	// lastSlot is the slot the last resolve read, -1 for a computed value;
	// it keys the per-evaluation cache of parsed semver traits.
	lastSlot int
	semvers  []semverCache
	winners  []int32 // per feature: rank+1 of the winning override, 0 none
	winOver  []*compiledOverride
	winSeg   []int32
	tree     map[string]any
	idTree   map[string]any
}

func (p *Program) newState() *evalState {
	return &evalState{
		p:       p,
		slots:   make([]Value, p.nslots),
		semvers: make([]semverCache, p.nslots),
		winners: make([]int32, len(p.features)),
		winOver: make([]*compiledOverride, len(p.features)),
		winSeg:  make([]int32, len(p.features)),
	}
}

// Evaluate evaluates the program for id (nil for no identity) into out.
func (p *Program) Evaluate(id *Identity, out *Result) {
	st := p.states.Get().(*evalState)
	st.reset(id)
	out.prog = p
	out.Segments = out.Segments[:0]
	if p.byValue == nil {
		for i := range p.segments {
			if st.segmentMatches(&p.segments[i]) {
				st.matched(out, i)
			}
		}
	} else {
		// Merge the scanned segments with the indexed ones that list the
		// identifier, keeping document order.
		indexed := st.indexedMatches()
		j := 0
		for _, si := range p.scan {
			for j < len(indexed) && indexed[j] < si {
				st.matched(out, int(indexed[j]))
				j++
			}
			if st.segmentMatches(&p.segments[si]) {
				st.matched(out, int(si))
			}
		}
		for ; j < len(indexed); j++ {
			st.matched(out, int(indexed[j]))
		}
	}
	if cap(out.Flags) < len(p.features) {
		out.Flags = make([]Flag, len(p.features))
	}
	out.Flags = out.Flags[:len(p.features)]
	for i := range p.features {
		fl := Flag{feature: &p.features[i], source: &p.features[i], segment: -1, variant: variantNone}
		if st.winners[i] != 0 {
			fl.source = &st.winOver[i].cf
			fl.segment = int(st.winSeg[i])
		}
		if id != nil && len(fl.source.variants) > 0 {
			fl.variant = st.split(fl.source)
		}
		out.Flags[i] = fl
	}
	if id != nil {
		for k := range id.Overrides {
			o := &id.Overrides[k]
			if i, ok := p.featureIndex[o.Feature]; ok {
				fl := &out.Flags[i]
				fl.override, fl.variant = o, variantNone
			}
		}
	}
	st.id = nil
	st.tree, st.idTree = nil, nil
	for i := range st.winOver {
		st.winOver[i] = nil
	}
	p.states.Put(st)
}

// matched records segment i as matched and lets its overrides compete.
func (st *evalState) matched(out *Result, i int) {
	out.Segments = append(out.Segments, i)
	cs := &st.p.segments[i]
	for j := range cs.overrides {
		o := &cs.overrides[j]
		if w := st.winners[o.feature]; w == 0 || int32(o.rank+1) < w {
			st.winners[o.feature] = int32(o.rank + 1)
			st.winOver[o.feature] = o
			st.winSeg[o.feature] = int32(i)
		}
	}
}

// indexedMatches returns the indexed segments whose IN list holds the
// identifier's candidate text, as the IN operator would compare it.
func (st *evalState) indexedMatches() []int32 {
	v := st.resolve(&st.p.indexProp)
	switch v.Kind {
	case KindString:
		return st.p.byValue[v.Str]
	case KindInt:
		var buf [24]byte
		return st.p.byValue[string(v.appendPyStr(buf[:0]))]
	}
	return nil
}

func (st *evalState) reset(id *Identity) {
	st.id = id
	clear(st.slots)
	clear(st.semvers)
	clear(st.winners)
	if id == nil {
		return
	}
	for i := range id.Traits {
		t := &id.Traits[i]
		if s, ok := st.p.traitSlots[t.Name]; ok {
			st.slots[s] = normalize(t.Value)
		}
	}
}

// split picks the multivariate variant for the identity.
func (st *evalState) split(cf *compiledFeature) int {
	var pct float64
	if st.id.Key != "" {
		pct = percentage(cf.f.Key, st.id.Key)
	} else {
		pct = percentage3(cf.f.Key, st.p.keyPrefix, st.id.Identifier)
	}
	start := 0.0
	for i := range cf.variants {
		limit := cf.variants[i].v.Weight + start
		if start <= pct && pct < limit {
			return i
		}
		start = limit
	}
	return variantControl
}

func (st *evalState) identityKey() string {
	if st.id.Key != "" {
		return st.id.Key
	}
	return st.p.keyPrefix + st.id.Identifier
}

func (st *evalState) segmentMatches(cs *compiledSegment) bool {
	if len(cs.rules) == 0 {
		return false
	}
	for i := range cs.rules {
		if !st.ruleMatches(&cs.rules[i]) {
			return false
		}
	}
	return true
}

func (st *evalState) ruleMatches(r *compiledRule) bool {
	// The loops are written out per quantifier: this is the innermost loop
	// of every evaluation.
	switch r.typ {
	case ruleAll:
		for i := range r.conds {
			if !st.condMatches(&r.conds[i]) {
				return false
			}
		}
		for i := range r.rules {
			if !st.ruleMatches(&r.rules[i]) {
				return false
			}
		}
		return true
	case ruleAny:
		if len(r.conds) > 0 {
			found := false
			for i := range r.conds {
				if st.condMatches(&r.conds[i]) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		if len(r.rules) > 0 {
			for i := range r.rules {
				if st.ruleMatches(&r.rules[i]) {
					return true
				}
			}
			return false
		}
		return true
	case ruleNone:
		for i := range r.conds {
			if st.condMatches(&r.conds[i]) {
				return false
			}
		}
		for i := range r.rules {
			if st.ruleMatches(&r.rules[i]) {
				return false
			}
		}
		return true
	}
	return len(r.conds) == 0 && len(r.rules) == 0 // unknown type
}

// resolve finds the normalised context value a condition reads. The result
// points into the evaluation's scratch space: Values are large enough that
// copying them showed up in profiles.
func (st *evalState) resolve(a *accessor) *Value {
	if v := &st.slots[a.slot]; v.Kind != KindNone || a.kind != propDollar {
		st.lastSlot = a.slot
		return v
	}
	st.lastSlot = -1
	t := &st.tmp
	switch a.fast {
	case fastIdentifier:
		if st.id == nil {
			*t = Value{}
		} else {
			*t = normalize(String(st.id.Identifier))
		}
	case fastIdentityKey:
		if st.id == nil {
			*t = Value{}
		} else {
			*t = normalize(String(st.identityKey()))
		}
	case fastEnvName:
		if st.p.envName == nil {
			*t = Value{}
		} else {
			*t = normalize(String(*st.p.envName))
		}
	case fastEnvKey:
		*t = normalize(String(st.p.envKey))
	case fastTrait:
		st.lastSlot = a.pathSlot
		return &st.slots[a.pathSlot]
	case fastNothing:
		*t = Value{}
	default:
		*t = Value{}
		x, ok := a.path.First(st.contextTree())
		if !ok {
			break
		}
		switch x.(type) {
		case map[string]any, []any:
		default:
			*t = normalize(ValueFromJSON(x))
		}
	}
	return t
}

func (st *evalState) contextTree() map[string]any {
	if st.tree != nil {
		return st.tree
	}
	base := st.p.contextTree()
	st.tree = make(map[string]any, len(base)+1)
	for k, v := range base {
		st.tree[k] = v
	}
	if st.id != nil {
		traits := make(map[string]any, len(st.id.Traits))
		for _, t := range st.id.Traits {
			traits[t.Name] = valueToJSON(t.Value)
		}
		st.tree["identity"] = map[string]any{"identifier": st.id.Identifier, "key": st.identityKey(), "traits": traits}
	}
	return st.tree
}

func valueToJSON(v Value) any {
	switch v.Kind {
	case KindString:
		return v.Str
	case KindInt:
		return json.Number(v.PyString())
	case KindFloat:
		return v.Float
	case KindBool:
		return v.Int != 0
	}
	return nil
}

func (st *evalState) condMatches(c *compiledCond) bool {
	if c.prop.kind == propHashKey {
		if st.id == nil || !c.pctOK {
			return false
		}
		var pct float64
		if st.id.Key != "" {
			pct = percentage(c.segKey, st.id.Key)
		} else {
			pct = percentage3(c.segKey, st.p.keyPrefix, st.id.Identifier)
		}
		return pct <= c.pctThr
	}
	v := st.resolve(&c.prop)
	switch c.op {
	case opIsSet:
		return !v.IsNone()
	case opIsNotSet:
		return v.IsNone()
	}
	if v.IsNone() {
		return false
	}
	switch c.op {
	case opIn:
		switch {
		case !c.in.valid:
			return false
		case v.Kind == KindString:
			return c.in.contains(v.Str)
		case v.Kind == KindInt:
			var buf [24]byte
			return c.in.contains(string(v.appendPyStr(buf[:0])))
		}
		return false
	case opPercentageSplit:
		if !c.pctOK {
			return false
		}
		var buf [32]byte
		return percentage(c.segKey, string(v.appendPyStr(buf[:0]))) <= c.pctThr
	case opNotContains:
		return v.Kind == KindString && !strings.Contains(v.Str, c.s)
	case opRegex:
		if c.re == nil {
			return false
		}
		if v.Kind == KindString {
			return c.re.MatchString(v.Str)
		}
		var buf [32]byte
		return c.re.Match(v.appendPyStr(buf[:0]))
	case opModulo:
		if !c.modOK {
			return false
		}
		if v.Kind == KindInt && v.Big == nil && c.modIntOK && v.Int > -maxExactInt && v.Int < maxExactInt {
			// Exact integer arithmetic gives the same answer as Python's
			// float modulo here, without math.Mod's cost.
			r := v.Int % c.modDInt
			if r != 0 && (r < 0) != (c.modDInt < 0) {
				r += c.modDInt
			}
			return float64(r) == c.modR
		}
		x, ok := v.asFloat()
		if !ok {
			return false
		}
		return pyMod(x, c.modD) == c.modR
	case opUnknown:
		return false
	}
	if c.isSemver && v.Kind == KindString {
		return st.compareSemver(c, v)
	}
	return compareTyped(c, v)
}

type semverCache struct {
	state uint8 // 0 not parsed, 1 valid, 2 invalid
	v     semver
}

// compareSemver compares a string trait with a ":semver" condition value.
// Several conditions often read the same version trait, so each trait is
// parsed at most once per evaluation.
func (st *evalState) compareSemver(c *compiledCond, v *Value) bool {
	if c.op == opContains || !c.semverOK {
		return false
	}
	var tv semver
	if st.lastSlot >= 0 {
		sc := &st.semvers[st.lastSlot]
		if sc.state == 0 {
			sc.state = 2
			if parsed, ok := parseSemver(v.Str); ok {
				sc.state, sc.v = 1, parsed
			}
		}
		if sc.state != 1 {
			return false
		}
		tv = sc.v
	} else {
		var ok bool
		if tv, ok = parseSemver(v.Str); !ok {
			return false
		}
	}
	return ordered(c.op, compareSemver(tv, c.semver))
}

// compareTyped implements EQUAL, NOT_EQUAL, the orderings and CONTAINS:
// the condition value is converted to the trait's type, and a failed
// conversion fails every operator.
func compareTyped(c *compiledCond, v *Value) bool {
	switch v.Kind {
	case KindString:
		// ":semver" values never get here: condMatches sends them to
		// evalState.compareSemver, which caches the parsed trait.
		if c.op == opContains {
			return strings.Contains(v.Str, c.s)
		}
		return ordered(c.op, strings.Compare(v.Str, c.s))
	case KindBool:
		if c.op == opContains {
			return false
		}
		s := int64(0)
		if c.sBool {
			s = 1
		}
		return ordered(c.op, cmpInt(v.Int, s))
	case KindInt:
		if c.op == opContains || !c.sIntOK {
			return false
		}
		if v.Big == nil && c.sBig == nil {
			return ordered(c.op, cmpInt(v.Int, c.sInt))
		}
		return ordered(c.op, bigOf(v.Int, v.Big).Cmp(bigOf(c.sInt, c.sBig)))
	case KindFloat:
		if c.op == opContains || !c.sFloatOK {
			return false
		}
		a, b := v.Float, c.sFloat
		if math.IsNaN(a) || math.IsNaN(b) {
			return c.op == opNotEqual
		}
		switch {
		case a < b:
			return ordered(c.op, -1)
		case a > b:
			return ordered(c.op, 1)
		}
		return ordered(c.op, 0)
	}
	return false
}

// maxExactInt bounds the integers that float64 represents exactly.
const maxExactInt = 1 << 53

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func ordered(op opcode, c int) bool {
	switch op {
	case opEqual:
		return c == 0
	case opNotEqual:
		return c != 0
	case opGreaterThan:
		return c > 0
	case opGreaterThanInclusive:
		return c >= 0
	case opLessThan:
		return c < 0
	case opLessThanInclusive:
		return c <= 0
	}
	return false
}

// AppendJSON appends the result in the evaluation-result schema:
// {"flags": {name: {...}}, "segments": [{name, metadata?}]}.
func (r *Result) AppendJSON(dst []byte) []byte {
	p := r.prog
	dst = append(dst, `{"flags":{`...)
	for i := range r.Flags {
		f := &r.Flags[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, f.Name())
		dst = append(dst, `:{"name":`...)
		dst = appendJSONString(dst, f.source.f.Name)
		dst = append(dst, `,"enabled":`...)
		dst = strconv.AppendBool(dst, f.Enabled())
		dst = append(dst, `,"value":`...)
		dst = appendRaw(dst, f.Value())
		dst = append(dst, `,"reason":`...)
		dst = appendJSONString(dst, f.Reason(p))
		dst = append(dst, `,"variant":`...)
		if k, ok := f.Variant(); ok {
			dst = appendJSONString(dst, k)
		} else {
			dst = append(dst, "null"...)
		}
		if m := f.Metadata(); m != nil {
			dst = append(dst, `,"metadata":`...)
			dst = append(dst, m...)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `},"segments":[`...)
	for i, si := range r.Segments {
		if i > 0 {
			dst = append(dst, ',')
		}
		s := p.segments[si].s
		dst = append(dst, `{"name":`...)
		dst = appendJSONString(dst, s.Name)
		if s.Metadata != nil {
			dst = append(dst, `,"metadata":`...)
			dst = append(dst, s.Metadata...)
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

func appendRaw(dst []byte, raw json.RawMessage) []byte {
	if raw == nil {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}

// appendJSONString appends s as a JSON string literal, escaping as
// encoding/json does (including HTML-sensitive characters).
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// AppendJSONString appends s as a JSON string literal.
func AppendJSONString(dst []byte, s string) []byte { return appendJSONString(dst, s) }

// EvaluateContext compiles and evaluates a whole context, for one-off use
// (the conformance suite, `fledge eval --context`).
func EvaluateContext(ctx *Context) (*Result, *Program, error) {
	p, err := Compile(ctx)
	if err != nil {
		return nil, nil, err
	}
	var r Result
	p.Evaluate(ctx.Identity, &r)
	return &r, p, nil
}

func bigOf(i int64, b *big.Int) *big.Int {
	if b != nil {
		return b
	}
	return big.NewInt(i)
}

// Default returns the environment default of the feature at index i.
func (p *Program) Default(i int) *Feature { return p.features[i].f }
