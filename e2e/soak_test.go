package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/bench/workload"
	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/internal/fakeapi"
)

// The soak test's knobs. The defaults are the short version that runs inside
// `go test ./...`; a long run passes them to this package alone, e.g.
//
//	go test ./e2e -run TestSoak -soak 10m -v -timeout 30m
var (
	soakDuration = flag.Duration("soak", 8*time.Second, "how long TestSoak holds its open-loop load")
	soakLoad     = flag.Float64("soak-load", 0.7, "TestSoak's load as a fraction of the peak it measures first")
)

const (
	// updatedAtHeader names the version of the document an answer came from.
	updatedAtHeader = "X-Flagsmith-Document-Updated-At"

	soakIdentifier   = "soak-user"
	peakWorkers      = 25 // closed loop: each sends its next request when the last one is answered
	soakWorkers      = 32 // open loop: more than peakWorkers, so that 70% of peak leaves slack for latency spikes
	soakFlagsEvery   = 10 // one request in this many is GET /flags/, the rest POST /identities/
	soakKeptFailures = 5  // failures described in the failure message; the rest are only counted

	// goroutineReads is how many times a sample reads the goroutine count:
	// each request being handled adds a goroutine or two to the standing
	// count, so the fewest seen is the number that says whether something
	// leaks.
	goroutineReads = 5
)

