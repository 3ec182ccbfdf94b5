package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/fledge-flags/fledge/internal/dynalite"
)

// The api role on the dynamodb store: two dynalite processes stand in for
// two regions' DynamoDB. Both get the same tables (with global tables the
// data would replicate between them; here it does not, so what is written
// during a failover stays in the second region).

// awsEnv is what the AWS SDK needs to talk to dynalite: any static
// credentials, and no instance-metadata lookups.
var awsEnv = []string{"AWS_ACCESS_KEY_ID=fledge", "AWS_SECRET_ACCESS_KEY=fledge", "AWS_EC2_METADATA_DISABLED=true"}

const (
	firstRegion  = "eu-west-2"
	secondRegion = "us-east-1"
)

func dynamoConfig(t *testing.T, budget, timeout float64, endpoints ...string) config {
	cfg := apiConfig(t, t.TempDir(), "")
	names := []string{firstRegion, secondRegion}
	var regions []map[string]any
	for i, ep := range endpoints {
		regions = append(regions, map[string]any{"region": names[i], "endpoint": ep})
	}
	cfg["store"] = map[string]any{
		"type": "dynamodb",
		"dynamodb": map[string]any{
			"regions":                       regions,
			"request_timeout_seconds":       timeout,
			"failover_budget_seconds":       budget,
			"health_check_interval_seconds": 0.2,
		},
	}
	return cfg
}

// createTables runs fledge api --create-tables and checks that every
// region then has Flagsmith's four tables.
func createTables(t *testing.T, cfg config, servers ...*dynalite.Server) {
	t.Helper()
	path := cfg.write(t)
	for range 2 { // idempotent: the second run finds them all
		code, stdout, stderr := runFledge(t, 60*time.Second, awsEnv, "api", "--config", path, "--create-tables")
		if code != 0 || stdout != "" {
			t.Fatalf("--create-tables: exit %d, stdout %q\n%s", code, stdout, stderr)
		}
	}
	for i, s := range servers {
		out, err := s.Client().ListTables(context.Background(), &dynamodb.ListTablesInput{})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"flagsmith_environment_api_key", "flagsmith_environments", "flagsmith_environments_v2", "flagsmith_identities"}
		if got := slices.Sorted(slices.Values(out.TableNames)); !slices.Equal(got, want) {
			t.Fatalf("region %d tables %v; want %v", i, got, want)
		}
	}
}

