package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

const healthUsage = `Usage:
  fledge health [--url URL] [--timeout DURATION] [--insecure]

Probes a running instance's readiness endpoint and exits 0 when it answers
200, 1 otherwise. Meant for container health checks in images without curl.
`

func runHealth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	url := fs.String("url", "http://127.0.0.1:8000/proxy/health/readiness", "endpoint to probe")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for an answer")
	insecure := fs.Bool("insecure", false, "accept any TLS certificate (self-signed deployments)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, healthUsage)
			return 0
		}
		fmt.Fprintf(stderr, "fledge health: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "fledge health: --url: %v\n", err)
		return 2
	}
	client := &http.Client{}
	if *insecure {
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // opt-in for self-signed certificates
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "fledge health: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Fprintf(stdout, "%d %s\n", resp.StatusCode, body)
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}
