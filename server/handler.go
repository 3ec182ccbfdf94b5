// Package server is Fledge's HTTP front: the Flagsmith SDK endpoints,
// health probes, CORS, compression and access logging.
package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fledge-flags/fledge/analytics"
	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/metrics"
	"github.com/fledge-flags/fledge/registry"
	"github.com/fledge-flags/fledge/sdk"
	"github.com/fledge-flags/fledge/source"
)

// Options configures the handler.
type Options struct {
	Registry *registry.Registry
	Logger   *slog.Logger
	// AllowOrigins is the CORS allow list; "*" allows any origin.
	AllowOrigins []string
	MaxBodyBytes int64
	// ReadTimeout bounds reading a request body, from when the handler
	// starts reading it (0: no bound). The connection-level timeouts of
	// Serve cover headers, idle keep-alive and responses; this one is set
	// here, on the few requests that have a body, so that requests without
	// one pay for no socket deadline.
	ReadTimeout time.Duration
	AccessLog   bool
	// ClientIP extracts the address used in the access log.
	ClientIP func(*http.Request) string
	// Readiness gives the readiness verdict: the sources' record of how
	// fresh the documents are (source.Freshness). nil: nothing is known
	// fresh, and readiness answers 503 "not updated".
	Readiness Readiness
	// Health settings: the readiness rule of the Flagsmith edge proxy.
	PollInterval time.Duration
	Grace        time.Duration
	GraceEnabled bool
	// Offline: documents come from files and never go stale.
	Offline bool
	// IdentityCacheSize > 0 caches identity responses (LRU), as the edge
	// proxy's endpoint_caches.identities does.
	IdentityCacheSize int
	// Identifier is the identify stage of /identities/ requests; nil is
	// the proxy's (sdk.Transient).
	Identifier sdk.Identifier
	// Edge applies the api role's request rules: core's validation (400,
	// optional identifier, trimmed keys) and no identity response cache,
	// since answers depend on stored state.
	Edge bool
	// Traits serves the api role's trait endpoints (/traits/,
	// /bulk-identities/); nil: they are not found, as on the proxy.
	Traits sdk.TraitWriter
	// SigningKey verifies the X-Flagsmith-Signature of writes a
	// self-hosted Flagsmith forwards (forwarding.signing_key); empty: the
	// header is ignored.
	SigningKey []byte
	// Document, when set, renders the environment document and the time
	// it last changed (the api role merges stored identity overrides in);
	// nil serves the snapshot's own.
	Document func(ctx context.Context, snap *environment.Snapshot) (*environment.Body, time.Time, error)

	// Analytics receives the SDKs' flag-usage reports; nil: they are
	// accepted and dropped.
	Analytics *analytics.Aggregator

	// CountUsage counts every 2xx answer of /flags/, /identities/ and
	// /environment-document/ on its environment (registry.Env.CountUse, one
	// atomic add), for the usage reports of proxy-key mode.
	CountUsage bool

	// Routes adds endpoints of a role (the api role's admin API and
	// trait endpoints), tried before "not found".
	Routes http.Handler
	// StoreStatus, when set, is the identity store's state, shown as the
	// readiness answer's "store" field (the DynamoDB region in use). It
	// does not change the readiness verdict.
	StoreStatus func() any
	// Metrics records every request (endpoint, status, latency); nil or
	// metrics.Nop leaves the recording out of the request path.
	Metrics metrics.Recorder
	now     func() time.Time
}

// Readiness applies the Flagsmith edge proxy's readiness rule;
// source.Freshness does.
type Readiness interface {
	Health(now time.Time, pollInterval, grace time.Duration, graceEnabled bool) source.Health
}

// Handler serves every endpoint.
type Handler struct {
	opt       Options
	anyOrigin bool
	origins   map[string]bool
	bufs      sync.Pool
	gzips     sync.Pool
	cache     *identityCache
	chain     http.Handler // the middlewares around route
}

