// Command report turns the JSON lines written by bench/run into the
// benchmark table (Markdown), each row checked against its target.
//
//	report RESULTS.jsonl
//
// Input lines, by "kind":
//
//	{"kind":"endpoint","id":"flags-P1","fledge":LOAD,"ceiling":LOAD,"hwm_kb":N}
//	{"kind":"idle","rss_kb":N}
//	{"kind":"peak","hwm_kb":N}
//	{"kind":"swap","load":LOAD,"swaps":N,"compile_ms":X,"hwm_kb":N}
//
// and from bench/api-run (the Edge API, fledge api):
//
//	{"kind":"endpoint","id":"api-identity-P2",…}          as above; "identities":N for the random row
//	{"kind":"fsync","when":"before",FSYNC}               a line printed by bench/cmd/fsyncrate, tagged
//	{"kind":"writes","load":LOAD,"verified":N,"min_per_flush":X}
//	{"kind":"store","identities":N,"fill_s":X,…}         see storeLine
//
// where LOAD is a line printed by bench/cmd/load. The exit status is 0 when
// every target is met and 3 when one is missed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

type load struct {
	RPS             float64   `json:"rps"`
	P50ms           float64   `json:"p50_ms"`
	P99ms           float64   `json:"p99_ms"`
	Errors          uint64    `json:"errors"`
	ServerCPUShare  float64   `json:"server_cpu_share"`
	RPSPerServerCPU float64   `json:"rps_per_server_cpu"`
	CPUBusy         []float64 `json:"cpu_busy"`
	SliceRPS        []float64 `json:"slice_rps"`
}

type line struct {
	Kind      string  `json:"kind"`
	ID        string  `json:"id"`
	Fledge    *load   `json:"fledge"`
	Ceiling   *load   `json:"ceiling"`
	Load      *load   `json:"load"`
	HWMkB     float64 `json:"hwm_kb"`
	RSSkB     float64 `json:"rss_kb"`
	Swaps     int     `json:"swaps"`
	CompileMs float64 `json:"compile_ms"`
	// The Edge API's lines (bench/api-run).
	Identities  int     `json:"identities"`
	Cache       string  `json:"cache"`
	Concurrency int     `json:"concurrency"`
	Verified    int     `json:"verified"`
	MinPerFlush float64 `json:"min_per_flush"`
	// Flushes is fledge's fdatasync+fsync calls over FlushSeconds of the
	// measured window (perf); -1 when they could not be counted.
	Flushes      float64 `json:"flushes"`
	FlushSeconds float64 `json:"flush_seconds"`
	fsyncLine
	storeLine
}

// fsyncLine is bench/cmd/fsyncrate's output: one writer's write+flush loop
// in the store's directory.
type fsyncLine struct {
	When    string  `json:"when"`
	Sync    string  `json:"sync"`
	Size    int     `json:"size"`
	Flushes int     `json:"flushes"`
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rate"`
	FP50ms  float64 `json:"p50_ms"`
	FP99ms  float64 `json:"p99_ms"`
}

// storeLine describes a filled store and a fledge api serving it.
type storeLine struct {
	FillSeconds  float64   `json:"fill_s"`
	FillWorkers  int       `json:"fill_workers"`
	File         fileStats `json:"file"`
	ColdStartMs  float64   `json:"start_cold_ms"`
	WarmStartMs  float64   `json:"start_warm_ms"`
	CacheFileMs  float64   `json:"cache_file_ms"`
	StoreChecked int       `json:"checked"`
	Memory       []memory  `json:"memory"`
}

// fileStats is bench/cmd/fillstore -stats: a store file's size and what
// its bytes hold.
type fileStats struct {
	FileBytes     float64 `json:"file_bytes"`
	DiskBytes     float64 `json:"disk_bytes"`
	UsedFileBytes float64 `json:"used_file_bytes"`
	TreeBytes     float64 `json:"tree_bytes"`
	TreeUsedBytes float64 `json:"tree_used_bytes"`
	FreeBytes     float64 `json:"free_bytes"`
}

