// Command dynamobench measures fledge api on the dynamodb store against
// the DynamoDB calls underneath it, on the same DynamoDB (dynalite in
// bench/dynamo), in one run: for each of GET and POST /api/v1/identities/
// it alternates slices of requests through Fledge with slices of a bare
// aws-sdk-go-v2 loop making the calls Fledge must make for that request,
// and reports each side's rate and Fledge's as a fraction of the bare
// loop's.
//
//	dynamobench -fledge http://127.0.0.1:8000 -endpoint http://127.0.0.1:4567 -key CLIENTKEY
//
// The calls, per request, with -c workers each on an identity of its own
// (bench-0, bench-1, …, created first) in closed loops:
//
//	get  Fledge: GET /api/v1/identities/?identifier=bench-N
//	     bare:   GetItem (consistent) of the identity
//	post Fledge: POST /api/v1/identities/ setting trait n to a new value
//	     bare:   GetItem (consistent) + UpdateItem SET identity_traits
//
// The HTTP side uses net/http keep-alive connections, not bench/cmd/load:
// load sends one pre-built body, and a POST repeating the stored traits
// writes nothing, so every POST here carries a new value.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/identity/dynamo"
)

type options struct {
	fledge, endpoint, key, table string
	pids, kinds                  string
	concurrency, rounds          int
	duration, warmup             time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.fledge, "fledge", "", "fledge api base URL (loopback)")
	flag.StringVar(&o.endpoint, "endpoint", "", "DynamoDB endpoint fledge uses")
	flag.StringVar(&o.key, "key", "", "client-side environment key fledge serves")
	flag.StringVar(&o.table, "table", "flagsmith_identities", "identities table")
	flag.StringVar(&o.pids, "pids", "", "NAME=PID,… of processes whose CPU time per request to report (Linux /proc); this one is \"bench\"")
	flag.IntVar(&o.concurrency, "c", 16, "concurrent workers")
	flag.IntVar(&o.rounds, "rounds", 4, "slices per side and kind, run in turns")
	flag.DurationVar(&o.duration, "d", 8*time.Second, "measured time per side and kind")
	flag.StringVar(&o.kinds, "kinds", "get,post", "kinds of request to measure, comma-separated")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up before each kind (not counted)")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "dynamobench:", err)
		os.Exit(1)
	}
}

// result is one side's measurement of one kind.
type result struct {
	Kind     string    `json:"kind"`
	Side     string    `json:"side"`
	Requests int64     `json:"requests"`
	Errors   int64     `json:"errors"`
	Seconds  float64   `json:"seconds"`
	RPS      float64   `json:"rps"`
	Slices   []float64 `json:"slice_rps"`
	// CPU is each watched process's CPU time per request, in microseconds.
	CPU map[string]float64 `json:"cpu_us_per_request,omitempty"`
}

type bench struct {
	o    options
	http *http.Client
	db   *dynamodb.Client
	seq  atomic.Int64
}

