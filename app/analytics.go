package app

import (
	"context"
	"log/slog"

	"github.com/fledge-flags/fledge/analytics"
	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/metrics"
	"github.com/fledge-flags/fledge/server"
	"github.com/fledge-flags/fledge/source"
)

// startAnalytics forwards the SDKs' flag analytics to the upstream when the
// configuration asks for it (the default, except in offline mode): it gives
// the handler an aggregator and starts flushing it. stop, called once the
// server has finished its in-flight requests, ends the flushes and sends
// what is left, within api_poll_timeout_seconds.
func startAnalytics(ctx context.Context, cfg *config.Config, opts *server.Options, rec metrics.Recorder, logger *slog.Logger) (stop func()) {
	if !cfg.AnalyticsForwarding() {
		return func() {}
	}
	agg := analytics.NewAggregator(cfg.Analytics.MaxFeaturesPerEnvironment)
	opts.Analytics = agg
	fw := analytics.NewForwarder(agg, analytics.ForwarderOptions{
		APIURL:    cfg.APIURL,
		Client:    source.NewHTTPClient(),
		Interval:  cfg.Analytics.FlushInterval(),
		Timeout:   cfg.PollTimeout(),
		Logger:    logger,
		Forwarded: rec.AnalyticsForwarded,
	})
	loop, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fw.Run(loop)
	}()
	return func() {
		cancel()
		<-done
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.PollTimeout())
		defer cancel()
		_ = fw.Shutdown(fctx) // failures are logged
	}
}
