package main

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Result is the JSON line printed for each target after a load test.
type Result struct {
	Label           string  `json:"label,omitempty"`
	Method          string  `json:"method"`
	URL             string  `json:"url"`
	Concurrency     int     `json:"concurrency"`
	Rounds          int     `json:"rounds"`
	WarmupSeconds   float64 `json:"warmup_s"`
	DurationSeconds float64 `json:"duration_s"`
	Requests        uint64  `json:"requests"`
	RPS             float64 `json:"rps"`
	P50ms           float64 `json:"p50_ms"`
	P90ms           float64 `json:"p90_ms"`
	P99ms           float64 `json:"p99_ms"`
	P999ms          float64 `json:"p999_ms"`
	MaxMs           float64 `json:"max_ms"`
	MeanMs          float64 `json:"mean_ms"`
	Errors          uint64  `json:"errors"`
	Non200          uint64  `json:"non_200"`
	TransportErrors uint64  `json:"transport_errors"`
	BodyBytes       float64 `json:"body_bytes_avg"`
	// CPUBusy is each CPU's busy fraction during the measured slices, from
	// /proc/stat (Linux), so a saturated load generator shows up.
	CPUBusy []float64 `json:"cpu_busy,omitempty"`
	// With -pid: the server's CPU time during the measured slices, its share
	// of the wall-clock time, and requests per server CPU second.
	ServerCPUSeconds float64 `json:"server_cpu_s,omitempty"`
	ServerCPUShare   float64 `json:"server_cpu_share,omitempty"`
	RPSPerServerCPU  float64 `json:"rps_per_server_cpu,omitempty"`
	FirstError       string  `json:"first_error,omitempty"`
	// SliceRPS is each measured slice's requests/s, in the order the slices
	// ran. With -groups 2 and targets given as A1 B1 A2 B2 …, slice i of
	// group A ran right next to slice i of group B, so their ratio is
	// little affected by background load that changes over seconds.
	SliceRPS []float64 `json:"slice_rps,omitempty"`
	// Sequence is, with -template, how many {{seq}} values the whole run
	// has issued (every target's requests, warm-ups included): the last
	// one sent is Sequence-1.
	Sequence uint64 `json:"sequence,omitempty"`
}

// stats accumulates one target's measurements over its slices.
type stats struct {
	hist       Hist
	non200     uint64
	transport  uint64
	bodyBytes  int64
	firstError string
	elapsed    time.Duration
	cpu        []cpuTimes
	serverCPU  float64 // seconds; < 0 when unknown
	slices     []sliceRPS
}

// sliceRPS is one measured slice: when it ran (its place in the run) and
// its requests/s.
type sliceRPS struct {
	seq int
	rps float64
}

// mergeSlices adds another target's measured slices to s: what merge adds
// plus the measured time and the CPU times.
func (s *stats) mergeSlices(o *stats) {
	s.merge(o)
	s.elapsed += o.elapsed
	for i := range min(len(s.cpu), len(o.cpu)) {
		s.cpu[i].busy += o.cpu[i].busy
		s.cpu[i].total += o.cpu[i].total
	}
	if s.serverCPU >= 0 && o.serverCPU >= 0 {
		s.serverCPU += o.serverCPU
	} else {
		s.serverCPU = -1
	}
	s.slices = append(s.slices, o.slices...)
	slices.SortFunc(s.slices, func(a, b sliceRPS) int { return a.seq - b.seq })
}

func (s *stats) merge(o *stats) {
	s.hist.Merge(&o.hist)
	s.non200 += o.non200
	s.transport += o.transport
	s.bodyBytes += o.bodyBytes
	if s.firstError == "" {
		s.firstError = o.firstError
	}
}

// loadTest runs every target for o.duration in o.rounds slices, in turns
// (A B, then B A, …), and returns one result per target.
func loadTest(targets []*target, o options) []Result {
	var budget atomic.Int64
	budget.Store(o.maxRequests)
	acc := make([]*stats, len(targets))
	for i := range acc {
		acc[i] = &stats{}
	}
	slice := o.duration / time.Duration(o.rounds)
	order := make([]int, len(targets))
	for i := range order {
		order[i] = i
	}
	seq := 0
	for r := 0; r < o.rounds; r++ {
		warm := o.rewarmup
		if r == 0 {
			warm = o.warmup
		}
		d := slice
		if r == o.rounds-1 {
			d = o.duration - slice*time.Duration(o.rounds-1)
		}
		for _, i := range order {
			runSlice(targets[i], o, warm, d, &budget, acc[i], seq)
			seq++
		}
		slices.Reverse(order)
	}
	if o.groups > 0 {
		for i := o.groups; i < len(acc); i++ {
			acc[i%o.groups].mergeSlices(acc[i])
		}
		acc = acc[:o.groups]
	}
	out := make([]Result, len(acc))
	for i, s := range acc {
		out[i] = result(targets[i], o, s)
	}
	return out
}

