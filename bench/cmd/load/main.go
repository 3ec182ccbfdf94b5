// Command load is the HTTP load generator of bench/run: N concurrent
// keep-alive HTTP/1.1 connections, each sending the same pre-built request
// as soon as the previous response has been read (closed loop, no
// pipelining), for a warm-up and then a measured duration. It prints one JSON
// line per target: requests/s, latency percentiles and error counts.
//
//	load -url http://127.0.0.1:8000/api/v1/flags/ -H 'X-Environment-Key: KEY' -c 25 -warmup 3s -d 10s
//	load -url URL -method POST -body FILE -H 'Content-Type: application/json' ...
//	load -url A -pid PA -url B -pid PB -rounds 5 ...  # A and B interleaved (ABBA…), -d each
//	load -groups 2 -url A1 -url B1 -url A2 -url B2 ... # two processes of each server, one line per server
//	load -once -wait 10s -url URL ...   # one request (retried until 200 or -wait): status and body size
//	load -once -expect 0 -wait 5s ...   # the same, any status: waits for a server to listen
//	load -template -url 'URL?identifier=user-{{rand}}' -rand-max 1000000 ...  # a random identity per request
//	load -template -method POST -body FILE ...  # FILE holds {{seq}} and {{conn}}: every request differs
//	load -free-ports 3                  # print 3 free loopback TCP ports
//
// With several -url, the measured duration of each target is split into
// -rounds slices run in turns (A B B A A …), each after a short re-warm-up on
// fresh connections, so that a change in the machine's background load
// affects every target alike. With -pid, the server process's CPU time
// during the measured slices is reported too (Linux /proc), which shows
// whether it had its core to itself.
//
// With -groups G, target i belongs to group i mod G, and each group's
// measurements are merged into one line (latencies from the merged
// histogram, CPU times summed). Identical server processes differ in
// throughput by ±10% or more at large response sizes (each process's memory
// lands differently), so comparing one process with another is a coin toss
// there; several processes of each, measured in turns, average that out.
//
// With -template, {{seq}} (a counter shared by the whole run), {{rand}}
// (uniform in [0, -rand-max)) and {{conn}} (the connection's number) are
// replaced in the URL's query and in the body. Each connection builds its
// request once; the numbers have a fixed width, so a request only
// overwrites their digits in place. The output's "sequence" is how many
// {{seq}} values were sent.
//
// It speaks HTTP/1.1 directly over net.Conn instead of using net/http's
// client, so one core of load generation costs a few microseconds per
// request and can saturate a server on the other core. Responses are framed
// by Content-Length or chunked encoding; "Connection: close" reconnects.
// Only loopback targets are accepted, and counts and durations are bounded.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

const (
	maxConcurrency = 1024
	maxDuration    = 10 * time.Minute
	maxTargets     = 8
	maxRounds      = 100
)

type stringList []string

func (h *stringList) String() string     { return strings.Join(*h, ", ") }
func (h *stringList) Set(v string) error { *h = append(*h, v); return nil }

type options struct {
	urls        stringList
	pids        stringList
	method      string
	headers     stringList
	bodyFile    string
	concurrency int
	warmup      time.Duration
	rewarmup    time.Duration
	duration    time.Duration
	rounds      int
	groups      int
	timeout     time.Duration
	maxRequests int64
	label       string
	once        bool
	wait        time.Duration
	expect      int
	freePorts   int
	template    bool
	randMax     uint64
	retryEvery  time.Duration
}

func main() {
	var o options
	flag.Var(&o.urls, "url", "target URL (http://, loopback host only); repeat to interleave targets")
	flag.Var(&o.pids, "pid", "PID of the server behind the -url at the same position (0: none), for its CPU time")
	flag.StringVar(&o.method, "method", "GET", "request method")
	flag.Var(&o.headers, "H", "request header 'Name: value' (repeatable)")
	flag.StringVar(&o.bodyFile, "body", "", "file holding the request body")
	flag.IntVar(&o.concurrency, "c", 25, "concurrent connections")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "warm-up before a target's first measured slice (not counted)")
	flag.DurationVar(&o.rewarmup, "rewarmup", time.Second, "warm-up before each later slice (not counted)")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "measured duration per target")
	flag.IntVar(&o.rounds, "rounds", 1, "slices the measured duration of each target is split into")
	flag.IntVar(&o.groups, "groups", 0, "merge target i into group i mod this, one result per group (0: one per target)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "per-request timeout")
	flag.Int64Var(&o.maxRequests, "max-requests", 100_000_000, "stop after this many requests in total (warm-ups included)")
	flag.StringVar(&o.label, "label", "", "label copied into the JSON output")
	flag.BoolVar(&o.once, "once", false, "send one request and print its status and body size")
	flag.DurationVar(&o.wait, "wait", 0, "with -once: retry until the -expect status or this much time has passed")
	flag.IntVar(&o.expect, "expect", 200, "with -once: the status to wait for; 0 accepts any answer")
	flag.IntVar(&o.freePorts, "free-ports", 0, "print this many free loopback TCP ports and exit")
	flag.BoolVar(&o.template, "template", false, "replace {{seq}}, {{rand}} and {{conn}} in the URL's query and the body, per request")
	flag.Uint64Var(&o.randMax, "rand-max", 0, "with -template: {{rand}} is uniform in [0, this)")
	flag.DurationVar(&o.retryEvery, "retry-every", 100*time.Millisecond, "with -once -wait: the pause between attempts")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(o options, out io.Writer) error {
	if o.freePorts > 0 {
		return freePorts(o.freePorts, out)
	}
	if len(o.urls) == 0 || len(o.urls) > maxTargets {
		return fmt.Errorf("give between 1 and %d -url", maxTargets)
	}
	if len(o.pids) > len(o.urls) {
		return errors.New("more -pid than -url")
	}
	if o.retryEvery <= 0 {
		return errors.New("-retry-every must be positive")
	}
	var targets []*target
	var seq atomic.Uint64 // {{seq}}, shared by every target
	for i, u := range o.urls {
		t, err := newTarget(u, o, &seq)
		if err != nil {
			return err
		}
		if i < len(o.pids) {
			if t.pid, err = strconv.Atoi(o.pids[i]); err != nil || t.pid < 0 {
				return fmt.Errorf("-pid %q: want a process ID", o.pids[i])
			}
		}
		targets = append(targets, t)
	}
	if o.once {
		if len(targets) != 1 {
			return errors.New("-once takes one -url")
		}
		return once(targets[0], o, out)
	}
	total := time.Duration(len(targets)) * (o.warmup + time.Duration(o.rounds-1)*o.rewarmup + o.duration)
	switch {
	case o.concurrency < 1 || o.concurrency > maxConcurrency:
		return fmt.Errorf("-c must be between 1 and %d", maxConcurrency)
	case o.rounds < 1 || o.rounds > maxRounds:
		return fmt.Errorf("-rounds must be between 1 and %d", maxRounds)
	case o.duration <= 0 || o.warmup < 0 || o.rewarmup < 0 || total > maxDuration:
		return fmt.Errorf("-d must be positive and the whole run (%s) at most %s", total, maxDuration)
	case o.maxRequests <= 0:
		return errors.New("-max-requests must be positive")
	case o.groups < 0 || o.groups > 0 && len(targets)%o.groups != 0:
		return fmt.Errorf("-groups %d: the %d targets must split evenly into the groups", o.groups, len(targets))
	}
	for _, res := range loadTest(targets, o) {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(out, "%s\n", b); err != nil {
			return err
		}
	}
	return nil
}
