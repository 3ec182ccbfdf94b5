package jsonpath

import (
	"maps"
	"slices"
)

// maxDepth bounds how deep descendant segments and deep equality descend
// into a value. Real documents are far shallower (the Python library gives
// up at 100); the bound exists so that cyclic Go values terminate in
// reasonable time.
const maxDepth = 1024

// evaluator carries the query argument so that absolute queries inside
// filters can reach it.
type evaluator struct {
	root any
}

// singularLookup evaluates segments that each select at most one child by
// name or index. It does not allocate.
func singularLookup(segs []segment, v any) (any, bool) {
	for i := range segs {
		sel := &segs[i].selectors[0]
		switch sel.kind {
		case nameSelector:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[sel.name]; !ok {
				return nil, false
			}
		case indexSelector:
			a, ok := v.([]any)
			if !ok {
				return nil, false
			}
			i, ok := normalizeIndex(sel.index, len(a))
			if !ok {
				return nil, false
			}
			v = a[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func normalizeIndex(idx int64, n int) (int, bool) {
	if idx < 0 {
		idx += int64(n)
	}
	if idx < 0 || idx >= int64(n) {
		return 0, false
	}
	return int(idx), true
}

// walk applies segs to node and passes each resulting node to yield, in
// result order, until yield returns false. It works depth-first so that
// First can stop early, and keeps its own stack rather than recursing per
// segment so that a query with very many segments cannot overflow the
// goroutine stack.
func (ev *evaluator) walk(segs []segment, node any, yield func(any) bool) bool {
	if len(segs) == 0 {
		return yield(node)
	}
	type frame struct {
		seg  int
		node any
	}
	stack := []frame{{0, node}}
	var buf []any
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		buf = ev.segment(&segs[f.seg], f.node, buf[:0])
		if f.seg == len(segs)-1 {
			for _, v := range buf {
				if !yield(v) {
					return false
				}
			}
			continue
		}
		for i := len(buf) - 1; i >= 0; i-- {
			stack = append(stack, frame{f.seg + 1, buf[i]})
		}
	}
	return true
}

// nodes evaluates an embedded query relative to cur or the root.
func (ev *evaluator) nodes(q *query, cur any, yield func(any) bool) {
	start := cur
	if q.absolute {
		start = ev.root
	}
	if q.singular {
		if v, ok := singularLookup(q.segments, start); ok {
			yield(v)
		}
		return
	}
	ev.walk(q.segments, start, yield)
}

func (ev *evaluator) segment(seg *segment, node any, out []any) []any {
	if seg.descendant {
		return ev.descend(seg.selectors, node, out, 0)
	}
	return ev.selectors(seg.selectors, node, out)
}

// descend visits node and then its descendants in pre-order, matching the
// Python library, and applies the selectors to each.
func (ev *evaluator) descend(sels []selector, node any, out []any, depth int) []any {
	out = ev.selectors(sels, node, out)
	if depth >= maxDepth {
		return out
	}
	switch v := node.(type) {
	case map[string]any:
		for _, k := range sortedKeys(v) {
			out = ev.descend(sels, v[k], out, depth+1)
		}
	case []any:
		for _, c := range v {
			out = ev.descend(sels, c, out, depth+1)
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}

func (ev *evaluator) selectors(sels []selector, node any, out []any) []any {
	for i := range sels {
		sel := &sels[i]
		switch sel.kind {
		case nameSelector:
			if m, ok := node.(map[string]any); ok {
				if v, ok := m[sel.name]; ok {
					out = append(out, v)
				}
			}
		case indexSelector:
			if a, ok := node.([]any); ok {
				if i, ok := normalizeIndex(sel.index, len(a)); ok {
					out = append(out, a[i])
				}
			}
		case sliceSelector:
			if a, ok := node.([]any); ok {
				out = appendSlice(out, a, sel.slice)
			}
		case wildcardSelector:
			switch v := node.(type) {
			case map[string]any:
				for _, k := range sortedKeys(v) {
					out = append(out, v[k])
				}
			case []any:
				out = append(out, v...)
			}
		case filterSelector:
			switch v := node.(type) {
			case map[string]any:
				for _, k := range sortedKeys(v) {
					if ev.test(sel.filter, v[k]) {
						out = append(out, v[k])
					}
				}
			case []any:
				for _, c := range v {
					if ev.test(sel.filter, c) {
						out = append(out, c)
					}
				}
			}
		}
	}
	return out
}

// appendSlice implements RFC 9535 §2.3.4.2.2.
func appendSlice(out, a []any, b sliceBounds) []any {
	n := int64(len(a))
	step := int64(1)
	if b.hasStep {
		step = b.step
	}
	if step == 0 {
		return out
	}
	norm := func(i int64) int64 {
		if i < 0 {
			return n + i
		}
		return i
	}
	if step > 0 {
		start, end := int64(0), n
		if b.hasStart {
			start = norm(b.start)
		}
		if b.hasEnd {
			end = norm(b.end)
		}
		lower, upper := min(max(start, 0), n), min(max(end, 0), n)
		for i := lower; i < upper; i += step {
			out = append(out, a[i])
		}
		return out
	}
	start, end := n-1, -n-1
	if b.hasStart {
		start = norm(b.start)
	}
	if b.hasEnd {
		end = norm(b.end)
	}
	upper, lower := min(max(start, -1), n-1), min(max(end, -1), n-1)
	for i := upper; lower < i; i += step {
		out = append(out, a[i])
	}
	return out
}