// New returns the handler.
func New(opt Options) *Handler {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = 1 << 20
	}
	if opt.now == nil {
		opt.now = time.Now
	}
	h := &Handler{opt: opt, origins: map[string]bool{}}
	for _, o := range opt.AllowOrigins {
		if o == "*" {
			h.anyOrigin = true
		}
		h.origins[strings.TrimSuffix(o, "/")] = true
	}
	if opt.Identifier == nil {
		opt.Identifier = sdk.Transient{}
	}
	if opt.Edge {
		opt.IdentityCacheSize = 0
	}
	h.opt = opt
	if opt.IdentityCacheSize > 0 {
		h.cache = newIdentityCache(opt.IdentityCacheSize)
	}
	h.bufs.New = func() any { b := make([]byte, 0, 8<<10); return &b }
	h.chain = Chain(http.HandlerFunc(h.route), h.middlewares()...)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.chain.ServeHTTP(w, r)
}

// route serves a request with the endpoint its path names.
func (h *Handler) route(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	switch path {
	case "/api/v1/flags":
		h.methods(w, r, h.flags, http.MethodGet)
	case "/api/v1/identities":
		h.methods(w, r, h.identities, http.MethodGet, http.MethodPost)
	case "/api/v1/traits":
		if h.opt.Traits != nil {
			h.methods(w, r, h.setTrait, http.MethodPost)
			return
		}
		h.notFound(w, r)
	case "/api/v1/bulk-identities":
		if h.opt.Traits != nil {
			h.methods(w, r, h.bulkIdentities, http.MethodPost, http.MethodPut)
			return
		}
		h.notFound(w, r)
	case "/api/v1/environment-document":
		h.methods(w, r, h.environmentDocument, http.MethodGet)
	case "/api/v1/analytics/flags", "/api/v2/analytics/flags":
		h.methods(w, r, h.analytics, http.MethodPost)
	case "/proxy/health/liveness":
		h.methods(w, r, h.liveness, http.MethodGet)
	case "/proxy/health/readiness", "/proxy/health", "/health":
		h.methods(w, r, h.readiness, http.MethodGet)
	default:
		h.notFound(w, r)
	}
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	if h.opt.Routes != nil {
		h.opt.Routes.ServeHTTP(w, r)
		return
	}
	writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+clip(r.URL.Path))
}

