// Package admin is the edge-identities admin API: the endpoints Flagsmith's
// dashboard (and core, for its Edge projects) calls to list, create and
// edit stored identities, their traits and their identity overrides, under
// /api/v1/environments/{client_api_key}/ (edge-api.md section (c), items
// 25–33).
//
// Differences from core, on purpose:
//   - an identity is only reachable through its own environment's path:
//     another environment's identity answers 404 everywhere, including the
//     nested edge-featurestates endpoints where core answers 403 (item 33);
//     only clone-from-given-identity answers 403 for a source in another
//     environment, as core does;
//   - an unknown feature in an override body is a 400 naming the feature
//     (core: an unhandled 500);
//   - store failures are 503, never 500.
//
// Every override change goes through identity.Store.Update, so concurrent
// SDK trait writes to the same identity are never lost.
package admin

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/internal/tokens"
	"github.com/fledge-flags/fledge/registry"
)

// Options configures the admin API.
type Options struct {
	Registry *registry.Registry
	Store    identity.Store
	// Tokens are accepted as "Authorization: Token T" or "Api-Key T". With
	// none the whole API answers 404: it is off.
	Tokens []string
	Logger *slog.Logger
	// Documents, when set, is told of every override change, so the
	// environment document it renders for local evaluation follows at once.
	Documents *DocumentOverrides
	// MaxBodyBytes bounds request bodies; 0 is 1 MiB.
	MaxBodyBytes int64
}

// New returns the admin API handler. It answers paths under
// /api/v1/environments/ and 404 for anything else.
func New(opt Options) http.Handler {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = 1 << 20
	}
	return &handler{opt: opt, tokens: tokens.NewSet(opt.Tokens...)}
}

type handler struct {
	opt      Options
	tokens   tokens.Set
	catalogs catalogs
}

// routeKind names an endpoint.
type routeKind int

const (
	routeIdentities       routeKind = iota // edge-identities/
	routeIdentity                          // edge-identities/{uuid}/
	routeListTraits                        // …/list-traits/
	routeUpdateTraits                      // …/update-traits/
	routeFeatureStates                     // …/edge-featurestates/
	routeFeatureState                      // …/edge-featurestates/{featurestate_uuid}/
	routeAllFeatureStates                  // …/edge-featurestates/all/
	routeClone                             // …/edge-featurestates/clone-from-given-identity/
	routeOverrides                         // edge-identity-overrides
	routeByIdentifier                      // environments/environments/{key}/edge-identities-featurestates
)

type route struct {
	kind         routeKind
	envKey       string
	identityUUID string
	fsUUID       string
}

// methods lists what each endpoint accepts (GET implies HEAD).
var methods = map[routeKind][]string{
	routeIdentities:       {http.MethodGet, http.MethodPost},
	routeIdentity:         {http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete},
	routeListTraits:       {http.MethodGet},
	routeUpdateTraits:     {http.MethodPut},
	routeFeatureStates:    {http.MethodGet, http.MethodPost},
	routeFeatureState:     {http.MethodGet, http.MethodPut, http.MethodDelete},
	routeAllFeatureStates: {http.MethodGet},
	routeClone:            {http.MethodPost},
	routeOverrides:        {http.MethodGet},
	routeByIdentifier:     {http.MethodPut, http.MethodDelete},
}

const prefix = "/api/v1/environments/"

// parseRoute matches a path, with or without its trailing slash.
func parseRoute(path string) (route, bool) {
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return route{}, false
	}
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	if slices.Contains(segs, "") {
		return route{}, false
	}
	switch {
	case len(segs) == 3 && segs[0] == "environments" && segs[2] == "edge-identities-featurestates":
		return route{kind: routeByIdentifier, envKey: segs[1]}, true
	case len(segs) == 2 && segs[1] == "edge-identities":
		return route{kind: routeIdentities, envKey: segs[0]}, true
	case len(segs) == 2 && segs[1] == "edge-identity-overrides":
		return route{kind: routeOverrides, envKey: segs[0]}, true
	case len(segs) < 3 || segs[1] != "edge-identities":
		return route{}, false
	}
	r := route{envKey: segs[0], identityUUID: segs[2]}
	switch {
	case len(segs) == 3:
		r.kind = routeIdentity
	case len(segs) == 4 && segs[3] == "list-traits":
		r.kind = routeListTraits
	case len(segs) == 4 && segs[3] == "update-traits":
		r.kind = routeUpdateTraits
	case len(segs) == 4 && segs[3] == "edge-featurestates":
		r.kind = routeFeatureStates
	case len(segs) == 5 && segs[3] == "edge-featurestates" && segs[4] == "all":
		r.kind = routeAllFeatureStates
	case len(segs) == 5 && segs[3] == "edge-featurestates" && segs[4] == "clone-from-given-identity":
		r.kind = routeClone
	case len(segs) == 5 && segs[3] == "edge-featurestates":
		r.kind, r.fsUUID = routeFeatureState, segs[4]
	default:
		return route{}, false
	}
	return r, true
}

