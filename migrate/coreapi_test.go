package migrate_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// coreAPI is a stand-in for Core's admin REST API, following migrate.md §3:
// the paths of requests 2–6b, trailing slashes, Authorization "Api-Key",
// CustomPagination (page_size ≤ 999) for features and identities and the
// default pagination (10, page_size ignored) elsewhere, a page past the end
// answering 404, "next" URLs naming another host, identities ordered by
// created_date only, and 500 for the traits of a missing identity.
type coreAPI struct {
	key       string
	projectID int64
	envs      []apiEnv
	features  []apiFeature
	mu        sync.Mutex
	idents    map[string][]*apiIdentity // by environment key
	index     map[string]map[int64]*apiIdentity
	// failEvery makes every n-th request fail (alternately 429 with
	// Retry-After: 0 and 503) before it is served.
	failEvery int64
	// flipTies reverses the order of identities sharing a created_date on
	// every other identity listing request, as PostgreSQL may under OFFSET
	// paging (migrate.md §4.1).
	flipTies     bool
	identListing atomic.Int64

	requests, failures atomic.Int64
	byPath             sync.Map // request kind → *atomic.Int64
}

type apiEnv struct {
	ID      int64  `json:"id"`
	APIKey  string `json:"api_key"`
	Name    string `json:"name"`
	Project int64  `json:"project"`
	V2      bool   `json:"use_v2_feature_versioning"`
}

type apiFeature struct {
	ID      int64       `json:"id"`
	Name    string      `json:"name"`
	Type    string      `json:"type"`
	Project int64       `json:"-"`
	Options []apiOption `json:"multivariate_options"`
}

type apiOption struct {
	ID           int64   `json:"id"`
	UUID         string  `json:"uuid"`
	Type         string  `json:"type"`
	IntegerValue *int64  `json:"integer_value"`
	StringValue  *string `json:"string_value"`
	BooleanValue *bool   `json:"boolean_value"`
	Default      float64 `json:"default_percentage_allocation"`
	Key          *string `json:"key"`
}

type apiIdentity struct {
	ID         int64
	Identifier string
	Created    string // ordering key only: the serializer omits it
	Traits     []apiTrait
	Overrides  []apiFeatureState
}

type apiTrait struct {
	ID           int64    `json:"id"`
	TraitKey     string   `json:"trait_key"`
	ValueType    *string  `json:"value_type"`
	IntegerValue *int64   `json:"integer_value"`
	StringValue  *string  `json:"string_value"`
	BooleanValue *bool    `json:"boolean_value"`
	FloatValue   *float64 `json:"float_value"`
	CreatedDate  string   `json:"created_date"`
}

type apiFeatureState struct {
	ID      int64           `json:"id"`
	UUID    string          `json:"uuid"`
	Enabled bool            `json:"enabled"`
	Feature int64           `json:"feature"`
	Value   json.RawMessage `json:"feature_state_value"`
	MV      []apiMV         `json:"multivariate_feature_state_values"`
	Live    bool            `json:"-"` // the server lists only live, non-deleted states
}

type apiMV struct {
	ID         int64   `json:"id"`
	Option     int64   `json:"multivariate_feature_option"`
	Percentage float64 `json:"percentage_allocation"`
}

func (c *coreAPI) start(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv
}