// runSlice runs one target for warm+d with fresh connections, adding what
// completes in the last d to acc.
func runSlice(t *target, o options, warm, d time.Duration, budget *atomic.Int64, acc *stats, seq int) {
	start := time.Now()
	measureStart := start.Add(warm)
	measureEnd := measureStart.Add(d)
	var cpu0 []cpuTimes
	proc0 := -1.0
	snap := make(chan struct{})
	go func() {
		defer close(snap)
		time.Sleep(time.Until(measureStart))
		cpu0, proc0 = readCPUTimes(), procCPUSeconds(t.pid)
	}()
	per := make([]*stats, o.concurrency)
	var wg sync.WaitGroup
	for i := range per {
		s := &stats{}
		per[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker(newConn(t, i, o.timeout), measureStart, measureEnd, budget, s)
		}()
	}
	wg.Wait()
	<-snap
	cpu1, proc1 := readCPUTimes(), procCPUSeconds(t.pid)
	elapsed := d
	if now := time.Now(); now.Before(measureEnd) { // the request budget ran out
		elapsed = max(now.Sub(measureStart), 0)
	}
	var n uint64
	for _, s := range per {
		acc.merge(s)
		n += s.hist.Count()
	}
	if elapsed > 0 {
		acc.slices = append(acc.slices, sliceRPS{seq: seq, rps: float64(n) / elapsed.Seconds()})
	}
	acc.elapsed += elapsed
	acc.cpu = addCPU(acc.cpu, cpu0, cpu1)
	if proc0 >= 0 && proc1 >= 0 && acc.serverCPU >= 0 {
		acc.serverCPU += proc1 - proc0
	} else {
		acc.serverCPU = -1
	}
}

func result(t *target, o options, s *stats) Result {
	n := s.hist.Count()
	res := Result{
		Label: o.label, Method: strings.ToUpper(o.method), URL: t.url, Concurrency: o.concurrency, Rounds: o.rounds,
		WarmupSeconds: o.warmup.Seconds(), DurationSeconds: s.elapsed.Seconds(),
		Requests: n, P50ms: ms(s.hist.Quantile(0.50)), P90ms: ms(s.hist.Quantile(0.90)),
		P99ms: ms(s.hist.Quantile(0.99)), P999ms: ms(s.hist.Quantile(0.999)), MaxMs: ms(s.hist.Max()),
		MeanMs: s.hist.Mean() / 1e6, Non200: s.non200, TransportErrors: s.transport,
		Errors: s.non200 + s.transport, FirstError: s.firstError, CPUBusy: busyFractions(s.cpu),
	}
	if s.elapsed > 0 {
		res.RPS = float64(n) / s.elapsed.Seconds()
	}
	if n > 0 {
		res.BodyBytes = float64(s.bodyBytes) / float64(n)
	}
	for _, sl := range s.slices {
		res.SliceRPS = append(res.SliceRPS, sl.rps)
	}
	if t.tmpl != nil {
		res.Sequence = t.tmpl.seq.Load()
	}
	if t.pid > 0 && s.serverCPU > 0 {
		res.ServerCPUSeconds = s.serverCPU
		res.ServerCPUShare = s.serverCPU / s.elapsed.Seconds()
		res.RPSPerServerCPU = float64(n) / s.serverCPU
	}
	return res
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// worker runs one connection's closed loop. A response counts when it
// completes inside [measureStart, measureEnd); errors during the warm-up are
// not counted either.
func worker(c *conn, measureStart, measureEnd time.Time, budget *atomic.Int64, s *stats) {
	defer c.close()
	for {
		t0 := time.Now()
		if !t0.Before(measureEnd) || budget.Add(-1) < 0 {
			return
		}
		resp, err := c.do(t0)
		t1 := time.Now()
		measured := !t1.Before(measureStart) && t1.Before(measureEnd)
		if err != nil {
			if measured {
				s.transport++
				if s.firstError == "" {
					s.firstError = err.Error()
				}
			}
			time.Sleep(10 * time.Millisecond) // no busy loop against a dead server
			continue
		}
		if !measured {
			continue
		}
		s.hist.Record(int64(t1.Sub(t0)))
		s.bodyBytes += resp.bodySize
		if resp.status != 200 {
			s.non200++
			if s.firstError == "" {
				s.firstError = "status " + strconv.Itoa(resp.status)
			}
		}
	}
}
