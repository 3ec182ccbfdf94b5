//go:build fledgepprof

// This file is not part of Fledge. bench/run, with PROFILE=DIR, compiles it
// into a copy of the fledge binary through a build overlay, without touching
// cmd/fledge:
//
//	go build -tags fledgepprof -overlay OVERLAY.json -o FLEDGE ./cmd/fledge
//
// where OVERLAY.json maps cmd/fledge/zz_bench_pprof.go to this file. With
// FLEDGE_PPROF_ADDR set (a loopback address), that binary serves
// net/http/pprof there, so the harness can take a CPU profile of each
// measured run:
//
//	go tool pprof -proto -output X.pb.gz 'http://ADDR/debug/pprof/profile?seconds=10'
package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("FLEDGE_PPROF_ADDR")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(os.Stderr, "FLEDGE_PPROF_ADDR=%q: want a loopback host:port\n", addr)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FLEDGE_PPROF_ADDR: %v\n", err)
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	go func() { _ = http.Serve(ln, mux) }()
}