// memory is a process's memory at one point (/proc/PID/status).
type memory struct {
	When   string  `json:"when"`
	RSSkB  float64 `json:"rss_kb"`
	AnonB  float64 `json:"anon_kb"`
	FilekB float64 `json:"file_kb"`
	HWMkB  float64 `json:"hwm_kb"`
}

// endpoint describes a measured endpoint: its name, its target and the
// figures Flagsmith published for its own proxies (design.md).
type endpoint struct {
	name      string
	minRatio  float64
	maxP99x   float64 // fledge p99 ≤ maxP99x × ceiling p99; 0 = no such target
	published string
}

var endpoints = map[string]endpoint{
	"flags-P1":        {"GET /api/v1/flags/ P1", 0.85, 0, "Rust proxy P1: 10,075"},
	"flags-P2":        {"GET /api/v1/flags/ P2", 0.85, 0, "Python proxy P2 1 vCPU: ~63"},
	"flags-gzip-P2":   {"GET /api/v1/flags/ P2 gzip", 0.85, 0, "Python proxy P2 1 vCPU: ~63"},
	"envdoc-gzip-P2":  {"GET /api/v1/environment-document/ P2 gzip", 0.85, 0, "Python P2: ~570; Rust P1: 17,904"},
	"envdoc-plain-P2": {"GET /api/v1/environment-document/ P2 plain", 0.85, 0, "Python P2: ~570; Rust P1: 17,904"},
	"identities-P1":   {"POST /api/v1/identities/ P1", 0.6, 2, "Rust proxy P1: 14,110"},
	"identities-P2":   {"POST /api/v1/identities/ P2 worst case (15 traits)", 0.4, 0, "Python proxy P2 1 vCPU: ~72"},
	// fledge api (bench/api-run)
	"api-identity-P2":     {"fledge api: GET /api/v1/identities/ P2, server key, 15 stored traits", 0.5, 0, ""},
	"api-identity-random": {"fledge api: GET /api/v1/identities/ P2, server key, a random stored identity (5 traits)", 0, 0, ""},
}

const (
	maxPeakMiB = 40
	maxIdleMiB = 15
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: report RESULTS.jsonl")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(2)
	}
	defer f.Close()
	lines, err := parse(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(2)
	}
	if failed := render(os.Stdout, lines); failed > 0 {
		os.Exit(3)
	}
}

