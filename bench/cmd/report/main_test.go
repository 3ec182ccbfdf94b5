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

// TestRenderWrites: the write rate is held against the fastest flush
// measurement, and only rows that carry a target are judged by it.
func TestRenderWrites(t *testing.T) {
	in := `{"when":"before","kind":"fsync","sync":"fdatasync","size":4096,"rate":1000,"p50_ms":0.5,"p99_ms":2}
{"kind":"writes","concurrency":25,"load":{"rps":4500,"p50_ms":5,"p99_ms":9},"verified":25,"flushes":3000,"flush_seconds":10,"min_per_flush":5}
{"kind":"writes","concurrency":1,"load":{"rps":300,"p50_ms":3,"p99_ms":4},"verified":1,"flushes":-1,"flush_seconds":10,"min_per_flush":0}
{"when":"after","kind":"fsync","sync":"fdatasync","size":4096,"rate":800,"p50_ms":0.6,"p99_ms":3}
`
	lines, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if failed := render(&out, lines); failed != 1 {
		t.Fatalf("%d rows failed, want 1 (4.5 writes per flush):\n%s", failed, out.String())
	}
	got := out.String()
	for _, want := range []string{"| 25 | 4,500 | 5.00 / 9.00 | 0 | yes (25 identities) | 300 | 15.0 | 4.50 |", "FAIL (writes/s 4.50 × the raw flush rate, needs 11% more writes/s)",
		"| 1 | 300 | 3.00 / 4.00 | 0 | yes (1 identity) | – | – | 0.30 | 0 errors, stored values verified | PASS |", "(before) | 1 | 1,000 | 0.500 / 2.000 |"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "| endpoint |") {
		t.Errorf("an endpoint table without endpoint lines:\n%s", got)
	}
	// unverified writes fail whatever their rate
	lines[1].Verified = 0
	lines[1].Load.RPS = 50000
	if failed := render(&bytes.Buffer{}, lines); failed != 1 {
		t.Errorf("unverified writes: %d rows failed, want 1", failed)
	}
}

func TestRenderStore(t *testing.T) {
	in := `{"kind":"endpoint","id":"api-identity-random","cache":"warm","identities":1000000,"fledge":{"rps":5000,"errors":0},"ceiling":{"rps":10000},"hwm_kb":1024}
{"kind":"store","identities":1000000,"fill_s":100,"fill_workers":8,"file":{"file_bytes":2147483648,"disk_bytes":1073741824,"used_file_bytes":2000000000,"tree_bytes":1048576000,"tree_used_bytes":734003200,"free_bytes":524288000},"start_cold_ms":35,"start_warm_ms":12,"cache_file_ms":900,"checked":4,"memory":[{"when":"after the cold start","rss_kb":20480,"anon_kb":10240,"file_kb":10240,"hwm_kb":20480},{"when":"after GETs","rss_kb":40960,"anon_kb":12288,"file_kb":28672,"hwm_kb":41984}]}
`
	lines, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if failed := render(&out, lines); failed != 0 {
		t.Fatalf("%d rows failed, want none (no target but errors):\n%s", failed, out.String())
	}
	got := out.String()
	for _, want := range []string{"a random stored identity (5 traits), of 1,000,000 stored, store file in the page cache | 5,000 | 10,000 | 0.50 |", "ratio reported, 0 errors | PASS",
		"| 100 s (10,000 identities/s) |", "| 2.00 GiB / 1.00 GiB (2147 / 1074 bytes per identity) |", "| 1000.0 MiB (70%) / 500.0 MiB / 140.7 MiB |", "| 35 ms |", "| 12 ms |", "| 900 ms |",
		"| RSS after the cold start (anonymous + file-backed) | 20.0 MiB (10.0 MiB + 10.0 MiB); VmHWM 20.0 MiB |",
		"| RSS after GETs (anonymous + file-backed) | 40.0 MiB (12.0 MiB + 28.0 MiB); VmHWM 41.0 MiB |"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
