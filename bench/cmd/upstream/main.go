// Command upstream is the stand-in Flagsmith API of bench/run. It serves
// GET /api/v1/environment-document/ for the benchmark's two server keys
// (workload.ServerKey(P1) and workload.ServerKey(P2)) from generated files.
//
//	upstream -addr 127.0.0.1:18001 -p1 P1.json -p2 P2.json
//	upstream ... -p2-alt P2v2.json -swap-every 1s   # alternate the P2 document
//	upstream -addr 127.0.0.1:18001 -fail            # answer 500 to everything
//	upstream -print-keys                            # the benchmark's key pairs
//
// With -swap-every the P2 document alternates between -p2 and -p2-alt, so a
// proxy polling every second builds a new snapshot on (almost) every poll.
// If-Modified-Since is ignored: every fetch gets a 200 and the whole document.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fledge-flags/fledge/bench/workload"
)

type upstream struct {
	p1      []byte
	p2      [2][]byte
	current atomic.Int32 // index into p2
	fetches atomic.Int64
	fail    bool
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18001", "listen address (loopback)")
	p1 := flag.String("p1", "", "P1 environment document file")
	p2 := flag.String("p2", "", "P2 environment document file")
	p2alt := flag.String("p2-alt", "", "second P2 document, alternated with -p2 by -swap-every")
	swapEvery := flag.Duration("swap-every", 0, "alternate the P2 document this often (needs -p2-alt)")
	fail := flag.Bool("fail", false, "answer every request with 500")
	printKeys := flag.Bool("print-keys", false, "print 'PROFILE CLIENT_KEY SERVER_KEY' for P1 and P2 and exit")
	flag.Parse()
	if *printKeys {
		for _, p := range workload.Profiles() {
			fmt.Println(p.Name, workload.ClientKey(p), workload.ServerKey(p))
		}
		return
	}
	u, err := load(*p1, *p2, *p2alt, *fail)
	if err == nil && *swapEvery > 0 && *p2alt == "" {
		err = errors.New("-swap-every needs -p2-alt")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(2)
	}
	if err := serve(*addr, u, *swapEvery); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}

func load(p1, p2, p2alt string, fail bool) (*upstream, error) {
	u := &upstream{fail: fail}
	if fail {
		return u, nil
	}
	if p1 == "" || p2 == "" {
		return nil, errors.New("-p1 and -p2 are required (or -fail)")
	}
	var err error
	if u.p1, err = os.ReadFile(p1); err != nil {
		return nil, err
	}
	if u.p2[0], err = os.ReadFile(p2); err != nil {
		return nil, err
	}
	u.p2[1] = u.p2[0]
	if p2alt != "" {
		if u.p2[1], err = os.ReadFile(p2alt); err != nil {
			return nil, err
		}
	}
	return u, nil
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.fetches.Add(1)
	if u.fail {
		http.Error(w, `{"detail":"stand-in upstream told to fail"}`, http.StatusInternalServerError)
		return
	}
	if strings.TrimSuffix(r.URL.Path, "/") != "/api/v1/environment-document" {
		http.Error(w, `{"detail":"Not found."}`, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, `{"detail":"Method not allowed."}`, http.StatusMethodNotAllowed)
		return
	}
	var doc []byte
	switch r.Header.Get("X-Environment-Key") {
	case workload.ServerKey(workload.P1):
		doc = u.p1
	case workload.ServerKey(workload.P2):
		doc = u.p2[u.current.Load()]
	default:
		http.Error(w, `{"detail":"Invalid or missing X-Environment-Key."}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
	_, _ = w.Write(doc)
}

func serve(addr string, u *upstream, swapEvery time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	if swapEvery > 0 {
		go func() {
			t := time.NewTicker(swapEvery)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					u.current.Store(1 - u.current.Load())
				}
			}
		}()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; close(done); _ = srv.Close() }()
	fmt.Fprintf(os.Stderr, "upstream: listening on %s (fail=%v, swap-every=%s)\n", ln.Addr(), u.fail, swapEvery)
	err = srv.Serve(ln)
	fmt.Fprintf(os.Stderr, "upstream: %d fetches served\n", u.fetches.Load())
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