func parse(r io.Reader) ([]line, error) {
	var out []line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if l.Kind == "endpoint" {
			if _, ok := endpoints[l.ID]; !ok || l.Fledge == nil || l.Ceiling == nil {
				return nil, fmt.Errorf("line %d: unknown endpoint %q or missing measurements", n, l.ID)
			}
		}
		if (l.Kind == "swap" || l.Kind == "writes") && l.Load == nil {
			return nil, fmt.Errorf("line %d: %s without load", n, l.Kind)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

func rps(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	// thousands separators
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func mib(kb float64) string { return fmt.Sprintf("%.1f MiB", kb/1024) }

// render prints the tables and returns the number of missed targets: the
// endpoints (fledge or fledge api against a ceiling), then the Edge API's
// durable writes and its store, when the results have such lines.
func render(w io.Writer, lines []line) int {
	failed := 0
	verdict := func(ok bool, miss string) string {
		if ok {
			return "PASS"
		}
		failed++
		return "FAIL (" + miss + ")"
	}
	has := func(kinds ...string) bool {
		return slices.ContainsFunc(lines, func(l line) bool { return slices.Contains(kinds, l.Kind) })
	}
	if has("endpoint", "peak", "idle", "swap") {
		renderEndpoints(w, lines, verdict)
	}
	if has("writes", "fsync") {
		fmt.Fprintln(w)
		renderWrites(w, lines, verdict)
	}
	if has("store") {
		fmt.Fprintln(w)
		renderStores(w, lines)
	}
	return failed
}

func renderEndpoints(w io.Writer, lines []line, verdict func(bool, string) string) {
	fmt.Fprintln(w, "| endpoint | fledge rps | ceiling rps | ratio | fledge p50 / p99 ms | ceiling p99 ms | errors | target | result | Flagsmith published (rps) | notes |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |")
	for _, l := range lines {
		switch l.Kind {
		case "endpoint":
			e := endpoints[l.ID]
			if l.Identities > 0 {
				e.name += ", of " + rps(float64(l.Identities)) + " stored"
			}
			switch l.Cache {
			case "cold":
				e.name += ", store file cold (evicted from the page cache before the start)"
			case "warm":
				e.name += ", store file in the page cache"
			}
			f, c := l.Fledge, l.Ceiling
			ratio, lo, hi, pairs := pairedRatio(f.SliceRPS, c.SliceRPS)
			if pairs == 0 && c.RPS > 0 { // results without slices
				ratio = f.RPS / c.RPS // lo and hi go unshown without pairs
			}
			target := fmt.Sprintf("ratio ≥ %.2f", e.minRatio)
			if e.minRatio == 0 {
				target = "ratio reported"
			}
			var misses []string
			if ratio < e.minRatio {
				misses = append(misses, fmt.Sprintf("ratio %.2f short by %.2f, needs %.0f%% more rps", ratio, e.minRatio-ratio, 100*(e.minRatio/ratio-1)))
			}
			if e.maxP99x > 0 {
				target += fmt.Sprintf(", p99 ≤ %.0f× ceiling", e.maxP99x)
				if limit := e.maxP99x * c.P99ms; f.P99ms > limit {
					misses = append(misses, fmt.Sprintf("p99 %.2f ms > %.2f ms by %.0f%%", f.P99ms, limit, 100*(f.P99ms/limit-1)))
				}
			}
			target += ", 0 errors"
			if f.Errors > 0 {
				misses = append(misses, fmt.Sprintf("%d errors", f.Errors))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.2f | %.2f / %.2f | %.2f | %d | %s | %s | %s | %s |\n",
				e.name, rps(f.RPS), rps(c.RPS), ratio, f.P50ms, f.P99ms, c.P99ms, f.Errors, target,
				verdict(len(misses) == 0, strings.Join(misses, "; ")), e.published, notes(f, c, l.HWMkB, lo, hi, pairs))
		case "peak":
			mb := l.HWMkB / 1024
			fmt.Fprintf(w, "| fledge peak RSS (VmHWM), P1+P2 loaded, after all runs above | %s | – | – | – | – | – | ≤ %d MiB | %s | | |\n",
				mib(l.HWMkB), maxPeakMiB, verdict(mb <= maxPeakMiB, fmt.Sprintf("%.1f MiB over", mb-maxPeakMiB)))
		case "idle":
			mb := l.RSSkB / 1024
			fmt.Fprintf(w, "| fledge idle RSS (VmRSS), upstream answering 500, nothing loaded | %s | – | – | – | – | – | ≤ %d MiB | %s | | |\n",
				mib(l.RSSkB), maxIdleMiB, verdict(mb <= maxIdleMiB, fmt.Sprintf("%.1f MiB over", mb-maxIdleMiB)))
		case "swap":
			f := l.Load
			mb := l.HWMkB / 1024
			var misses []string
			if f.Errors > 0 {
				misses = append(misses, fmt.Sprintf("%d failed requests", f.Errors))
			}
			if l.Swaps == 0 {
				misses = append(misses, "no swap happened")
			}
			if mb > maxPeakMiB {
				misses = append(misses, fmt.Sprintf("VmHWM %.1f MiB over", mb-maxPeakMiB))
			}
			fmt.Fprintf(w, "| POST /api/v1/identities/ P2 while the P2 document is swapped every second | %s | – | – | %.2f / %.2f | – | %d | 0 failed, ≥ 1 swap, VmHWM ≤ %d MiB | %s | | %d documents compiled under load (≈ %.1f ms each, BenchmarkCompile/P2); VmHWM %s |\n",
				rps(f.RPS), f.P50ms, f.P99ms, f.Errors, maxPeakMiB, verdict(len(misses) == 0, strings.Join(misses, "; ")),
				l.Swaps, l.CompileMs, mib(l.HWMkB))
		}
	}
}

// renderWrites prints the durable writes against the raw flush rate of the
// store's disk. A row with min_per_flush > 0 must reach that many writes
// per flush of the fastest flush measurement: a rate no single writer
// could reach, since every acknowledged write is flushed.
func renderWrites(w io.Writer, lines []line, verdict func(bool, string) string) {
	fmt.Fprintln(w, "| fledge api: durable writes (POST /api/v1/identities/ P2, 15 traits + 1 changed) | connections | writes/s | p50 / p99 ms | errors | verified | flushes/s (fledge's: perf) | writes per flush | writes/s ÷ raw flushes/s | target | result |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | --- |")
	flush := 0.0
	for _, l := range lines {
		if l.Kind == "fsync" {
			flush = max(flush, l.Rate)
		}
	}
	for _, l := range lines {
		switch l.Kind {
		case "fsync":
			fmt.Fprintf(w, "| raw %s rate of the store's disk, one writer, %d B rewritten in place (%s) | 1 | %s | %.3f / %.3f | – | – | %s | 1 | 1 | | |\n",
				l.Sync, l.Size, l.When, rps(l.Rate), l.FP50ms, l.FP99ms, rps(l.Rate))
		case "writes":
			f := l.Load
			per := 0.0
			if flush > 0 {
				per = f.RPS / flush
			}
			var misses []string
			if f.Errors > 0 {
				misses = append(misses, fmt.Sprintf("%d errors", f.Errors))
			}
			if l.Verified == 0 {
				misses = append(misses, "the stored traits were not verified")
			}
			target := "0 errors, stored values verified"
			if l.MinPerFlush > 0 {
				target = fmt.Sprintf("≥ %.0f× the raw flush rate, ", l.MinPerFlush) + target
				if flush == 0 {
					misses = append(misses, "no flush rate measured")
				} else if per < l.MinPerFlush {
					misses = append(misses, fmt.Sprintf("writes/s %.2f × the raw flush rate, needs %.0f%% more writes/s", per, 100*(l.MinPerFlush/per-1)))
				}
			}
			verified := "no"
			switch {
			case l.Verified == 1:
				verified = "yes (1 identity)"
			case l.Verified > 1:
				verified = fmt.Sprintf("yes (%d identities)", l.Verified)
			}
			own, perOwn := "–", "–"
			if l.Flushes > 0 && l.FlushSeconds > 0 {
				rate := l.Flushes / l.FlushSeconds
				own, perOwn = rps(rate), fmt.Sprintf("%.1f", f.RPS/rate)
			}
			fmt.Fprintf(w, "| durable identity writes, every request changes a trait | %d | %s | %.2f / %.2f | %d | %s | %s | %s | %.2f | %s | %s |\n",
				l.Concurrency, rps(f.RPS), f.P50ms, f.P99ms, f.Errors, verified, own, perOwn, per, target, verdict(len(misses) == 0, strings.Join(misses, "; ")))
		}
	}
}

// renderStores prints what a filled store costs: disk, start-up, memory.
func renderStores(w io.Writer, lines []line) {
	for _, l := range lines {
		if l.Kind != "store" {
			continue
		}
		fmt.Fprintf(w, "| fledge api on a store of %s identities | |\n| --- | ---: |\n", rps(float64(l.Identities)))
		f, n := l.File, float64(l.Identities)
		fill := "not filled in this run (REUSE_STORE)"
		if l.FillSeconds > 0 {
			fill = fmt.Sprintf("%.0f s (%s identities/s)", l.FillSeconds, rps(float64(l.Identities)/l.FillSeconds))
		}
		rows := [][2]string{
			{"fill through Store.Update (group-committed), " + strconv.Itoa(l.FillWorkers) + " goroutines", fill},
			{"database file: size / allocated on disk", fmt.Sprintf("%s / %s (%.0f / %.0f bytes per identity)", gib(f.FileBytes), gib(f.DiskBytes), f.FileBytes/n, f.DiskBytes/n)},
			{"… of which B-tree pages (bytes in use) / free pages / allocated ahead", fmt.Sprintf("%s (%.0f%%) / %s / %s",
				mib(f.TreeBytes/1024), 100*f.TreeUsedBytes/max(f.TreeBytes, 1), mib(f.FreeBytes/1024), mib((f.FileBytes-f.UsedFileBytes)/1024))},
			{"start-up to readiness, the file out of the page cache (cold)", fmt.Sprintf("%.0f ms", l.ColdStartMs)},
			{"start-up to readiness, the file in the page cache (warm)", fmt.Sprintf("%.0f ms", l.WarmStartMs)},
			{"reading the whole file into the page cache (cat)", fmt.Sprintf("%.0f ms", l.CacheFileMs)},
		}
		for _, m := range l.Memory {
			rows = append(rows, [2]string{"RSS " + m.When + " (anonymous + file-backed)",
				fmt.Sprintf("%s (%s + %s); VmHWM %s", mib(m.RSSkB), mib(m.AnonB), mib(m.FilekB), mib(m.HWMkB))})
		}
		rows = append(rows, [2]string{"identities checked after the fill (traits present, read through the API)", strconv.Itoa(l.StoreChecked)})
		for _, r := range rows {
			fmt.Fprintf(w, "| %s | %s |\n", r[0], r[1])
		}
	}
}

func gib(b float64) string { return fmt.Sprintf("%.2f GiB", b/(1<<30)) }

// notes shows how much of its core each server had (another tenant of a
// shared machine shows up as a share well below 1), the ratio of requests
// per server CPU second, which such contention affects much less, and the
// load generator's core.
func notes(f, c *load, hwmKB, lo, hi float64, pairs int) string {
	var parts []string
	if pairs > 0 && c.RPS > 0 {
		parts = append(parts, fmt.Sprintf("%d paired slices: ratio %.2f–%.2f; ratio of the totals %.2f", pairs, lo, hi, f.RPS/c.RPS))
	}
	if f.ServerCPUShare > 0 && c.ServerCPUShare > 0 {
		parts = append(parts, fmt.Sprintf("CPU share fledge %.2f, ceiling %.2f; per-CPU-second ratio %.2f",
			f.ServerCPUShare, c.ServerCPUShare, f.RPSPerServerCPU/c.RPSPerServerCPU))
	}
	parts = append(parts, "VmHWM after run "+mib(hwmKB))
	return strings.Join(parts, "; ")
}

// pairedRatio is the row's ratio: the median, over pairs of slices that ran
// one right after the other, of fledge's requests/s over the ceiling's, with
// the lowest and highest pair. The machine's background load changes over
// seconds (one process measured in turns with others varied by ±20% from
// slice to slice, every process alike), and a pair shares most of it, where
// totals over the whole run keep what did not even out; the median keeps a
// burst that hit a single slice from moving the result.
func pairedRatio(f, c []float64) (median, lo, hi float64, pairs int) {
	var r []float64
	for i := range min(len(f), len(c)) {
		if c[i] > 0 {
			r = append(r, f[i]/c[i])
		}
	}
	if len(r) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(r)
	n := len(r)
	median = r[n/2]
	if n%2 == 0 {
		median = (r[n/2-1] + r[n/2]) / 2
	}
	return median, r[0], r[n-1], n
}
