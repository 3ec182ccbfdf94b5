package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestPairedRatio(t *testing.T) {
	for _, tt := range []struct {
		name           string
		f, c           []float64
		median, lo, hi float64
		pairs          int
	}{
		{"none", nil, nil, 0, 0, 0, 0},
		{"one", []float64{90}, []float64{100}, 0.9, 0.9, 0.9, 1},
		{"odd: the middle pair", []float64{90, 50, 100}, []float64{100, 100, 100}, 0.9, 0.5, 1, 3},
		{"even: mean of the middle two", []float64{80, 90, 100, 70}, []float64{100, 100, 100, 100}, 0.85, 0.7, 1, 4},
		{"a slow stretch hitting both kinds cancels", []float64{90, 45, 90}, []float64{100, 50, 100}, 0.9, 0.9, 0.9, 3},
		{"a burst on one slice does not move it", []float64{90, 20, 91, 89}, []float64{100, 100, 100, 100}, 0.895, 0.2, 0.91, 4},
		{"unequal lengths pair the common prefix", []float64{90, 90, 10}, []float64{100, 100}, 0.9, 0.9, 0.9, 2},
		{"empty ceiling slices skipped", []float64{90, 90}, []float64{0, 100}, 0.9, 0.9, 0.9, 1},
	} {
		m, lo, hi, n := pairedRatio(tt.f, tt.c)
		near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
		if !near(m, tt.median) || !near(lo, tt.lo) || !near(hi, tt.hi) || n != tt.pairs {
			t.Errorf("%s: got (%v, %v, %v, %d), want (%v, %v, %v, %d)", tt.name, m, lo, hi, n, tt.median, tt.lo, tt.hi, tt.pairs)
		}
	}
}

// TestRenderUsesPairedRatio: the verdict follows the paired median, and the
// totals' ratio is shown beside it.
func TestRenderUsesPairedRatio(t *testing.T) {
	in := `{"kind":"endpoint","id":"flags-P2","fledge":{"rps":70,"slice_rps":[90,20,90]},"ceiling":{"rps":100,"slice_rps":[100,100,100]},"hwm_kb":1024}
{"kind":"endpoint","id":"flags-P1","fledge":{"rps":80,"slice_rps":[80,80]},"ceiling":{"rps":100,"slice_rps":[100,100]},"hwm_kb":1024}
`
	lines, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if failed := render(&out, lines); failed != 1 {
		t.Fatalf("%d rows failed, want 1 (flags-P1 at 0.80):\n%s", failed, out.String())
	}
	got := out.String()
	for _, want := range []string{"| 0.90 |", "3 paired slices: ratio 0.20–0.90; ratio of the totals 0.70", "| 0.80 |", "FAIL (ratio 0.80"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
