// Package app assembles Fledge's roles from configuration: the stateless
// proxy (fledge proxy) and the Edge API (fledge api, the proxy's server plus
// an identity store and the admin API). cmd/fledge parses flags and calls
// it; everything that wires packages together lives here.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/server"
	"github.com/fledge-flags/fledge/source"
)

// Role names a way of running Fledge.
type Role string

// Roles.
const (
	Proxy Role = "proxy"
	API   Role = "api"
)

// Listeners are the sockets a role serves on; Debug may be nil.
type Listeners struct {
	Main  net.Listener
	Debug net.Listener
}

// Run serves the role until ctx ends.
func Run(ctx context.Context, role Role, cfg *config.Config, ls Listeners, logger *slog.Logger) error {
	reg, fresh, poller, refresh, err := environments(ctx, role, cfg, logger)
	if err != nil {
		return err
	}
	obs := newObservability(cfg, reg, fresh)
	if poller != nil {
		poller.Metrics = obs.recorder
		go poller.Run(ctx)
	}
	opts := handlerOptions(cfg, reg, fresh, logger)
	opts.Metrics = obs.recorder
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			if err := c.Close(); err != nil {
				logger.Error("closing", "error", err.Error())
			}
		}
	}()
	stopAnalytics := startAnalytics(ctx, cfg, &opts, obs.recorder, logger)
	defer stopAnalytics() // after the server has drained: the last counts go too
	stopUsage := startUsage(ctx, cfg, reg, &opts, logger)
	defer stopUsage()
	if role == API {
		closer, err := apiRole(ctx, cfg, reg, &opts, obs.recorder, logger)
		if err != nil {
			return err
		}
		closers = append(closers, closer)
	}
	opts.Routes = extraRoutes(ctx, cfg, reg, refresh, obs, opts.Routes, logger)
	h := server.New(opts)
	if ls.Debug != nil {
		go serveDebug(ctx, ls.Debug, reg, obs, logger)
	}
	logger.Info("fledge "+string(role)+" listening", "addr", ls.Main.Addr().String(), "environments", len(reg.Envs()), "tls", cfg.TLS())
	return server.Serve(ctx, ls.Main, h, server.HTTPOptions{
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

// environments builds the registry from the configured document source,
// and the Freshness that source records into (readiness and metrics read
// it): files in offline mode, the DynamoDB tables with environment_source
// dynamodb (started here), else the upstream poller, which the caller
// starts (in proxy-key mode it also discovers environments beside the
// static pairs). The poller is nil for the first two.
func environments(ctx context.Context, role Role, cfg *config.Config, logger *slog.Logger) (*registry.Registry, *source.Freshness, *source.Poller, refresher, error) {
	if cfg.EnvironmentsFromDynamoDB() {
		reg, fresh, src, err := dynamoEnvironments(ctx, role, cfg, logger)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		return reg, fresh, nil, src.Wake, nil
	}
	if len(cfg.Environments) > 0 {
		snaps, err := source.LoadFiles(cfg.Environments, logger)
		if err != nil {
			return nil, nil, nil, nil, err
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
		reg := registry.New(pairs)
		fresh := source.NewFreshness(reg)
		for i, s := range snaps {
			env := reg.Envs()[i]
			fresh.MarkFetched(env, s.UpdatedAt)
			env.Store(s)
		}
		logger.Info("offline mode: serving environment documents from files", "files", len(snaps))
		return reg, fresh, nil, nil, nil
	}
	var pairs []registry.Pair
	for _, kp := range cfg.EnvironmentKeyPairs {
		pairs = append(pairs, registry.Pair{ClientKey: kp.ClientSideKey, ServerKey: kp.ServerSideKey})
	}
	reg := registry.New(pairs)
	fresh := source.NewFreshness(reg)
	if cfg.ProxyKeyEnabled() {
		fresh.EnableDiscovery()
	}
	var snapshots *source.SnapshotDir
	if cfg.SnapshotDir != "" {
		snapshots = &source.SnapshotDir{Dir: cfg.SnapshotDir}
		snapshots.LoadInto(reg, fresh, logger)
	}
	poller := &source.Poller{
		APIURL:    cfg.APIURL,
		Interval:  cfg.PollInterval(),
		Timeout:   cfg.PollTimeout(),
		Client:    source.NewHTTPClient(),
		Registry:  reg,
		Freshness: fresh,
		Logger:    logger,
		Snapshots: snapshots,
		ProxyKey:  cfg.ProxyKeyValue(),
	}
	return reg, fresh, poller, poller.Refresh, nil
}

// refresher asks a document source to fetch an environment at once (the
// queue-change endpoint); false for an unknown key. nil where nothing can
// be fetched (offline files).
type refresher func(clientKey string) bool

func handlerOptions(cfg *config.Config, reg *registry.Registry, fresh *source.Freshness, logger *slog.Logger) server.Options {
	grace, graceOn := cfg.Grace()
	trustAll, trusted := cfg.TrustedProxies()
	return server.Options{
		Registry:          reg,
		Readiness:         fresh,
		Logger:            logger,
		AllowOrigins:      cfg.AllowOrigins,
		MaxBodyBytes:      cfg.Server.MaxBodyBytes,
		ReadTimeout:       cfg.Server.ReadTimeout(),
		AccessLog:         cfg.Logging.EnableAccessLog,
		ClientIP:          server.ClientIPFunc(cfg.Server.ProxyHeaders, trustAll, trusted),
		PollInterval:      cfg.PollInterval(),
		Grace:             grace,
		GraceEnabled:      graceOn,
		Offline:           len(cfg.Environments) > 0,
		IdentityCacheSize: identityCacheSize(cfg),
	}
}

// NewLogger builds the slog logger from the logging settings: "generic" is
// slog's text format, "json" its JSON format, and log_event_field_name
// renames the message field as the Flagsmith edge proxy does.
func NewLogger(l config.Logging, w io.Writer) *slog.Logger {
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
func serveDebug(ctx context.Context, ln net.Listener, reg *registry.Registry, obs observability, logger *slog.Logger) {
	addr := ln.Addr().String()
	if ap, err := netip.ParseAddrPort(addr); err != nil || !ap.Addr().IsLoopback() {
		logger.Warn("the diagnostics listener is not on a loopback address: keep it off public networks", "setting", "server.debug_address", "addr", addr)
	}
	logger.Info("diagnostics listening (/debug/vars, /debug/pprof/, /metrics)", "addr", addr)
	mux := http.NewServeMux()
	mux.Handle("/", server.DebugHandler(reg))
	if obs.handler != nil {
		mux.Handle("GET /metrics", obs.handler)
	}
	srv := &http.Server{
		Handler:           mux,
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

// errStore names the store settings in start-up failures.
func errStore(setting string, err error) error { return fmt.Errorf("%s: %w", setting, err) }