func (c *coreAPI) count(kind string) int64 {
	v, _ := c.byPath.LoadOrStore(kind, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

var (
	reEnvs     = regexp.MustCompile(`^/api/v1/environments/$`)
	reFeatures = regexp.MustCompile(`^/api/v1/projects/(\d+)/features/$`)
	reIdents   = regexp.MustCompile(`^/api/v1/environments/([^/]+)/identities/$`)
	reTraits   = regexp.MustCompile(`^/api/v1/environments/([^/]+)/identities/(\d+)/traits/$`)
	reStates   = regexp.MustCompile(`^/api/v1/environments/([^/]+)/featurestates/$`)
)

func (c *coreAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := c.requests.Add(1)
	if r.Method != http.MethodGet {
		http.Error(w, `{"detail":"Method not allowed."}`, http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("Authorization") != "Api-Key "+c.key {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": "Authentication credentials were not provided."})
		return
	}
	if c.failEvery > 0 && n%c.failEvery == 0 {
		c.failures.Add(1)
		if (n/c.failEvery)%2 == 0 {
			w.Header().Set("Retry-After", "0")
			writeJSON(w, http.StatusTooManyRequests, map[string]string{"detail": "Request was throttled."})
		} else {
			http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
		}
		return
	}
	q := r.URL.Query()
	path := r.URL.Path
	kind := ""
	switch {
	case reEnvs.MatchString(path):
		kind = "environments"
		p, err := strconv.ParseInt(q.Get("project"), 10, 64)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "Invalid or missing value for project parameter."})
			return
		}
		var out []any
		for _, e := range c.envs {
			if e.Project == p {
				out = append(out, e)
			}
		}
		c.paginate(w, r, out, false)
	case reFeatures.MatchString(path):
		kind = "features"
		p, _ := strconv.ParseInt(reFeatures.FindStringSubmatch(path)[1], 10, 64)
		var out []any
		for _, f := range c.features {
			if f.Project == p {
				out = append(out, f)
			}
		}
		c.paginate(w, r, out, true)
	case reIdents.MatchString(path):
		kind = "identities"
		env := c.env(reIdents.FindStringSubmatch(path)[1])
		if env == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
			return
		}
		c.mu.Lock()
		ids := append([]*apiIdentity(nil), c.idents[env.APIKey]...)
		c.mu.Unlock()
		desc := c.flipTies && c.identListing.Add(1)%2 == 0
		sort.Slice(ids, func(i, j int) bool {
			if ids[i].Created != ids[j].Created {
				return ids[i].Created < ids[j].Created
			}
			return (ids[i].ID < ids[j].ID) != desc
		})
		out := make([]any, len(ids))
		for i, id := range ids {
			out[i] = map[string]any{"id": id.ID, "identifier": id.Identifier, "environment": env.ID}
		}
		c.paginate(w, r, out, true)
	case reTraits.MatchString(path):
		kind = "traits"
		m := reTraits.FindStringSubmatch(path)
		id := c.identity(m[1], m[2])
		if id == nil {
			http.Error(w, "<h1>Server Error (500)</h1>", http.StatusInternalServerError)
			return
		}
		out := make([]any, len(id.Traits))
		for i, t := range id.Traits {
			out[i] = t
		}
		c.paginate(w, r, out, false)
	case reStates.MatchString(path) && q.Get("anyIdentity") != "":
		kind = "featurestates"
		env := c.env(reStates.FindStringSubmatch(path)[1])
		if env == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
			return
		}
		c.mu.Lock()
		var out []any
		for _, id := range c.idents[env.APIKey] {
			for _, fs := range id.Overrides {
				if !fs.Live {
					continue
				}
				out = append(out, map[string]any{
					"id": fs.ID, "uuid": fs.UUID, "enabled": fs.Enabled, "feature": fs.Feature,
					"environment": env.ID, "identity": map[string]any{"id": id.ID, "identifier": id.Identifier},
					"feature_segment": nil, "feature_state_value": fs.Value,
					"multivariate_feature_state_values": fs.MV, "version": 1, "live_from": "2024-01-01T00:00:00Z",
					"created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z", "deleted_at": nil,
					"change_request": nil, "environment_feature_version": nil,
				})
			}
		}
		c.mu.Unlock()
		sort.SliceStable(out, func(i, j int) bool {
			return out[i].(map[string]any)["id"].(int64) < out[j].(map[string]any)["id"].(int64)
		})
		c.paginate(w, r, out, false)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
		return
	}
	v, _ := c.byPath.LoadOrStore(kind, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (c *coreAPI) env(key string) *apiEnv {
	for i := range c.envs {
		if c.envs[i].APIKey == key {
			return &c.envs[i]
		}
	}
	return nil
}

func (c *coreAPI) identity(envKey, id string) *apiIdentity {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil
	}
	ix := c.index[envKey]
	if len(ix) != len(c.idents[envKey]) { // built lazily, rebuilt when a test edits the data
		ix = make(map[int64]*apiIdentity, len(c.idents[envKey]))
		for _, x := range c.idents[envKey] {
			ix[x.ID] = x
		}
		if c.index == nil {
			c.index = map[string]map[int64]*apiIdentity{}
		}
		c.index[envKey] = ix
	}
	return ix[n]
}