// TestSoak holds fledge at a fraction of its measured peak on the P2 profile
// while upstream publishes a new document version every second, and checks
// that no request fails, that every answer comes from one whole document,
// and that memory and goroutines stay flat (the load-and-soak
// criterion).
func TestSoak(t *testing.T) {
	soak, load := *soakDuration, *soakLoad
	if soak <= 0 || load <= 0 {
		t.Fatalf("-soak %v -soak-load %g: both must be positive", soak, load)
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads fledge's RSS from /proc")
	}
	// Not parallel: the measured peak, and with it the load, would depend
	// on whatever else the package runs, and this much load would in turn
	// upset the polling deadlines of other tests.

	v1 := workload.Document(workload.P2, 1)
	table := newVersionTable(t, v1, workload.Document(workload.P2, 2))
	if err := table.add(1, v1); err != nil {
		t.Fatal(err)
	}
	api := fakeapi.New()
	t.Cleanup(api.Close)
	serverKey, clientKey := workload.ServerKey(workload.P2), workload.ClientKey(workload.P2)
	api.SetDocument(serverKey, v1)

	cfg := baseConfig(api, keyPair{Server: serverKey, Client: clientKey})
	cfg["api_poll_frequency_seconds"] = 1 // the minimum
	// The proxy's output is kept in memory: an access log line per request
	// would grow it by megabytes a second.
	cfg.section("logging")["enable_access_log"] = false
	debugAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg.section("server")["debug_address"] = debugAddr
	px := startProxy(t, cfg)

	s := &soaker{
		table:        table,
		identityURL:  px.URL + "/api/v1/identities/",
		flagsURL:     px.URL + "/api/v1/flags/",
		clientKey:    clientKey,
		identityBody: workload.IdentityBody(workload.P2, soakIdentifier),
	}

	// The publisher runs for the whole test, warm-up and peak included. The
	// deferred stop runs before the cleanups, so it ends before the fake API
	// closes, and also when a Fatal below unwinds the test.
	pubCtx, stopPublisher := context.WithCancel(context.Background())
	var publisher sync.WaitGroup
	publisher.Go(func() { publish(t, pubCtx, api, serverKey, table) })
	defer func() {
		stopPublisher()
		publisher.Wait()
	}()

	// Peak: a closed loop over keep-alive connections, after a warm-up that
	// opens them and warms both processes up.
	peakTransport := &http.Transport{MaxIdleConnsPerHost: 2 * peakWorkers, DisableCompression: true}
	peakClient := newSoakClient(peakTransport)
	s.closedLoop(peakClient, peakWorkers, time.Second)
	peakFor := max(3*time.Second, soak/20)
	n, took := s.closedLoop(peakClient, peakWorkers, peakFor)
	// The soak phase opens its own connections; fledge closes these when
	// the client does, so they don't count in the soak's goroutines.
	peakTransport.CloseIdleConnections()
	peak := float64(n) / took.Seconds()
	target := load * peak
	t.Logf("peak: %d requests in %v with %d workers = %.0f requests/s; soak target %.0f requests/s (%.0f%%) for %v",
		n, took.Round(time.Millisecond), peakWorkers, peak, target, 100*load, soak)
	if target*soak.Seconds() < soakWorkers {
		t.Fatalf("peak %.0f requests/s is too low to soak at %.0f requests/s", peak, target)
	}

	// Soak: an open loop at the target rate, sampling fledge as it runs.
	run := s.startOpenLoop(soakWorkers, target, soak)
	defer run.stop() // on Fatal: no worker outlives the test

	debugURL := "http://" + debugAddr + "/debug/vars"
	pid := px.cmd.Process.Pid
	var samples []procSample
	sample := func() {
		t.Helper()
		smp, err := sampleProcess(pid, debugURL)
		if err != nil {
			t.Fatalf("sampling fledge: %v", err)
		}
		smp.at = time.Since(run.start)
		samples = append(samples, smp)
		t.Logf("sample at %6.1fs: RSS %6.1f MiB, %d goroutines", smp.at.Seconds(), mib(smp.rssKiB), smp.goroutines)
	}
	// The first sample waits until every worker has been answered once, so
	// that all the soak's connections (one per worker) are open: from then
	// on the number of connections, and of goroutines serving them, is
	// fixed.
	select {
	case <-run.warm:
	case <-run.ctx.Done():
	}
	sample()
	every := max(2*time.Second, soak/10)
	// The last sample is taken shortly before the end, while the load is
	// still on, so that it compares with the first.
	last := run.start.Add(soak - min(time.Second, soak/10))
	for next := run.start.Add(every); next.Before(last); next = next.Add(every) {
		time.Sleep(time.Until(next))
		sample()
	}
	time.Sleep(time.Until(last))
	sample()
	<-run.ctx.Done() // the soak's deadline: stop would cut it short
	got, elapsed := run.stop()
	stopPublisher()
	publisher.Wait()

	first, end := samples[0], samples[len(samples)-1]
	achieved := float64(got.requests()) / elapsed.Seconds()
	failures, details := s.failures.report()
	versions := slices.Sorted(maps.Keys(got.seen))

	if failures > 0 {
		t.Errorf("%d failed requests (warm-up, peak and soak); the first %d:\n%s",
			failures, len(details), strings.Join(details, "\n"))
	}
	// A version is served for about a second before the next replaces it;
	// half the soak's seconds allows for polls that land late under load.
	if minVersions := math.Ceil(soak.Seconds() / 2); float64(len(versions)) < minVersions {
		t.Errorf("clients saw %d document versions during the %v soak (%v), want at least %.0f: documents were not swapped under load",
			len(versions), soak, versions, minVersions)
	}
	if end.goroutines > first.goroutines+5 {
		t.Errorf("goroutines grew from %d to %d during the soak", first.goroutines, end.goroutines)
	}
	if limit := first.rssKiB*5/4 + 4<<10; end.rssKiB > limit {
		t.Errorf("RSS grew from %.1f MiB to %.1f MiB during the soak (limit %.1f MiB)", mib(first.rssKiB), mib(end.rssKiB), mib(limit))
	}
	// A short run shares the machine with other packages' tests (CI runs
	// them in parallel on two cores), so its rate is only reported.
	if soak >= time.Minute && achieved < 0.8*target {
		t.Errorf("achieved %.0f requests/s, below 80%% of the %.0f requests/s target", achieved, target)
	}
	t.Logf("soak %v: peak %.0f rps, target %.0f rps, achieved %.0f rps; %d requests (%d identities, %d flags), %d failures; %d versions seen (%s); RSS %.1f → %.1f MiB; goroutines %d → %d",
		soak, peak, target, achieved, got.requests(), got.identities, got.flags, failures,
		len(versions), versionRange(versions), mib(first.rssKiB), mib(end.rssKiB), first.goroutines, end.goroutines)
}

// versionTable is what each published document version looks like to a
// client: the X-Flagsmith-Document-Updated-At value it is served with, and
// the values of the features that change from version to version. It is
// filled in before a version is published, so every answer fledge gives can
// be looked up.
type versionTable struct {
	// features are the versioned features a client key sees, by name.
	features []string

	mu       sync.RWMutex
	byHeader map[string]int
	values   map[int]map[string]any // version → feature → value
}