func (h *Handler) methods(w http.ResponseWriter, r *http.Request, fn http.HandlerFunc, allowed ...string) {
	for _, m := range allowed {
		if r.Method == m || (r.Method == http.MethodHead && m == http.MethodGet) {
			fn(w, r)
			return
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method "+r.Method+" not allowed")
}

// authenticate resolves the X-Environment-Key header. It writes the error
// response itself and returns ok=false when the request cannot go on.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (*environment.Snapshot, environment.KeyKind, bool) {
	_, snap, kind, ok := h.authenticateEnv(w, r)
	return snap, kind, ok
}

// countUse counts a 2xx answer for usage reports, when they are on.
func (h *Handler) countUse(env *registry.Env, res registry.Resource) {
	if h.opt.CountUsage {
		env.CountUse(res)
	}
}

// authenticateEnv is authenticate, also returning the environment.
func (h *Handler) authenticateEnv(w http.ResponseWriter, r *http.Request) (*registry.Env, *environment.Snapshot, environment.KeyKind, bool) {
	key := r.Header.Get("X-Environment-Key")
	env, kind, ok := h.opt.Registry.Lookup(key)
	if !ok {
		writeError(w, http.StatusUnauthorized, "unauthorized", "unknown key '"+clip(key)+"'")
		return nil, nil, 0, false
	}
	snap := env.Snapshot()
	if snap == nil {
		writeError(w, http.StatusServiceUnavailable, "service_unavailable",
			"no environment document yet for key '"+registry.Redact(key)+"': the proxy is still waiting for the Flagsmith API")
		return nil, nil, 0, false
	}
	if h.opt.Edge && snap.StopServingFlags() {
		// Core refuses every SDK call of such an organisation; the proxy
		// never did, so only the api role applies it.
		writeError(w, http.StatusForbidden, "forbidden", "Organisation is disabled from serving flags.")
		return nil, nil, 0, false
	}
	return env, snap, kind, true
}

func (h *Handler) flags(w http.ResponseWriter, r *http.Request) {
	env, snap, kind, ok := h.authenticateEnv(w, r)
	if !ok {
		return
	}
	setUpdatedAt(w, snap)
	if r.URL.RawQuery != "" {
		if name, present := r.URL.Query()["feature"]; present {
			body, found := snap.FlagJSON(kind, firstOf(name))
			if !found {
				writeError(w, http.StatusNotFound, "not_found", "feature '"+clip(firstOf(name))+"' not found")
				return
			}
			h.writeJSON(w, r, body)
			h.countUse(env, registry.Flags)
			return
		}
	}
	h.writeBody(w, r, snap.Flags(kind))
	h.countUse(env, registry.Flags)
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func (h *Handler) identities(w http.ResponseWriter, r *http.Request) {
	env, snap, kind, ok := h.authenticateEnv(w, r)
	if !ok {
		return
	}
	var req *sdk.IdentityRequest
	var ck cacheKey
	cached := false
	if r.Method == http.MethodPost {
		body, ok := h.readSignedBody(w, r)
		if !ok {
			return
		}
		var err error
		if h.cache != nil {
			ck, cached = identityCacheKey(r.Header.Get("X-Environment-Key"), body), true
			if out, ok := h.cache.get(ck, snap); ok {
				h.putBody(body)
				setUpdatedAt(w, snap)
				h.writeJSON(w, r, out)
				h.countUse(env, registry.Identities)
				return
			}
		}
		if h.opt.Edge {
			req, err = sdk.DecodeEdgeIdentityRequest(body)
		} else {
			req, err = sdk.DecodeIdentityRequest(body)
		}
		h.putBody(body)
		if err != nil {
			h.writeFieldError(w, err)
			return
		}
	} else {
		if !h.forwardedOK(w, r, nil) {
			return
		}
		if req = h.identityQuery(w, r); req == nil {
			return
		}
	}
	if kind == environment.ClientKey && !snap.AllowClientTraits() && !h.opt.Edge {
		// The environment forbids client-side traits: drop them entirely.
		// (The api role's identify stage applies the rule itself.)
		req.Identity.Traits, req.RawTraits = nil, nil
	}
	var id sdk.Identified
	if err := h.opt.Identifier.Identify(r.Context(), snap, kind, req, &id); err != nil {
		h.identifyFailed(w, r, err)
		return
	}
	setUpdatedAt(w, snap)
	bp := h.bufs.Get().(*[]byte)
	out := sdk.AppendIdentified((*bp)[:0], snap, kind, &id)
	if cached {
		h.cache.put(ck, snap, append([]byte(nil), out...))
	}
	h.writeJSON(w, r, out)
	h.countUse(env, registry.Identities)
	*bp = out
	if cap(out) <= 1<<20 {
		h.bufs.Put(bp)
	}
}

// identityQuery reads GET /identities/?identifier=…[&transient=…],
// answering the error itself when it returns nil.
func (h *Handler) identityQuery(w http.ResponseWriter, r *http.Request) *sdk.IdentityRequest {
	identifier, ferr := queryIdentifier(r.URL.RawQuery)
	if ferr != nil {
		h.writeFieldError(w, ferr)
		return nil
	}
	if h.opt.Edge {
		identifier = strings.TrimSpace(identifier)
	}
	if identifier == "" {
		h.writeFieldError(w, &sdk.FieldError{Loc: []any{"query", "identifier"}, Type: "missing", Msg: "Field required"})
		return nil
	}
	if h.opt.Edge {
		if len(identifier) > sdk.MaxEdgeIdentifierBytes {
			h.writeFieldError(w, &sdk.FieldError{Loc: []any{"query", "identifier"}, Type: "string_too_long",
				Msg: "Identifier is " + itoa(int64(len(identifier))) + " UTF-8 bytes; the limit is " + itoa(sdk.MaxEdgeIdentifierBytes)})
			return nil
		}
	} else if len([]rune(identifier)) > sdk.MaxIdentifierChars {
		h.writeFieldError(w, &sdk.FieldError{Loc: []any{"query", "identifier"}, Type: "string_too_long", Msg: "String should have at most 2000 characters"})
		return nil
	}
	req := &sdk.IdentityRequest{Identity: engine.Identity{Identifier: identifier}, Get: true}
	if v := r.URL.Query().Get("transient"); v != "" && h.opt.Edge {
		// A boolean, not "any value": Android SDKs sent transient=false
		// on every call (flagsmith#5260).
		t, err := strconv.ParseBool(v)
		if err != nil {
			h.writeFieldError(w, &sdk.FieldError{Loc: []any{"query", "transient"}, Type: "bool_parsing", Msg: "Input should be a valid boolean"})
			return nil
		}
		req.Transient = t
	}
	return req
}

func (h *Handler) writeFieldError(w http.ResponseWriter, err error) {
	if h.opt.Edge {
		writeFieldError(w, http.StatusBadRequest, err)
		return
	}
	writeValidation(w, err)
}

// identifyFailed answers an identify stage's error: a field error is the
// client's; anything else is the store's, which the client may retry.
func (h *Handler) identifyFailed(w http.ResponseWriter, r *http.Request, err error) {
	if fe, ok := errors.AsType[*sdk.FieldError](err); ok {
		h.writeFieldError(w, fe)
		return
	}
	if f, ok := errors.AsType[*sdk.Forbidden](err); ok {
		writeError(w, http.StatusForbidden, "forbidden", f.Detail)
		return
	}
	if r.Context().Err() != nil {
		return // the client is gone
	}
	h.opt.Logger.Error("identity store", "path", r.URL.Path, "error", err.Error())
	writeError(w, http.StatusServiceUnavailable, "service_unavailable", "the identity store is unavailable; try again")
}

// setTrait serves POST /api/v1/traits/ (the api role).
func (h *Handler) setTrait(w http.ResponseWriter, r *http.Request) {
	snap, kind, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	body, ok := h.readSignedBody(w, r)
	if !ok {
		return
	}
	req, err := sdk.DecodeTraitRequest(body)
	h.putBody(body)
	if err != nil {
		h.writeFieldError(w, err)
		return
	}
	v, err := h.opt.Traits.SetTrait(r.Context(), snap, kind, req)
	if err != nil {
		h.identifyFailed(w, r, err)
		return
	}
	out := append([]byte(`{"identity":{"identifier":`), engine.AppendJSONString(nil, req.Identifier)...)
	out = append(out, `},"trait_key":`...)
	out = engine.AppendJSONString(out, req.Key)
	out = append(out, `,"trait_value":`...)
	out = identity.AppendValueJSON(out, v)
	h.writeJSON(w, r, append(out, '}'))
}

// bulkIdentities serves POST|PUT /api/v1/bulk-identities/ (the api role):
// POST replaces each identity's traits, PUT merges. Every identity is
// stored before the 202.
func (h *Handler) bulkIdentities(w http.ResponseWriter, r *http.Request) {
	snap, kind, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	body, ok := h.readSignedBody(w, r)
	if !ok {
		return
	}
	reqs, err := sdk.DecodeBulkRequest(body)
	h.putBody(body)
	if err != nil {
		h.writeFieldError(w, err)
		return
	}
	if err := h.opt.Traits.Bulk(r.Context(), snap, kind, reqs, r.Method == http.MethodPost); err != nil {
		h.identifyFailed(w, r, err)
		return
	}
	body = []byte(`{"status":"accepted","identities":` + itoa(int64(len(reqs))) + `}`)
	hdr := w.Header()
	hdr["Content-Type"] = jsonContentType
	hdr["Content-Length"] = []string{itoa(int64(len(body)))}
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(body)
}

var errBodyTooLarge = errors.New("request body too large")

// readBody reads the request body within the size limit, answering 413 or
// 400 itself on failure.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > h.opt.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", "request body larger than the limit of "+itoa(h.opt.MaxBodyBytes)+" bytes")
		return nil, errBodyTooLarge
	}
	var rc *http.ResponseController
	if h.opt.ReadTimeout > 0 {
		rc = http.NewResponseController(w) // ErrNotSupported only under test recorders
		_ = rc.SetReadDeadline(time.Now().Add(h.opt.ReadTimeout))
	}
	bp := h.bufs.Get().(*[]byte)
	buf := bytes.NewBuffer((*bp)[:0])
	n, err := buf.ReadFrom(io.LimitReader(r.Body, h.opt.MaxBodyBytes+1))
	if err != nil {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			// The deadline stays: net/http would otherwise wait for the
			// rest of the body before sending this answer.
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestTimeout, "request_timeout", "request body not received within "+h.opt.ReadTimeout.String())
			return nil, err
		}
		writeError(w, http.StatusBadRequest, "bad_request", "reading request body: "+err.Error())
		return nil, err
	}
	if n > h.opt.MaxBodyBytes {
		// The deadline stays, bounding net/http's discard of the rest.
		writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", "request body larger than the limit of "+itoa(h.opt.MaxBodyBytes)+" bytes")
		return nil, errBodyTooLarge
	}
	if rc != nil {
		// The body is all read. Cleared, or net/http's background read of
		// the connection would hit the deadline and cancel the request.
		_ = rc.SetReadDeadline(time.Time{})
	}
	return buf.Bytes(), nil
}