// paginate writes {"count","next","previous","results"}; custom is
// CustomPagination (page_size ≤ 999, default 999), else 10 per page.
func (c *coreAPI) paginate(w http.ResponseWriter, r *http.Request, all []any, custom bool) {
	q := r.URL.Query()
	size := 10
	if custom {
		size = 999
		if s, err := strconv.Atoi(q.Get("page_size")); err == nil && s > 0 {
			size = min(s, 999)
		}
	}
	page := 1
	if p := q.Get("page"); p != "" {
		var err error
		if page, err = strconv.Atoi(p); err != nil || page < 1 {
			writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Invalid page."})
			return
		}
	}
	start := (page - 1) * size
	if start > 0 && start >= len(all) {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Invalid page."})
		return
	}
	end := min(start+size, len(all))
	link := func(p int) any {
		u := *r.URL
		u.Scheme, u.Host = "http", "core.internal:8000" // the server's idea of its host
		qq := u.Query()
		qq.Set("page", strconv.Itoa(p))
		u.RawQuery = qq.Encode()
		return u.String()
	}
	var next, prev any
	if end < len(all) {
		next = link(page + 1)
	}
	if page > 1 {
		prev = link(page - 1)
	}
	results := all[start:end]
	if results == nil {
		results = []any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(all), "next": next, "previous": prev, "results": results})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func sp(s string) *string    { return &s }
func ip(i int64) *int64      { return &i }
func bp(b bool) *bool        { return &b }
func fp(f float64) *float64  { return &f }
func fsUUID(id int64) string { return fmt.Sprintf("f0000000-0000-4000-8000-%012d", id) }
func created(sec int) string {
	return fmt.Sprintf("2024-03-19T09:%02d:%02d.000000Z", sec/60%60, sec%60)
}
func strTrait(id int64, k, v string) apiTrait {
	return apiTrait{ID: id, TraitKey: k, ValueType: sp("unicode"), StringValue: sp(v), CreatedDate: "2024-03-19T09:41:22.5Z"}
}

