package app

import (
	"context"
	"log/slog"

	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/internal/redact"
	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/server"
	"github.com/fledge-flags/fledge/source"
	"github.com/fledge-flags/fledge/usage"
)

// startUsage reports served requests to the upstream's /proxy/usage/ in
// proxy-key mode: the handler counts, a Reporter flushes every
// usage_flush_interval_seconds. stop, called once the server has finished
// its in-flight requests, ends the flushes and sends what is left within
// api_poll_timeout_seconds.
func startUsage(ctx context.Context, cfg *config.Config, reg *registry.Registry, opts *server.Options, logger *slog.Logger) (stop func()) {
	if !cfg.ProxyKeyEnabled() {
		return func() {}
	}
	opts.CountUsage = true
	rep := usage.New(usage.Options{
		APIURL:   cfg.APIURL,
		ProxyKey: cfg.ProxyKeyValue(),
		Client:   source.NewHTTPClient(),
		Registry: reg,
		Interval: cfg.UsageFlushInterval(),
		Timeout:  cfg.PollTimeout(),
		Logger:   logger,
	})
	loop, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rep.Run(loop)
	}()
	logger.Info("proxy-key mode: environments discovered from the API, usage reported",
		"proxy_key", redact.Key(cfg.ProxyKeyValue()), "usage_flush_interval_seconds", cfg.UsageFlushIntervalSeconds)
	return func() {
		cancel()
		<-done
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.PollTimeout())
		defer cancel()
		_ = rep.Shutdown(fctx) // failures are logged
		rep.Close()
	}
}