func (h *Handler) putBody(b []byte) {
	if cap(b) <= 1<<20 {
		b = b[:0]
		h.bufs.Put(&b)
	}
}

func (h *Handler) environmentDocument(w http.ResponseWriter, r *http.Request) {
	env, snap, kind, ok := h.authenticateEnv(w, r)
	if !ok {
		return
	}
	if kind != environment.ServerKey {
		writeError(w, http.StatusUnauthorized, "unauthorized", "the environment document requires a server-side key (ser.…)")
		return
	}
	body, modified, lastModified := &snap.Document, snap.UpdatedAt, snap.LastModified
	if h.opt.Document != nil {
		var err error
		if body, modified, err = h.opt.Document(r.Context(), snap); err != nil {
			if r.Context().Err() == nil {
				h.opt.Logger.Error("identity store", "path", r.URL.Path, "error", err.Error())
			}
			writeError(w, http.StatusServiceUnavailable, "service_unavailable", "the identity store is unavailable; try again")
			return
		}
		lastModified = nil
		if !modified.IsZero() {
			lastModified = []string{modified.UTC().Format(http.TimeFormat)}
		}
	}
	hdr := w.Header()
	setUpdatedAt(w, snap)
	if lastModified != nil {
		hdr["Last-Modified"] = lastModified
		if ims := r.Header.Get("If-Modified-Since"); ims != "" {
			if t, err := http.ParseTime(ims); err == nil && !modified.Truncate(time.Second).After(t) {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
	}
	h.writeBody(w, r, body)
	h.countUse(env, registry.EnvironmentDocument)
}

// analytics accepts the SDKs' flag-usage reports, v1 and v2, and hands
// them to the aggregator when there is one. Bad reports are dropped, not
// refused, so that SDKs do not log errors.
func (h *Handler) analytics(w http.ResponseWriter, r *http.Request) {
	snap, _, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	if h.opt.Analytics == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, h.opt.MaxBodyBytes))
	} else {
		body, err := h.readBody(w, r)
		if err != nil {
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/v2/") {
			h.opt.Analytics.RecordV2(snap, body)
		} else {
			h.opt.Analytics.RecordV1(snap, body)
		}
		h.putBody(body)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
}