// standIn builds the stand-in: project 1 with environments envV1 (v1) and
// envV2 (v2), project 2 with envOther; alice mirrors the database
// fixtures; genN more identities in envV1 with 0–24 traits each (so
// several trait pages), an override on every fifth, and pairs sharing a
// created_date.
func standIn(genN int) *coreAPI {
	c := &coreAPI{key: "org.secret", projectID: 1, idents: map[string][]*apiIdentity{}}
	c.envs = []apiEnv{
		{ID: 1, APIKey: "envV1", Name: "v1 env", Project: 1},
		{ID: 2, APIKey: "envV2", Name: "v2 env", Project: 1, V2: true},
		{ID: 4, APIKey: "envOther", Name: "other", Project: 2},
	}
	for i := int64(5); i < 25; i++ { // more than one page of environments
		c.envs = append(c.envs, apiEnv{ID: i, APIKey: "empty" + strconv.FormatInt(i, 10), Name: "empty", Project: 1})
	}
	c.features = []apiFeature{
		{ID: 1, Name: "std", Type: "STANDARD", Project: 1},
		{ID: 2, Name: "mv", Type: "MULTIVARIATE", Project: 1, Options: []apiOption{
			{ID: 1, Type: "unicode", StringValue: sp("variant-a"), Key: sp("a"), Default: 30},
			{ID: 2, Type: "unicode", StringValue: sp("variant-b"), Key: sp("b"), Default: 20},
			{ID: 3, Type: "int", IntegerValue: ip(7), Default: 10},
		}},
		{ID: 3, Name: "other", Type: "STANDARD", Project: 1},
		{ID: 4, Name: "no_value", Type: "STANDARD", Project: 1},
		{ID: 5, Name: "elsewhere", Type: "STANDARD", Project: 2},
	}
	alice := &apiIdentity{ID: 10, Identifier: "alice", Created: "2024-03-19T09:41:22Z",
		Traits: []apiTrait{
			strTrait(1, "first", "by id"),
			strTrait(2, "num_str", "007"),
			strTrait(3, "float_str", "1.50"),
			strTrait(4, "exp_str", "1e5"),
			{ID: 5, TraitKey: "int", ValueType: sp("int"), IntegerValue: ip(42), CreatedDate: "2024-03-19T09:41:22.123456Z"},
			{ID: 6, TraitKey: "bool", ValueType: sp("bool"), BooleanValue: bp(true), CreatedDate: "2024-03-20T00:00:00Z"},
			{ID: 7, TraitKey: "float", ValueType: sp("float"), FloatValue: fp(2.5), CreatedDate: "2024-03-20T00:00:00Z"},
			{ID: 8, TraitKey: "null_type", StringValue: sp("x"), CreatedDate: "2024-03-20T00:00:00Z"},
			strTrait(9, "str", "hello"),
			strTrait(10, "neg_zero", "-0"),
			strTrait(11, "plus", "+1"),
			{ID: 12, TraitKey: "whole_float", ValueType: sp("float"), FloatValue: fp(3), CreatedDate: "2024-03-20T00:00:00Z"},
			{ID: 13, TraitKey: "false", ValueType: sp("bool"), BooleanValue: bp(false), CreatedDate: "2024-03-20T00:00:00Z"},
			strTrait(14, "empty", ""),
		},
		Overrides: []apiFeatureState{
			{ID: 100, UUID: fsUUID(100), Enabled: true, Feature: 1, Value: json.RawMessage(`"123"`), Live: true},
			{ID: 102, UUID: fsUUID(102), Enabled: true, Feature: 3, Value: json.RawMessage(`"future"`)},
			{ID: 104, UUID: fsUUID(104), Enabled: false, Feature: 2, Value: json.RawMessage(`"control"`), Live: true,
				MV: []apiMV{{ID: 201, Option: 1, Percentage: 30}, {ID: 202, Option: 2, Percentage: 20}, {ID: 199, Option: 3, Percentage: 12.5}}},
			{ID: 106, UUID: fsUUID(106), Enabled: true, Feature: 4, Value: json.RawMessage(`null`), Live: true},
		}}
	long := &apiIdentity{ID: 12, Identifier: strings.Repeat("x", 1025), Created: "2024-03-19T10:00:00Z"}
	wide := &apiIdentity{ID: 13, Identifier: strings.Repeat("é", 600), Created: "2024-03-19T10:00:00Z"}
	carol := &apiIdentity{ID: 15, Identifier: "carol", Created: "2024-03-19T11:00:00Z"}
	c.idents["envV1"] = []*apiIdentity{alice, long, wide, carol}
	for i := 0; i < genN; i++ {
		id := &apiIdentity{ID: int64(1000 + i), Identifier: fmt.Sprintf("user-%04d", i), Created: created(i / 2)}
		for j := 0; j < i%25; j++ {
			id.Traits = append(id.Traits, apiTrait{ID: int64(100000 + i*100 + j), TraitKey: fmt.Sprintf("k%02d", j),
				ValueType: sp("unicode"), StringValue: sp(strconv.Itoa(i*j) + map[bool]string{true: "", false: "x"}[j%2 == 0]),
				CreatedDate: created(i)})
		}
		if i%5 == 0 {
			id.Overrides = []apiFeatureState{{ID: int64(5000 + i), UUID: fsUUID(int64(5000 + i)), Enabled: i%2 == 0,
				Feature: 1, Value: json.RawMessage(strconv.Itoa(i)), Live: true}}
		}
		c.idents["envV1"] = append(c.idents["envV1"], id)
	}
	c.idents["envV2"] = []*apiIdentity{
		{ID: 20, Identifier: "dave", Created: "2024-01-02T03:04:05Z", Overrides: []apiFeatureState{
			{ID: 120, UUID: fsUUID(120), Enabled: true, Feature: 1, Value: json.RawMessage(`true`), Live: true}}},
		{ID: 21, Identifier: "alice", Created: "2024-01-02T03:04:05Z", Traits: []apiTrait{
			{ID: 40, TraitKey: "plan", ValueType: sp("unicode"), StringValue: sp("gold"), CreatedDate: "2024-01-02T03:04:05Z"}}},
	}
	c.idents["envOther"] = []*apiIdentity{{ID: 30, Identifier: "eve", Created: "2024-01-02T03:04:05Z"}}
	return c
}