// newVersionTable finds the versioned features by comparing two versions'
// environment defaults: the workload's documents say which they are, so the
// test needs no list of its own.
func newVersionTable(t *testing.T, raw1, raw2 []byte) *versionTable {
	t.Helper()
	d1, err := environment.Parse(raw1)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := environment.Parse(raw2)
	if err != nil {
		t.Fatal(err)
	}
	other := map[string]environment.FeatureState{}
	for _, fs := range d2.FeatureStates {
		other[fs.Feature.Name] = fs
	}
	vt := &versionTable{byHeader: map[string]int{}, values: map[int]map[string]any{}}
	for _, fs := range d1.FeatureStates {
		// Only features answered with their environment default qualify:
		// a client key doesn't see server-key-only features (nor disabled
		// ones when they are hidden), and a multivariate feature answers an
		// identity with a variant picked by its hash.
		if slices.Contains(d1.Project.ServerKeyOnlyFeatureIDs, fs.Feature.ID) ||
			(!fs.Enabled && d1.EffectiveHideDisabledFlags()) ||
			len(fs.MultivariateFeatureStateValues) > 0 {
			continue
		}
		a, err := decodeValue(fs.FeatureStateValue)
		if err != nil {
			t.Fatalf("version 1 feature %s: %v", fs.Feature.Name, err)
		}
		b, err := decodeValue(other[fs.Feature.Name].FeatureStateValue)
		if err != nil {
			t.Fatalf("version 2 feature %s: %v", fs.Feature.Name, err)
		}
		if !reflect.DeepEqual(a, b) {
			vt.features = append(vt.features, fs.Feature.Name)
		}
	}
	if len(vt.features) == 0 {
		t.Fatal("test setup: no feature a client sees differs between P2 versions 1 and 2")
	}
	slices.Sort(vt.features)
	return vt
}

// add records version v, whose document is raw.
func (vt *versionTable) add(v int, raw []byte) error {
	d, err := environment.Parse(raw)
	if err != nil {
		return fmt.Errorf("version %d: %w", v, err)
	}
	header := environment.UpdatedAtHeader(d.UpdatedAtTime())
	if header == "" {
		return fmt.Errorf("version %d: no updated_at", v)
	}
	values := map[string]any{}
	for _, fs := range d.FeatureStates {
		if slices.Contains(vt.features, fs.Feature.Name) {
			if values[fs.Feature.Name], err = decodeValue(fs.FeatureStateValue); err != nil {
				return fmt.Errorf("version %d feature %s: %w", v, fs.Feature.Name, err)
			}
		}
	}
	if len(values) != len(vt.features) {
		return fmt.Errorf("version %d lacks some of the features %v", v, vt.features)
	}
	vt.mu.Lock()
	defer vt.mu.Unlock()
	if old, dup := vt.byHeader[header]; dup {
		return fmt.Errorf("versions %d and %d have the same %s %s", old, v, updatedAtHeader, header)
	}
	vt.byHeader[header] = v
	vt.values[v] = values
	return nil
}

// lookup returns the version served with header and its feature values.
func (vt *versionTable) lookup(header string) (int, map[string]any, bool) {
	vt.mu.RLock()
	defer vt.mu.RUnlock()
	v, ok := vt.byHeader[header]
	return v, vt.values[v], ok
}

// versionsWith lists the versions in which feature has value, to say where a
// wrong value came from.
func (vt *versionTable) versionsWith(feature string, value any) []int {
	vt.mu.RLock()
	defer vt.mu.RUnlock()
	var out []int
	for v, values := range vt.values {
		if reflect.DeepEqual(values[feature], value) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// decodeValue decodes a feature_state_value. Numbers stay json.Number on
// both sides of every comparison, so a literal must match exactly.
func decodeValue(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// publish makes upstream serve version 2, 3, … one a second until ctx ends,
// recording each in the table before anyone can be served it.
func publish(t *testing.T, ctx context.Context, api *fakeapi.Server, serverKey string, table *versionTable) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for v := 2; ; v++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		raw := workload.Document(workload.P2, v)
		if err := table.add(v, raw); err != nil {
			t.Errorf("publishing: %v", err)
			return
		}
		api.SetDocument(serverKey, raw)
	}
}

// soaker sends the test's requests and checks every answer.
type soaker struct {
	table        *versionTable
	identityURL  string
	flagsURL     string
	clientKey    string
	identityBody []byte
	failures     failureLog
}

// soakStats counts one worker's requests, then a phase's.
type soakStats struct {
	identities, flags int
	seen              map[int]bool // versions answered from
}

func (st *soakStats) requests() int { return st.identities + st.flags }

func (st *soakStats) merge(o *soakStats) {
	st.identities += o.identities
	st.flags += o.flags
	if st.seen == nil {
		st.seen = map[int]bool{}
	}
	for v := range o.seen {
		st.seen[v] = true
	}
}

func newSoakClient(tr *http.Transport) *http.Client {
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: 10 * time.Second,
	}
}