// call is one request with its resolved environment.
type call struct {
	h      *handler
	w      http.ResponseWriter
	r      *http.Request
	route  route
	snap   *environment.Snapshot
	env    identity.Env
	envKey string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.tokens.Empty() {
		writeJSON(w, http.StatusNotFound, detail("Not found."))
		return
	}
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		writeJSON(w, http.StatusNotFound, detail("Not found."))
		return
	}
	if err := h.authenticate(r); err != nil {
		w.Header().Set("WWW-Authenticate", "Token")
		h.fail(w, r, err)
		return
	}
	allowed := methods[rt.kind]
	if !methodAllowed(r.Method, allowed) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, detail(`Method "`+r.Method+`" not allowed.`))
		return
	}
	env := h.opt.Registry.Env(rt.envKey)
	if env == nil {
		writeJSON(w, http.StatusNotFound, detail("Environment not found."))
		return
	}
	snap := env.Snapshot()
	if snap == nil {
		writeJSON(w, http.StatusServiceUnavailable, detail("The environment document has not been loaded yet; try again."))
		return
	}
	// Identities are kept under the document's api_key, as the SDK path
	// (edge.Identifier) keeps them; it is the client key of the path.
	c := &call{h: h, w: w, r: r, route: rt, snap: snap, envKey: snap.APIKey,
		env: identity.Env{APIKey: snap.APIKey, ID: snap.EnvironmentID}}
	if err := c.dispatch(); err != nil {
		h.fail(w, r, err)
	}
}

func methodAllowed(m string, allowed []string) bool {
	for _, a := range allowed {
		if m == a || (m == http.MethodHead && a == http.MethodGet) {
			return true
		}
	}
	return false
}

func (c *call) dispatch() error {
	m := c.r.Method
	switch c.route.kind {
	case routeIdentities:
		if m == http.MethodPost {
			return c.createIdentity()
		}
		return c.listIdentities()
	case routeIdentity:
		switch m {
		case http.MethodPut, http.MethodPatch:
			return c.updateIdentity()
		case http.MethodDelete:
			return c.deleteIdentity()
		}
		return c.getIdentity()
	case routeListTraits:
		return c.listTraits()
	case routeUpdateTraits:
		return c.updateTraits()
	case routeFeatureStates:
		if m == http.MethodPost {
			return c.createFeatureState()
		}
		return c.listFeatureStates()
	case routeFeatureState:
		switch m {
		case http.MethodPut:
			return c.updateFeatureState()
		case http.MethodDelete:
			return c.deleteFeatureState()
		}
		return c.getFeatureState()
	case routeAllFeatureStates:
		return c.allFeatureStates()
	case routeClone:
		return c.cloneFeatureStates()
	case routeOverrides:
		return c.listOverrides()
	case routeByIdentifier:
		if m == http.MethodDelete {
			return c.deleteByIdentifier()
		}
		return c.putByIdentifier()
	}
	return errNotFound
}

// authenticate checks the Authorization header against the tokens, in
// constant time (tokens.Set).
func (h *handler) authenticate(r *http.Request) error {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !(strings.EqualFold(scheme, "Token") || strings.EqualFold(scheme, "Api-Key")) {
		return &apiError{code: http.StatusUnauthorized, body: detail("Authentication credentials were not provided.")}
	}
	if !h.tokens.Match(strings.TrimSpace(tok)) {
		return &apiError{code: http.StatusUnauthorized, body: detail("Invalid token.")}
	}
	return nil
}

// changed tells the document renderer that the environment's overrides
// changed.
func (c *call) changed() {
	if c.h.opt.Documents != nil {
		c.h.opt.Documents.Changed(c.envKey)
	}
}

// ---- errors and responses ----------------------------------------------------

// apiError is an answer other than success: a status and a JSON body in
// DRF's shapes ({"detail": …}, {"field": [msgs]} or a top-level list).
type apiError struct {
	code int
	body any
}

func (e *apiError) Error() string {
	b, _ := json.Marshal(e.body)
	return strconv.Itoa(e.code) + " " + string(b)
}

func detail(msg string) map[string]string { return map[string]string{"detail": msg} }

// fieldError is a 400 naming the field: {"field": ["msg"]}.
func fieldError(field, msg string) error {
	return &apiError{code: http.StatusBadRequest, body: map[string][]string{field: {msg}}}
}

// listError is a 400 with a top-level list, as core's create() raises.
func listError(msg string) error {
	return &apiError{code: http.StatusBadRequest, body: []string{msg}}
}

var (
	errNotFound  = &apiError{code: http.StatusNotFound, body: detail("Not found.")}
	errNotObject = &apiError{code: http.StatusBadRequest, body: detail("Request data must be a JSON object.")}
)

// fail writes err: an apiError as it is, a store's limit as a 400, and
// any other store failure as a 503 the client may retry.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if ae, ok := errors.AsType[*apiError](err); ok {
		writeJSON(w, ae.code, ae.body)
		return
	}
	switch {
	case errors.Is(err, identity.ErrNotFound):
		writeJSON(w, http.StatusNotFound, detail("Not found."))
		return
	case errors.Is(err, identity.ErrTooLarge):
		writeJSON(w, http.StatusBadRequest, detail("The identity would exceed the 400 KB item limit."))
		return
	case errors.Is(err, identity.ErrInvalid):
		writeJSON(w, http.StatusBadRequest, detail(err.Error()))
		return
	}
	if r.Context().Err() == nil {
		h.opt.Logger.Error("admin: identity store", "method", r.Method, "path", r.URL.Path, "error", err.Error())
	}
	writeJSON(w, http.StatusServiceUnavailable, detail("The identity store is unavailable; try again."))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		code, body = http.StatusInternalServerError, []byte(`{"detail":"A server error occurred."}`)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func (c *call) reply(code int, v any) error {
	writeJSON(c.w, code, v)
	return nil
}

func (c *call) noContent() error {
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}
