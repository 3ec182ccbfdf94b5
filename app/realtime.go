package app

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/metrics"
	"github.com/fledge-flags/fledge/realtime"
	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/server"
	"github.com/fledge-flags/fledge/source"
)

// observability is the metrics of a running role: the recorder every part
// reports to (metrics.Nop when /metrics is served nowhere) and the /metrics
// handler (nil then).
type observability struct {
	recorder metrics.Recorder
	handler  http.Handler
}

func newObservability(cfg *config.Config, reg *registry.Registry, fresh *source.Freshness) observability {
	if !cfg.MetricsOn() {
		return observability{recorder: metrics.Nop{}}
	}
	p := metrics.NewPrometheus(reg, fresh)
	return observability{recorder: p, handler: p.Handler()}
}

// extraRoutes adds the endpoints both roles serve beyond the SDK ones: the
// realtime streams and, with metrics.on_main_port, /metrics. Other paths go
// to the role's routes (the api role's), else get the handler's 404.
func extraRoutes(ctx context.Context, cfg *config.Config, reg *registry.Registry, refresh refresher,
	obs observability, role http.Handler, logger *slog.Logger) http.Handler {
	var hub http.Handler
	if cfg.Realtime.Enabled {
		opt := realtime.Options{
			Registry:         reg,
			Logger:           logger,
			Metrics:          obs.recorder,
			MaxStreams:       cfg.Realtime.MaxStreams,
			MaxStreamAge:     cfg.Realtime.MaxStreamAge(),
			KeepAlive:        cfg.Realtime.KeepAlive(),
			WriteTimeout:     cfg.Server.WriteTimeout(),
			QueueChangeToken: cfg.Realtime.QueueChangeToken,
		}
		if refresh != nil {
			opt.Refresh = refresh
		}
		hub = realtime.New(ctx, opt)
	}
	var metricsHandler http.Handler
	if cfg.Metrics.OnMainPort {
		metricsHandler = obs.handler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		switch {
		case hub != nil && strings.HasPrefix(path, realtime.Prefix):
			hub.ServeHTTP(w, r)
		case metricsHandler != nil && strings.TrimSuffix(path, "/") == "/metrics":
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET")
				server.WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method "+r.Method+" not allowed")
				return
			}
			metricsHandler.ServeHTTP(w, r)
		case role != nil:
			role.ServeHTTP(w, r)
		default:
			server.NotFound(w, r)
		}
	})
}