// do sends one request, POST /identities/ unless flags, and checks the answer.
func (s *soaker) do(c *http.Client, flags bool, st *soakStats) {
	kind, method, url, body := "identities", http.MethodPost, s.identityURL, s.identityBody
	if flags {
		kind, method, url, body = "flags", http.MethodGet, s.flagsURL, nil
		st.flags++
	} else {
		st.identities++
	}
	// Requests don't take the workers' context: one cut off as a phase ends
	// would look like a failure of fledge's.
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		panic(err) // the URLs are our own
	}
	req.Header.Set("X-Environment-Key", s.clientKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err != nil {
		s.failures.add(func() string { return kind + ": " + err.Error() })
		return
	}
	if v, ok := s.check(kind, resp, body); ok {
		if st.seen == nil {
			st.seen = map[int]bool{}
		}
		st.seen[v] = true
	}
}

// soakFlag is what the check reads of a flag: its name and raw value.
type soakFlag struct {
	Feature struct {
		Name string `json:"name"`
	} `json:"feature"`
	Value json.RawMessage `json:"feature_state_value"`
}

// check verifies that an answer is a 200 whose versioned features all hold
// the values of the version its header names, and returns that version.
func (s *soaker) check(kind string, resp *http.Response, body []byte) (int, bool) {
	header := resp.Header.Get(updatedAtHeader)
	// Failures are described only if they are kept: describe may be slow.
	failWith := func(describe func() string) (int, bool) {
		s.failures.add(func() string {
			return fmt.Sprintf("%s: status %d, %s %q: %s", kind, resp.StatusCode, updatedAtHeader, header, describe())
		})
		return 0, false
	}
	fail := func(format string, args ...any) (int, bool) {
		return failWith(func() string { return fmt.Sprintf(format, args...) })
	}
	if resp.StatusCode != http.StatusOK {
		return fail("body %.200s", body)
	}
	v, want, ok := s.table.lookup(header)
	if !ok {
		return fail("the header names no published version")
	}
	var flags []soakFlag
	if kind == "flags" {
		err := json.Unmarshal(body, &flags)
		if err != nil {
			return fail("body is not a list of flags: %v", err)
		}
	} else {
		var identity struct {
			Flags []soakFlag `json:"flags"`
		}
		if err := json.Unmarshal(body, &identity); err != nil {
			return fail("body is not an identity's flags: %v", err)
		}
		flags = identity.Flags
	}
	got := make(map[string]json.RawMessage, len(flags))
	for _, f := range flags {
		got[f.Feature.Name] = f.Value
	}
	for _, name := range s.table.features {
		raw, ok := got[name]
		if !ok {
			return fail("feature %s is missing (version %d)", name, v)
		}
		value, err := decodeValue(raw)
		if err != nil {
			return fail("feature %s: bad value %s: %v", name, raw, err)
		}
		if !reflect.DeepEqual(value, want[name]) {
			return failWith(func() string {
				wantJSON, _ := json.Marshal(want[name])
				from := "no published version"
				if vs := s.table.versionsWith(name, value); len(vs) > 0 {
					from = fmt.Sprintf("version(s) %v", vs)
				}
				return fmt.Sprintf("feature %s = %s, want version %d's %s; the value is that of %s", name, raw, v, wantJSON, from)
			})
		}
	}
	return v, true
}

// failureLog counts failed requests and keeps the first few descriptions.
type failureLog struct {
	mu      sync.Mutex
	count   int
	details []string
}

// add counts a failure; describe runs only for the ones kept.
func (f *failureLog) add(describe func() string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count++
	if len(f.details) < soakKeptFailures {
		f.details = append(f.details, describe())
	}
}

func (f *failureLog) report() (int, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count, slices.Clone(f.details)
}

