package server

import (
	"context"
	"crypto/tls"
	"errors"
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
func Serve(ctx context.Context, ln net.Listener, h http.Handler, opt HTTPOptions) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: opt.ReadHeaderTimeout,
		ReadTimeout:       opt.ReadTimeout,
		WriteTimeout:      opt.WriteTimeout,
		IdleTimeout:       opt.IdleTimeout,
		MaxHeaderBytes:    opt.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opt.Logger.Handler(), slog.LevelDebug),
	}
	if opt.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(opt.TLSCert, opt.TLSKey)
		if err != nil {
			return fmt.Errorf("server.tls_cert/tls_key: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
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
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
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