func run(ctx context.Context, o options) error {
	if o.fledge == "" || o.endpoint == "" || o.key == "" || o.concurrency < 1 || o.rounds < 1 {
		return errors.New("need -fledge, -endpoint, -key, -c ≥ 1 and -rounds ≥ 1")
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = o.concurrency
	b := &bench{
		o:    o,
		http: &http.Client{Transport: t, Timeout: 10 * time.Second},
		db: dynamodb.New(dynamodb.Options{
			Region:       "us-east-1",
			BaseEndpoint: aws.String(o.endpoint),
			Credentials:  credentials.NewStaticCredentialsProvider("fledge", "fledge", ""),
			HTTPClient:   dynamo.NewHTTPClient(), // as fledge's
		}),
	}
	for w := range o.concurrency { // create the identities through Fledge
		if err := b.fledgePost(ctx, w); err != nil {
			return fmt.Errorf("creating bench-%d: %w", w, err)
		}
	}
	kinds := []struct {
		name        string
		fledge, raw func(ctx context.Context, w int) error
	}{
		{"get", b.fledgeGet, b.bareGet},
		{"post", b.fledgePost, b.barePost},
	}
	enc := json.NewEncoder(os.Stdout)
	var failed int64
	for _, k := range kinds {
		if !slices.Contains(strings.Split(o.kinds, ","), k.name) {
			continue
		}
		sides := []struct {
			name string
			fn   func(ctx context.Context, w int) error
		}{{"fledge", k.fledge}, {"bare", k.raw}}
		for _, s := range sides {
			b.loop(ctx, s.fn, o.warmup)
		}
		res := make([]result, len(sides))
		cpu := make([]map[string]time.Duration, len(sides))
		for i, s := range sides {
			res[i] = result{Kind: k.name, Side: s.name}
			cpu[i] = map[string]time.Duration{}
		}
		slice := o.duration / time.Duration(o.rounds)
		for r := range o.rounds {
			for j := range sides {
				i := j
				if r%2 == 1 { // ABBA: neither side always goes first
					i = len(sides) - 1 - j
				}
				before := b.cpuTimes()
				n, errs := b.loop(ctx, sides[i].fn, slice)
				for name, t := range b.cpuTimes() {
					cpu[i][name] += t - before[name]
				}
				res[i].Requests += n
				res[i].Errors += errs
				res[i].Seconds += slice.Seconds()
				res[i].Slices = append(res[i].Slices, float64(n)/slice.Seconds())
			}
		}
		var ratios []float64
		for r := range o.rounds {
			ratios = append(ratios, res[0].Slices[r]/res[1].Slices[r])
		}
		slices.Sort(ratios)
		for i := range res {
			res[i].RPS = float64(res[i].Requests) / res[i].Seconds
			if len(cpu[i]) > 0 && res[i].Requests > 0 {
				res[i].CPU = map[string]float64{}
				for name, t := range cpu[i] {
					res[i].CPU[name] = math.Round(float64(t.Microseconds())/float64(res[i].Requests)*10) / 10
				}
			}
			if err := enc.Encode(res[i]); err != nil {
				return err
			}
		}
		// The rate each would reach on a core of its own: the bare loop's
		// CPU per request (the SDK calls) over fledge's (the same calls
		// plus serving HTTP), without the benchmark's HTTP client.
		capacity := math.NaN()
		if f := res[0].CPU["fledge"]; f > 0 {
			capacity = res[1].CPU["bench"] / f
		}
		fmt.Fprintf(os.Stderr, "%s: fledge %.0f/s, bare %.0f/s, ratio of totals %.2f, median paired ratio %.2f (range %.2f–%.2f), errors %d/%d; CPU µs/request fledge side %v, bare side %v; capacity ratio (bare's CPU per request ÷ fledge's) %.2f\n",
			k.name, res[0].RPS, res[1].RPS, res[0].RPS/res[1].RPS, median(ratios), ratios[0], ratios[len(ratios)-1], res[0].Errors, res[1].Errors, res[0].CPU, res[1].CPU, capacity)
		failed += res[0].Errors + res[1].Errors
	}
	if failed > 0 {
		return fmt.Errorf("%d requests failed: the rates above count failures and mean nothing", failed)
	}
	return nil
}

func median(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// loop runs fn in the workers for d and counts the calls and failures.
func (b *bench) loop(ctx context.Context, fn func(ctx context.Context, w int) error, d time.Duration) (n, errs int64) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	var count, failed atomic.Int64
	var first sync.Once
	for w := range b.o.concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				err := fn(ctx, w)
				if ctx.Err() != nil {
					return // cut off at the end of the slice: not counted
				}
				count.Add(1)
				if err != nil {
					failed.Add(1)
					first.Do(func() { fmt.Fprintf(os.Stderr, "dynamobench: first failure of this slice: %v\n", err) })
				}
			}
		})
	}
	wg.Wait()
	return count.Load(), failed.Load()
}

func identifier(w int) string { return "bench-" + strconv.Itoa(w) }

func (b *bench) fledgeGet(ctx context.Context, w int) error {
	return b.do(ctx, http.MethodGet, "/api/v1/identities/?identifier="+identifier(w), nil)
}

func (b *bench) fledgePost(ctx context.Context, w int) error {
	body := fmt.Sprintf(`{"identifier":%q,"traits":[{"trait_key":"n","trait_value":%d},{"trait_key":"plan","trait_value":"beta"}]}`,
		identifier(w), b.seq.Add(1))
	return b.do(ctx, http.MethodPost, "/api/v1/identities/", []byte(body))
}

func (b *bench) do(ctx context.Context, method, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, b.o.fledge+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Environment-Key", b.o.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return nil
}

func (b *bench) key(w int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"composite_key": &types.AttributeValueMemberS{Value: b.o.key + "_" + identifier(w)}}
}

func (b *bench) bareGet(ctx context.Context, w int) error {
	out, err := b.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &b.o.table, Key: b.key(w), ConsistentRead: aws.Bool(true)})
	if err == nil && out.Item == nil {
		err = errors.New("no item")
	}
	return err
}

func (b *bench) barePost(ctx context.Context, w int) error {
	if err := b.bareGet(ctx, w); err != nil {
		return err
	}
	traits := &types.AttributeValueMemberL{Value: []types.AttributeValue{
		&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"trait_key":   &types.AttributeValueMemberS{Value: "n"},
			"trait_value": &types.AttributeValueMemberN{Value: strconv.FormatInt(b.seq.Add(1), 10)},
		}},
		&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"trait_key":   &types.AttributeValueMemberS{Value: "plan"},
			"trait_value": &types.AttributeValueMemberS{Value: "beta"},
		}},
	}}
	_, err := b.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &b.o.table,
		Key:                       b.key(w),
		UpdateExpression:          aws.String("SET identity_traits = :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": traits},
	})
	return err
}

// cpuTimes reads the CPU time (user + system) of the -pids processes and
// of this one, from /proc; it is empty when -pids is not given.
func (b *bench) cpuTimes() map[string]time.Duration {
	out := map[string]time.Duration{}
	if b.o.pids == "" {
		return out
	}
	read := func(name, pid string) {
		data, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return
		}
		// Fields after the command name, which is in parentheses.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			return
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) < 13 {
			return
		}
		utime, err1 := strconv.ParseInt(f[11], 10, 64)
		stime, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 == nil && err2 == nil {
			out[name] = time.Duration(utime+stime) * time.Second / 100 // USER_HZ
		}
	}
	read("bench", "self")
	for kv := range strings.SplitSeq(b.o.pids, ",") {
		if name, pid, ok := strings.Cut(kv, "="); ok {
			read(name, pid)
		}
	}
	return out
}
