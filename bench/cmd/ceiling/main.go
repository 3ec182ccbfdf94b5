// Command ceiling is the reference server of bench/run: a minimal net/http
// server that answers every request with the same fixed body of -size bytes
// (the size of Fledge's response for the endpoint being measured), after
// reading the request body. Its throughput on one core is the ceiling that
// Fledge, doing real work behind the same net/http stack, is compared with.
//
//	ceiling -addr 127.0.0.1:18002 -size 18911 [-encoding gzip]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18002", "listen address (loopback)")
	size := flag.Int("size", 1000, "response body size in bytes")
	encoding := flag.String("encoding", "", "Content-Encoding header to send (the body stays filler bytes)")
	flag.Parse()
	if *size < 0 || *size > 64<<20 {
		fmt.Fprintln(os.Stderr, "ceiling: -size must be between 0 and 64 MiB")
		os.Exit(2)
	}
	if err := serve(*addr, *size, *encoding); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
}

func handler(size int, encoding string) http.Handler {
	body := bytes.Repeat([]byte("x"), size)
	if size >= 2 {
		body[0], body[size-1] = '"', '"' // a JSON string, for what it's worth
	}
	contentType := []string{"application/json"}
	contentLength := []string{strconv.Itoa(size)}
	var contentEncoding []string
	if encoding != "" {
		contentEncoding = []string{encoding}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h["Content-Type"] = contentType
		h["Content-Length"] = contentLength
		if contentEncoding != nil {
			h["Content-Encoding"] = contentEncoding
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}

func serve(addr string, size int, encoding string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler(size, encoding)}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; _ = srv.Close() }()
	fmt.Fprintf(os.Stderr, "ceiling: listening on %s, %d-byte responses\n", ln.Addr(), size)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