// closedLoop sends identity requests from workers goroutines, each as soon
// as its previous one is answered, for d, and returns how many were answered
// and how long that took.
func (s *soaker) closedLoop(c *http.Client, workers int, d time.Duration) (int, time.Duration) {
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	stats := make([]soakStats, workers)
	for w := range workers {
		wg.Go(func() {
			for time.Now().Before(end) {
				s.do(c, false, &stats[w])
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	var total soakStats
	for w := range stats {
		total.merge(&stats[w])
	}
	return total.requests(), took
}

// openLoop is a running soak phase.
type openLoop struct {
	start time.Time
	ctx   context.Context // ends when the soak does (or on stop)
	warm  chan struct{}   // closed once every worker has had an answer

	cancel     context.CancelFunc
	wg         sync.WaitGroup
	stats      []soakStats
	transports []*http.Transport
	once       sync.Once
	total      soakStats
	took       time.Duration
}

// startOpenLoop sends requests at rate per second for d from workers
// goroutines, each on a fixed schedule of one request every workers/rate
// seconds, staggered so that together they are evenly spaced. A worker that
// falls behind sends at once rather than skipping a slot, so a slow fledge
// shows up as a lower achieved rate, not as fewer requests due. Each worker
// has its own connection.
func (s *soaker) startOpenLoop(workers int, rate float64, d time.Duration) *openLoop {
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(d))
	run := &openLoop{
		start:  start,
		ctx:    ctx,
		warm:   make(chan struct{}),
		cancel: cancel,
		stats:  make([]soakStats, workers),
	}
	interval := time.Duration(float64(workers) / rate * float64(time.Second))
	var answered atomic.Int32
	for w := range workers {
		// A transport per worker pins the number of connections to the
		// number of workers; a shared pool would grow whenever a burst of
		// slow answers found every connection busy.
		tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
		run.transports = append(run.transports, tr)
		c := newSoakClient(tr)
		run.wg.Go(func() {
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			next := start.Add(time.Duration(w) * interval / time.Duration(workers))
			for k := 0; ; k++ {
				if wait := time.Until(next); wait > 0 {
					timer.Reset(wait)
					select {
					case <-ctx.Done():
						return
					case <-timer.C:
					}
				} else if ctx.Err() != nil {
					return
				}
				// Slot k*workers+w of the whole schedule: every tenth
				// slot is a flags request.
				s.do(c, (k*workers+w)%soakFlagsEvery == 0, &run.stats[w])
				if k == 0 && int(answered.Add(1)) == workers {
					close(run.warm)
				}
				next = next.Add(interval)
			}
		})
	}
	return run
}

// stop ends the phase if it is still running, waits for its workers and
// returns what they did and how long it took. It may be called again.
func (run *openLoop) stop() (soakStats, time.Duration) {
	run.once.Do(func() {
		run.cancel()
		run.wg.Wait()
		run.took = time.Since(run.start)
		for w := range run.stats {
			run.total.merge(&run.stats[w])
		}
		for _, tr := range run.transports {
			tr.CloseIdleConnections()
		}
	})
	return run.total, run.took
}

// procSample is one look at the fledge process.
type procSample struct {
	at         time.Duration // since the soak started
	rssKiB     int64
	goroutines int
}

// sampleProcess reads the process's resident set from /proc and its
// goroutine count (the least of a few reads) from the diagnostics listener.
func sampleProcess(pid int, debugURL string) (procSample, error) {
	var smp procSample
	var err error
	if smp.rssKiB, err = readRSS(pid); err != nil {
		return smp, err
	}
	for i := range goroutineReads {
		if i > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		n, err := readGoroutines(debugURL)
		if err != nil {
			return smp, err
		}
		if i == 0 || n < smp.goroutines {
			smp.goroutines = n
		}
	}
	return smp, nil
}

// readRSS returns VmRSS from /proc/PID/status, in KiB.
func readRSS(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// VmRSS:	   12345 kB
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) != 2 || fields[1] != "kB" {
				return 0, fmt.Errorf("unexpected VmRSS line %q", sc.Text())
			}
			return strconv.ParseInt(fields[0], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}

// readGoroutines returns the goroutines field of /debug/vars.
func readGoroutines(debugURL string) (int, error) {
	resp, err := client.Get(debugURL)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: status %d: %.200s", debugURL, resp.StatusCode, body)
	}
	var vars struct {
		Goroutines *int `json:"goroutines"`
	}
	if err := json.Unmarshal(body, &vars); err != nil || vars.Goroutines == nil {
		return 0, fmt.Errorf("%s: no goroutine count in %.200s", debugURL, body)
	}
	return *vars.Goroutines, nil
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// versionRange summarises a sorted list of versions.
func versionRange(vs []int) string {
	if len(vs) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d…%d", vs[0], vs[len(vs)-1])
}