// storeRegion reads the region in use from readiness.
func storeRegion(p *proxy) (string, error) {
	resp, err := client.Get(p.URL + readinessPath)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Store  struct {
			Type   string `json:"type"`
			Region string `json:"region"`
		} `json:"store"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	if resp.StatusCode != 200 || body.Status != "ok" || body.Store.Type != "dynamodb" {
		return "", fmt.Errorf("readiness %d %+v", resp.StatusCode, body)
	}
	return body.Store.Region, nil
}

// sdkCall is one SDK request of the stream and its outcome.
type sdkCall struct {
	start, end time.Time
	status     int
	err        error
	// marker: a GET of the identity stored before the outage; traits is
	// what it answered ("plan=beta" from the first region, "" from the
	// second, which never saw it).
	marker bool
	traits string
}

func sdkRequest(ctx context.Context, url, method, body string) (int, []byte, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Environment-Key", exampleClientKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestAPIDynamoDBFailover streams SDK requests at fledge api on two
// regions, kills the first region's DynamoDB in the middle and starts it
// again, then freezes it and lets it run again: no request fails, the
// node serves from the second region within the failover budget and
// returns to the first (readiness shows the region in use), whose data is
// still there. Then both regions go down: requests answer 503 JSON within
// the request timeout.
func TestAPIDynamoDBFailover(t *testing.T) {
	first := dynalite.StartServer(t, dynalite.Options{Persist: true})
	second := dynalite.StartServer(t, dynalite.Options{})
	const budget, timeout = 0.5, 3.0
	cfg := dynamoConfig(t, budget, timeout, first.Endpoint, second.Endpoint)
	createTables(t, cfg, first, second)
	p := startRoleEnv(t, "api", cfg, readinessPath, awsEnv...)
	if r, err := storeRegion(p); err != nil || r != firstRegion {
		t.Fatalf("region in use at start: %q %v", r, err)
	}
	if got := identify(t, p, exampleClientKey, `{"identifier":"marker","traits":[{"trait_key":"plan","trait_value":"beta"}]}`).traits(); got != `plan="beta"` {
		t.Fatalf("marker traits %s", got)
	}

	// The stream: workers alternate a GET of the marker with a POST that
	// stores a trait on an identity of their own.
	ctx, stop := context.WithCancel(context.Background())
	var (
		mu    sync.Mutex
		calls []sdkCall
		wg    sync.WaitGroup
		seq   atomic.Int64
	)
	const workers = 4
	for w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := seq.Add(1)
				c := sdkCall{start: time.Now(), marker: n%2 == 0}
				var body []byte
				if c.marker {
					c.status, body, c.err = sdkRequest(context.Background(), p.URL+"/api/v1/identities/?identifier=marker", http.MethodGet, "")
				} else {
					c.status, body, c.err = sdkRequest(context.Background(), p.URL+"/api/v1/identities/", http.MethodPost,
						fmt.Sprintf(`{"identifier":"w%d","traits":[{"trait_key":"n","trait_value":%d}]}`, w, n))
				}
				c.end = time.Now()
				if c.err == nil && c.status == 200 {
					var a identityAnswer
					if err := json.Unmarshal(body, &a); err != nil {
						c.err = err
					} else if c.marker {
						c.traits = a.traits()
					} else if got, want := a.traits(), fmt.Sprintf("n=%d", n); got != want {
						c.err = fmt.Errorf("POST answered traits %s; want %s", got, want)
					}
				} else if c.err == nil {
					c.err = fmt.Errorf("status %d: %s", c.status, bytes.TrimSpace(body))
				}
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
			}
		})
	}
	// Two outages of the first region: its DynamoDB killed (connections
	// refused: the node fails over at once), then frozen (requests time
	// out: the node fails over once the region has failed for the
	// budget). Each lasts two seconds.
	type outage struct {
		name           string
		down, up       func()
		downAt, upAt   time.Time
		failover, back time.Duration
	}
	outages := []*outage{
		{name: "killed", down: first.Stop, up: first.Restart},
		{name: "frozen", down: first.Pause, up: first.Resume},
	}
	waitRegion := func(want string) time.Duration {
		return eventually(t, 10*time.Second, func() string {
			if r, err := storeRegion(p); err != nil || r != want {
				return fmt.Sprintf("region in use %q (%v); want %s", r, err, want)
			}
			return ""
		})
	}
	for _, o := range outages {
		time.Sleep(time.Second)
		o.downAt = time.Now()
		o.down()
		waitRegion(secondRegion)
		time.Sleep(2 * time.Second)
		o.upAt = time.Now()
		o.up()
		o.back = waitRegion(firstRegion)
	}
	time.Sleep(time.Second)
	stop()
	wg.Wait()

	// Every request answered 200, none slower than the budget allows.
	var failed []string
	var slowest time.Duration
	for _, c := range calls {
		if c.err != nil {
			failed = append(failed, fmt.Sprintf("at %s: %v", c.start.Format("15:04:05.000"), c.err))
			continue
		}
		slowest = max(slowest, c.end.Sub(c.start))
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d SDK requests failed:\n%s", len(failed), len(calls), strings.Join(failed, "\n"))
	}
	limit := time.Duration((budget + 1) * float64(time.Second))
	if slowest > limit {
		t.Errorf("slowest SDK request took %v; want at most the failover budget (%vs) and a second", slowest, budget)
	}
	// Failover time: from the outage (the first call to fail) to the first
	// answer from the second region.
	for _, o := range outages {
		var fromSecond, fromFirst time.Time
		for _, c := range calls {
			if !c.marker || c.err != nil {
				continue
			}
			if c.traits == "" && c.start.After(o.downAt) && c.end.Before(o.upAt) && (fromSecond.IsZero() || c.end.Before(fromSecond)) {
				fromSecond = c.end
			}
			if c.traits == `plan="beta"` && c.start.After(o.upAt) && (fromFirst.IsZero() || c.end.Before(fromFirst)) {
				fromFirst = c.end
			}
		}
		if fromSecond.IsZero() || fromFirst.IsZero() {
			t.Errorf("%s: no answer from the second region during the outage, or from the first after it", o.name)
			continue
		}
		o.failover = fromSecond.Sub(o.downAt)
		t.Logf("FIGURES %s: failover %v (outage → first answer from %s; budget %vs); back in %s %v after it returned (readiness), first answer of its data after %v",
			o.name, o.failover.Round(time.Millisecond), secondRegion, budget, firstRegion, o.back.Round(time.Millisecond), fromFirst.Sub(o.upAt).Round(time.Millisecond))
		if o.failover > limit {
			t.Errorf("%s: failover took %v; budget %vs", o.name, o.failover, budget)
		}
	}
	t.Logf("FIGURES %d SDK requests, %d failed, slowest %v", len(calls), len(failed), slowest.Round(time.Millisecond))

	// Both regions down: 503 JSON within the request timeout, never 500.
	first.Stop()
	second.Stop()
	for _, req := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/identities/?identifier=marker", ""},
		{http.MethodPost, "/api/v1/identities/", `{"identifier":"x","traits":[{"trait_key":"a","trait_value":1}]}`},
	} {
		start := time.Now()
		status, body, err := sdkRequest(context.Background(), p.URL+req.path, req.method, req.body)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Status string `json:"status"`
		}
		if status != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil || e.Status != "service_unavailable" {
			t.Errorf("%s with every region down: %d %s", req.method, status, body)
		}
		if took > time.Duration((timeout+0.5)*float64(time.Second)) {
			t.Errorf("%s with every region down took %v; request timeout %vs", req.method, took, timeout)
		}
	}
}
