package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// HTTPOptions are the listener's limits and timeouts.
type HTTPOptions struct {
	Addr              string
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration // keep-alive
	MaxHeaderBytes    int
	ShutdownTimeout   time.Duration
	TLSCert, TLSKey   string
	Logger            *slog.Logger
}

// Serve listens on ln until ctx ends, then shuts down gracefully: in-flight
// requests finish (up to ShutdownTimeout) before it returns.
//
// The connection timeouts are enforced by a watchdog (timeouts.go), not by
// net/http, whose per-request socket deadlines cost measurable throughput;
// the http.Server itself has no timeouts. As in net/http, ReadTimeout stands
// in for a zero ReadHeaderTimeout or IdleTimeout; it no longer bounds request
// bodies here (the handler's Options.ReadTimeout does, and WriteTimeout
// bounds the whole of a request once its header is read).
func Serve(ctx context.Context, ln net.Listener, h http.Handler, opt HTTPOptions) error {
	d := &drainer{}
	srv := &http.Server{
		Handler:        d.handler(h),
		MaxHeaderBytes: opt.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(opt.Logger.Handler(), slog.LevelDebug),
	}
	wd := newWatchdog(opt)
	if wd != nil {
		// Wrapped under TLS, so that the handshake counts as part of the
		// first request's header time, and TLS connections are policed too.
		ln = wd.listener(ln)
		srv.ConnState = d.connState(wd.connState)
		srv.ConnContext = wd.connContext // for StartStream
	} else {
		srv.ConnState = d.connState(nil)
	}
	if opt.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(opt.TLSCert, opt.TLSKey)
		if err != nil {
			return fmt.Errorf("server.tls_cert/tls_key: %w", err)
		}
		// No NextProtos, so no "h2": because srv.TLSConfig is set without
		// it, srv.Serve does not add HTTP/2 either, and every connection is
		// HTTP/1.1. The watchdog relies on that: its phases follow one
		// request at a time, while an HTTP/2 connection multiplexes streams
		// and reads frames (pings, settings) between them, so its
		// ConnState and reads would not mean what the phases assume
		// (TestTLSIsHTTP1 guards this).
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	if wd != nil {
		defer wd.start()()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	opt.Logger.Info("shutting down: finishing in-flight requests", "timeout", opt.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), opt.ShutdownTimeout)
	defer cancel()
	// Drain (drain.go): stop accepting, answer what keeps arriving on open
	// connections with Connection: close, then shut down what is left.
	d.draining.Store(true)
	_ = ln.Close()
	<-errc // Serve returns once the listener is closed
	d.drain(sctx, min(opt.ShutdownTimeout, maxDrainWindow))
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	return nil
}

// ClientIPFunc returns the access log's client address: X-Forwarded-For's
// first hop when proxy headers are on and the peer is trusted, else the
// peer address.
func ClientIPFunc(proxyHeaders, trustAll bool, trusted []netip.Prefix) func(*http.Request) string {
	return func(r *http.Request) string {
		peer := r.RemoteAddr
		if host, _, err := net.SplitHostPort(peer); err == nil {
			peer = host
		}
		if !proxyHeaders {
			return peer
		}
		xff := r.Header.Get("X-Forwarded-For")
		if xff == "" {
			return peer
		}
		ok := trustAll
		if !ok {
			if addr, err := netip.ParseAddr(peer); err == nil {
				for _, p := range trusted {
					if p.Contains(addr.Unmap()) {
						ok = true
						break
					}
				}
			}
		}
		if !ok {
			return peer
		}
		first, _, _ := strings.Cut(xff, ",")
		return strings.TrimSpace(first)
	}
}