func setUpdatedAt(w http.ResponseWriter, snap *environment.Snapshot) {
	if snap.UpdatedAtHeader != nil {
		w.Header()["X-Flagsmith-Document-Updated-At"] = snap.UpdatedAtHeader
	}
}

// acceptsGzip applies RFC 9110 content negotiation for gzip: an explicit
// gzip entry decides, else a "*" entry does; q=0 (in any spelling, such as
// q=0.000) means not acceptable. It runs on every response, so it walks the
// header without allocating.
func acceptsGzip(r *http.Request) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, v := range r.Header["Accept-Encoding"] {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			name, params, _ := strings.Cut(part, ";")
			name = strings.TrimSpace(name)
			q := 1.0
			for params != "" {
				var p string
				p, params, _ = strings.Cut(params, ";")
				k, val, ok := strings.Cut(p, "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					if err != nil || f < 0 || f > 1 {
						f = 0 // a malformed weight must not turn compression on
					}
					q = f
				}
			}
			switch {
			case strings.EqualFold(name, "gzip") || strings.EqualFold(name, "x-gzip"):
				gzipQ = q
			case name == "*":
				starQ = q
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}

// Header values shared by every response; net/http only reads them.
var (
	jsonContentType    = []string{"application/json"}
	gzipEncoding       = []string{"gzip"}
	varyAcceptEncoding = []string{"Accept-Encoding"}
	varyOriginEncoding = []string{"Origin, Accept-Encoding"}
)

