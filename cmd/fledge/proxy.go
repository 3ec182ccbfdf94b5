package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/server"
	"github.com/fledge-flags/fledge/source"
)

const proxyUsage = `Usage:
  fledge proxy [--config PATH] [--print-config]

Serves Flagsmith's SDK endpoints from environment documents polled from the
Flagsmith API (or read from files in offline mode). Configuration is read
from --config, else $CONFIG_PATH, else ./config.json, and environment
variables override it (see README.md).
`

func runProxy(args []string, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "configuration file")
	printConfig := fs.Bool("print-config", false, "print the effective configuration (keys redacted) and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, proxyUsage)
			return 0
		}
		fmt.Fprintf(stderr, "fledge proxy: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fledge proxy: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg, err := config.LoadResolved(*configPath, env)
	if err != nil {
		fmt.Fprintf(stderr, "fledge proxy: %v\n", err)
		return 2
	}
	if *printConfig {
		b, err := cfg.Redacted()
		if err != nil {
			fmt.Fprintf(stderr, "fledge proxy: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	if err := cfg.CheckFiles(); err != nil {
		fmt.Fprintf(stderr, "fledge proxy: %v\n", err)
		return 2
	}
	logger := newLogger(cfg.Logging, stderr)
	for _, k := range cfg.Unknown {
		logger.Warn("unknown configuration setting ignored", "setting", k)
	}
	for _, w := range cfg.Warnings() {
		logger.Warn(w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		fmt.Fprintf(stderr, "fledge proxy: server.host/server.port: %v\n", err)
		return 1
	}
	var debugLn net.Listener
	if cfg.Server.DebugAddress != "" {
		if debugLn, err = net.Listen("tcp", cfg.Server.DebugAddress); err != nil {
			ln.Close()
			fmt.Fprintf(stderr, "fledge proxy: server.debug_address: %v\n", err)
			return 1
		}
	}
	if err := serveProxy(ctx, cfg, ln, debugLn, logger); err != nil {
		logger.Error("proxy stopped", "error", err.Error())
		return 1
	}
	return 0
}

// serveProxy wires the pieces together and serves until ctx ends; debugLn,
// when not nil, gets the diagnostics listener.
func serveProxy(ctx context.Context, cfg *config.Config, ln, debugLn net.Listener, logger *slog.Logger) error {
	offline := len(cfg.Environments) > 0
	var reg *registry.Registry
	if offline {
		snaps, err := source.LoadFiles(cfg.Environments, logger)
		if err != nil {
			return err
		}
		var pairs []registry.Pair
		for _, s := range snaps {
			p := registry.Pair{ClientKey: s.APIKey}
			for _, kp := range cfg.EnvironmentKeyPairs {
				if kp.ClientSideKey == p.ClientKey {
					p.ServerKey = kp.ServerSideKey
				}
			}
			pairs = append(pairs, p)
		}
		reg = registry.New(pairs)
		for i, s := range snaps {
			reg.Envs()[i].Store(s, s.UpdatedAt)
		}
		logger.Info("offline mode: serving environment documents from files", "files", len(snaps))
	} else {
		var pairs []registry.Pair
		for _, kp := range cfg.EnvironmentKeyPairs {
			pairs = append(pairs, registry.Pair{ClientKey: kp.ClientSideKey, ServerKey: kp.ServerSideKey})
		}
		reg = registry.New(pairs)
		var snapshots *source.SnapshotDir
		if cfg.SnapshotDir != "" {
			snapshots = &source.SnapshotDir{Dir: cfg.SnapshotDir}
			snapshots.LoadInto(reg, logger)
		}
		poller := &source.Poller{
			APIURL:    cfg.APIURL,
			Interval:  cfg.PollInterval(),
			Timeout:   cfg.PollTimeout(),
			Client:    source.NewHTTPClient(),
			Registry:  reg,
			Logger:    logger,
			Snapshots: snapshots,
		}
		go poller.Run(ctx)
	}
	grace, graceOn := cfg.Grace()
	trustAll, trusted := cfg.TrustedProxies()
	h := server.New(server.Options{
		Registry:          reg,
		Logger:            logger,
		AllowOrigins:      cfg.AllowOrigins,
		MaxBodyBytes:      cfg.Server.MaxBodyBytes,
		ReadTimeout:       cfg.Server.ReadTimeout(),
		AccessLog:         cfg.Logging.EnableAccessLog,
		ClientIP:          server.ClientIPFunc(cfg.Server.ProxyHeaders, trustAll, trusted),
		PollInterval:      cfg.PollInterval(),
		Grace:             grace,
		GraceEnabled:      graceOn,
		Offline:           offline,
		IdentityCacheSize: identityCacheSize(cfg),
	})
	if debugLn != nil {
		go serveDebug(ctx, debugLn, reg, logger)
	}
	logger.Info("fledge proxy listening", "addr", ln.Addr().String(), "environments", len(reg.Envs()), "tls", cfg.TLS())
	return server.Serve(ctx, ln, h, server.HTTPOptions{
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout(),
		ReadTimeout:       cfg.Server.ReadTimeout(),
		WriteTimeout:      cfg.Server.WriteTimeout(),
		IdleTimeout:       cfg.Server.KeepAlive(),
		MaxHeaderBytes:    int(cfg.Server.MaxHeaderBytes),
		ShutdownTimeout:   cfg.Server.ShutdownTimeout(),
		TLSCert:           cfg.Server.TLSCert,
		TLSKey:            cfg.Server.TLSKey,
		Logger:            logger,
	})
}

// newLogger builds the slog logger from the logging settings: "generic" is
// slog's text format, "json" its JSON format, and log_event_field_name
// renames the message field as the Flagsmith edge proxy does.
func newLogger(l config.Logging, w io.Writer) *slog.Logger {
	field := l.LogEventFieldName
	opts := &slog.HandlerOptions{
		Level: l.SlogLevel(),
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.MessageKey && field != "" {
				a.Key = field
			}
			return a
		},
	}
	if l.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func identityCacheSize(cfg *config.Config) int {
	if c := cfg.EndpointCaches.Identities; c.UseCache {
		return c.CacheMaxSize
	}
	return 0
}

// serveDebug serves the diagnostics listener until ctx ends. It has no TLS
// and no authentication, so a non-loopback address gets a warning.
func serveDebug(ctx context.Context, ln net.Listener, reg *registry.Registry, logger *slog.Logger) {
	addr := ln.Addr().String()
	if ap, err := netip.ParseAddrPort(addr); err != nil || !ap.Addr().IsLoopback() {
		logger.Warn("the diagnostics listener is not on a loopback address: keep it off public networks", "setting", "server.debug_address", "addr", addr)
	}
	logger.Info("diagnostics listening (/debug/vars, /debug/pprof/)", "addr", addr)
	srv := &http.Server{
		Handler:           server.DebugHandler(reg),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		logger.Error("diagnostics listener stopped", "error", err.Error())
	}
}
