package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// nearestRank is the exact quantile of a sorted sample by the rule Quantile
// approximates.
func nearestRank(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func TestBucketsCoverEveryValue(t *testing.T) {
	check := func(v uint64) {
		t.Helper()
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, numBuckets)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if lo >= subCount && float64(hi-lo+1) > float64(lo)/subHalf {
			t.Fatalf("bucket %d = [%d, %d] wider than 1/%d of its values", i, lo, hi, subHalf)
		}
	}
	for v := uint64(0); v < 1<<16; v++ {
		check(v)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		check(r.Uint64() >> r.UintN(64))
	}
	check(math.MaxUint64)
	check(math.MaxInt64)
}

func TestBucketsAreContiguousAndOrdered(t *testing.T) {
	_, prevHi := bucketRange(0)
	for i := 1; i < numBuckets; i++ {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf("bucket %d = [%d, %d] does not follow the previous one ending at %d", i, lo, hi, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d = [%d, %d]: ends map to %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		prevHi = hi
	}
	if prevHi != math.MaxUint64 {
		t.Fatalf("last bucket ends at %d, not MaxUint64", prevHi)
	}
}

func TestQuantileMatchesSortedSample(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 7, 100, 1000, 100000} {
		var h Hist
		sample := make([]int64, n)
		for i := range sample {
			// Latency-like: log-normal around 300 µs with a long tail.
			v := int64(300e3 * math.Exp(r.NormFloat64()))
			sample[i] = v
			h.Record(v)
		}
		slices.Sort(sample)
		for _, q := range []float64{0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1} {
			want := nearestRank(sample, q)
			got := h.Quantile(q)
			if got < want || float64(got) > float64(want)*(1+1.0/subHalf) {
				t.Errorf("n=%d q=%v: Quantile = %d, exact %d (allowed [%d, %d])", n, q, got, want, want, int64(float64(want)*(1+1.0/subHalf)))
			}
		}
		if h.Quantile(1) != sample[n-1] || h.Max() != sample[n-1] {
			t.Errorf("n=%d: max %d / Quantile(1) %d, want %d", n, h.Max(), h.Quantile(1), sample[n-1])
		}
		var sum float64
		for _, v := range sample {
			sum += float64(v)
		}
		if m := h.Mean(); math.Abs(m-sum/float64(n)) > 1e-6*m {
			t.Errorf("n=%d: mean %v, want %v", n, m, sum/float64(n))
		}
	}
}

func TestQuantileSmallExactValues(t *testing.T) {
	var h Hist
	for v := int64(1); v <= 100; v++ { // below subCount every value has its own bucket
		h.Record(v)
	}
	for q, want := range map[float64]int64{0.01: 1, 0.5: 50, 0.505: 51, 0.99: 99, 1: 100} {
		if got := h.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %d, want %d", q, got, want)
		}
	}
	if h.Count() != 100 {
		t.Errorf("Count = %d, want 100", h.Count())
	}
}

func TestQuantileEdgeCases(t *testing.T) {
	var h Hist
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Fatal("empty histogram: want zeros")
	}
	h.Record(-5) // counts as zero
	if h.Quantile(0.99) != 0 {
		t.Fatalf("negative value: Quantile = %d, want 0", h.Quantile(0.99))
	}
	var one Hist
	one.Record(123456789)
	for _, q := range []float64{0, 0.5, 1} {
		if got := one.Quantile(q); got != 123456789 {
			t.Errorf("single value: Quantile(%v) = %d, want it exactly (capped by min and max)", q, got)
		}
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var all, a, b Hist
	for i := range 50000 {
		v := int64(r.ExpFloat64() * 1e6)
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	var empty, merged Hist
	merged.Merge(&a)
	merged.Merge(&empty)
	merged.Merge(&b)
	if merged.counts != all.counts || merged.Count() != all.Count() || merged.Max() != all.Max() || merged.min != all.min {
		t.Fatal("merged histogram differs from one that recorded every value")
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		if merged.Quantile(q) != all.Quantile(q) {
			t.Errorf("Quantile(%v): merged %d, together %d", q, merged.Quantile(q), all.Quantile(q))
		}
	}
}