// varyOnEncoding marks a response as depending on Accept-Encoding, merging
// it into the Vary that CORS may have set: one Vary line, never two, since
// some caches read only the first.
func varyOnEncoding(hdr http.Header) {
	switch vary := hdr["Vary"]; {
	case vary == nil:
		hdr["Vary"] = varyAcceptEncoding
	case len(vary) == 1 && vary[0] == "Origin":
		hdr["Vary"] = varyOriginEncoding
	default:
		hdr["Vary"] = []string{strings.Join(vary, ", ") + ", Accept-Encoding"}
	}
}

// writeBody writes a 200 JSON body prepared with its document version,
// choosing the pre-compressed form when the client accepts gzip. Responses
// that exist in both forms vary on Accept-Encoding either way.
func (h *Handler) writeBody(w http.ResponseWriter, r *http.Request, b *environment.Body) {
	hdr := w.Header()
	hdr["Content-Type"] = jsonContentType
	body, length := b.JSON, b.JSONLength
	if b.Gzip != nil {
		varyOnEncoding(hdr)
		if acceptsGzip(r) {
			hdr["Content-Encoding"] = gzipEncoding
			body, length = b.Gzip, b.GzipLength
		}
	}
	hdr["Content-Length"] = length
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// writeJSON writes a 200 JSON body built for this request, gzip-compressed
// when it is large enough and the client accepts it.
func (h *Handler) writeJSON(w http.ResponseWriter, r *http.Request, body []byte) {
	hdr := w.Header()
	hdr["Content-Type"] = jsonContentType
	if len(body) >= environment.GzipMinBytes && acceptsGzip(r) {
		hdr["Content-Encoding"] = gzipEncoding
		varyOnEncoding(hdr)
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return
		}
		zw, _ := h.gzips.Get().(*gzip.Writer)
		if zw == nil {
			zw, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
		} else {
			zw.Reset(w)
		}
		_, _ = zw.Write(body)
		_ = zw.Close()
		h.gzips.Put(zw)
		return
	}
	hdr["Content-Length"] = []string{itoa(int64(len(body)))}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func clip(s string) string {
	const max = 100
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strings.ToValidUTF8(s, "�")
}

type loggingWriter struct {
	http.ResponseWriter
	status int
	bytes  int
	wrote  bool
}

func (l *loggingWriter) WriteHeader(code int) {
	if !l.wrote {
		l.status, l.wrote = code, true
	}
	l.ResponseWriter.WriteHeader(code)
}

func (l *loggingWriter) Write(b []byte) (int, error) {
	l.wrote = true
	n, err := l.ResponseWriter.Write(b)
	l.bytes += n
	return n, err
}

func (l *loggingWriter) Unwrap() http.ResponseWriter { return l.ResponseWriter }

func (h *Handler) clientIP(r *http.Request) string {
	if h.opt.ClientIP != nil {
		return h.opt.ClientIP(r)
	}
	return r.RemoteAddr
}
