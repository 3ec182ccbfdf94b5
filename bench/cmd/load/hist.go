package main

import (
	"math"
	"math/bits"
)

// subBits sets the histogram's precision: values below 2^subBits are
// counted exactly, larger ones in buckets 1/2^(subBits-1) of their magnitude
// wide, so a recorded value and the value reported for it differ by less than
// 1/64 (1.6%) of it.
const (
	subBits  = 7
	subCount = 1 << subBits // 128
	subHalf  = subCount / 2 // 64
	// Shifts go up to 64-subBits, so this many buckets hold any uint64.
	numBuckets = (64 - subBits + 2) * subHalf
)

// Hist is an HDR-style log-linear histogram of non-negative integers
// (latencies in nanoseconds here): fixed size, no allocation per value, and
// histograms of separate workers merge by adding counts.
type Hist struct {
	counts   [numBuckets]uint64
	n        uint64
	sum      float64
	min, max uint64
}

// bucketOf maps a value to its bucket index; indexes grow with values.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits // ≥ 1
	return shift*subHalf + int(v>>uint(shift))
}

// bucketRange is the smallest and largest value that map to bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	shift := uint(i/subHalf - 1)
	sub := uint64(i%subHalf + subHalf)
	lo = sub << shift
	return lo, lo + (1 << shift) - 1
}

// Record adds one value; negative values count as zero.
func (h *Hist) Record(v int64) {
	if v < 0 {
		v = 0
	}
	u := uint64(v)
	h.counts[bucketOf(u)]++
	if h.n == 0 || u < h.min {
		h.min = u
	}
	if u > h.max {
		h.max = u
	}
	h.n++
	h.sum += float64(u)
}

// Merge adds o's values to h.
func (h *Hist) Merge(o *Hist) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of recorded values.
func (h *Hist) Count() uint64 { return h.n }

// Max is the largest recorded value (exact).
func (h *Hist) Max() int64 { return int64(h.max) }

// Mean is the exact mean of the recorded values.
func (h *Hist) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Quantile returns the value at quantile q (0 < q ≤ 1) by the nearest-rank
// rule: the smallest recorded value v such that at least q of all values are
// ≤ v, reported as the upper end of v's bucket (capped at the exact maximum),
// so it is never below the true value and exceeds it by less than 1/64.
// It returns 0 for an empty histogram.
func (h *Hist) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.n {
		rank = h.n
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(i)
			if hi > h.max {
				hi = h.max
			}
			if hi < h.min {
				hi = h.min
			}
			return int64(hi)
		}
	}
	return int64(h.max)
}
