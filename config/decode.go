package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// envKind says how an environment variable's text becomes a value for a
// setting; see the package documentation.
type envKind int

const (
	envString     envKind = iota // verbatim
	envScalar                    // JSON if it parses, else the text
	envJSON                      // must be JSON
	envStringList                // JSON if it starts with "[", else the text (comma list)
)

// setter stores v (decoded JSON) at a setting. key is the canonical dotted
// path, shown the path as the user spelled it. Type faults are recorded on
// the decoder rather than returned, because a later source may override
// the value (pydantic validates only the merged result).
type setter func(v any, key, shown string)

type field struct {
	names    []string // canonical first, then aliases in preference order
	kind     envKind  // top-level fields only
	required bool
	set      setter
}

// decoder applies JSON values from successive sources onto a Config.
// Applying an object sets only the keys it has, which is pydantic-settings'
// deep_update: objects merge, everything else replaces.
type decoder struct {
	src     string // current source, for error messages
	errs    []*Error
	unknown map[string]bool
}

func newDecoder() *decoder { return &decoder{unknown: map[string]bool{}} }

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// file applies a config file. Syntax errors and a non-object top level
// fail at once: nothing else could make the file usable.
func (d *decoder) file(c *Config, path string, data []byte) error {
	d.src = path
	// Editors on Windows add a BOM; Python's json.loads would refuse it,
	// but there is no ambiguity in skipping it.
	data = bytes.TrimPrefix(data, utf8BOM)
	// Python reads the file as UTF-8 text and fails on anything else;
	// encoding/json would silently substitute U+FFFD inside keys instead.
	if !utf8.Valid(data) {
		e := &Error{Source: path, Msg: "not valid UTF-8"}
		e.Line, e.Column = position(data, int64(firstInvalidUTF8(data))+1)
		return e
	}
	v, err := decodeJSON(data)
	if err != nil {
		e := &Error{Source: path, Msg: "invalid JSON: " + err.Error(), Err: err}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			e.Line, e.Column = position(data, se.Offset)
		}
		return e
	}
	if _, ok := v.(map[string]any); !ok {
		return &Error{Source: path, Msg: "top level " + mustBe("an object", v)}
	}
	d.object(v, "", "", d.topFields(c))
	return nil
}

// env applies environment variables, matched case-insensitively by
// setting name. When a variable is set under several spellings the last
// one in env wins, as with a dict built from os.environ.
func (d *decoder) env(c *Config, env []string) error {
	type envVar struct{ name, value string }
	vars := map[string]envVar{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		vars[strings.ToLower(k)] = envVar{k, v}
	}
	for _, f := range d.topFields(c) {
		for _, n := range f.names {
			ev, ok := vars[n]
			if !ok {
				continue
			}
			d.src = "environment variable " + ev.name
			if !utf8.ValidString(ev.value) {
				return &Error{Source: d.src, Setting: f.names[0], Msg: "not valid UTF-8", key: f.names[0]}
			}
			v, err := envValue(ev.value, f.kind)
			if err != nil {
				return &Error{Source: d.src, Setting: f.names[0], Msg: "invalid JSON: " + err.Error(), Err: err, key: f.names[0]}
			}
			f.set(v, f.names[0], f.names[0])
			break
		}
	}
	return nil
}

func envValue(s string, kind envKind) (any, error) {
	switch kind {
	case envString:
		return s, nil
	case envScalar:
		if v, err := decodeJSON([]byte(s)); err == nil {
			return v, nil
		}
		return s, nil
	case envStringList:
		if !strings.HasPrefix(strings.TrimSpace(s), "[") {
			return s, nil
		}
	}
	return decodeJSON([]byte(s))
}

// decodeJSON parses exactly one JSON value, keeping numbers exact.
func decodeJSON(b []byte) (any, error) {
	// Unmarshal into RawMessage validates the whole input (including
	// trailing garbage) and reports byte offsets for syntax errors.
	var raw json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// position turns a json.SyntaxError offset (bytes read when the error was
// noticed) into a 1-based line and character column.
func position(data []byte, offset int64) (line, col int) {
	pos := int(offset) - 1
	pos = max(0, min(pos, len(data)))
	before := data[:pos]
	line = 1 + bytes.Count(before, []byte{'\n'})
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, 1 + utf8.RuneCount(before[start:])
}

func (d *decoder) topFields(c *Config) []field {
	return []field{
		{names: []string{"environment_key_pairs"}, kind: envJSON, set: d.keyPairs(&c.EnvironmentKeyPairs)},
		{names: []string{"api_url"}, kind: envString, set: d.str(&c.APIURL)},
		{names: []string{"api_poll_frequency_seconds", "api_poll_frequency"}, kind: envScalar, set: d.number(&c.APIPollFrequencySeconds)},
		{names: []string{"api_poll_timeout_seconds", "api_poll_timeout"}, kind: envScalar, set: d.number(&c.APIPollTimeoutSeconds)},
		{names: []string{"allow_origins"}, kind: envStringList, set: d.strList(&c.AllowOrigins)},
		{names: []string{"endpoint_caches"}, kind: envJSON, set: d.caches(&c.EndpointCaches)},
		{names: []string{"logging"}, kind: envJSON, set: d.logging(&c.Logging)},
		{names: []string{"server"}, kind: envJSON, set: d.server(&c.Server)},
		{names: []string{"health_check"}, kind: envJSON, set: d.healthCheck(&c.HealthCheck)},
		{names: []string{"environments"}, kind: envStringList, set: d.strList(&c.Environments)},
		{names: []string{"environment_source"}, kind: envString, set: d.str(&c.EnvironmentSource)},
		{names: []string{"snapshot_dir"}, kind: envString, set: d.str(&c.SnapshotDir)},
		{names: []string{"web_concurrency"}, kind: envScalar, set: d.integer(&c.WebConcurrency)},
		{names: []string{"forwarded_allow_ips"}, kind: envStringList, set: d.strList(&c.ForwardedAllowIPs)},
		{names: []string{"store"}, kind: envJSON, set: d.store(&c.Store)},
		{names: []string{"admin"}, kind: envJSON, set: d.admin(&c.Admin)},
		{names: []string{"api"}, kind: envJSON, set: d.api(&c.API)},
		{names: []string{"forwarding"}, kind: envJSON, set: d.forwarding(&c.Forwarding)},
		{names: []string{"analytics"}, kind: envJSON, set: d.analytics(&c.Analytics)},
		{names: []string{"proxy_key"}, kind: envString, set: d.nullableTrimmedStr(&c.ProxyKey)},
		{names: []string{"usage_flush_interval_seconds"}, kind: envScalar, set: d.number(&c.UsageFlushIntervalSeconds)},
		{names: []string{"realtime"}, kind: envJSON, set: d.realtime(&c.Realtime)},
		{names: []string{"metrics"}, kind: envJSON, set: d.metrics(&c.Metrics)},
	}
}

func (d *decoder) keyPairs(dst *[]KeyPair) setter {
	return func(v any, key, shown string) {
		list, ok := v.([]any)
		if !ok {
			d.fail(key, shown, mustBe("an array", v))
			return
		}
		d.clear(key, true) // a list replaces the previous one wholesale
		pairs := make([]KeyPair, len(list))
		for i, item := range list {
			p := &pairs[i]
			idx := "[" + strconv.Itoa(i) + "]"
			d.object(item, key+idx, shown+idx, []field{
				{names: []string{"server_side_key"}, required: true, set: d.trimmedStr(&p.ServerSideKey)},
				{names: []string{"client_side_key"}, required: true, set: d.trimmedStr(&p.ClientSideKey)},
			})
		}
		*dst = pairs
	}
}

func (d *decoder) caches(dst *EndpointCaches) setter {
	cache := func(c *EndpointCache) setter {
		return func(v any, key, shown string) {
			d.object(v, key, shown, []field{
				{names: []string{"use_cache"}, set: d.boolean(&c.UseCache)},
				{names: []string{"cache_max_size"}, set: d.integer(&c.CacheMaxSize)},
			})
		}
	}
	return func(v any, key, shown string) {
		if v == nil { // the Python field is Optional: null means defaults
			*dst = defaultCaches()
			d.clear(key, true)
			return
		}
		d.object(v, key, shown, []field{
			{names: []string{"flags"}, set: cache(&dst.Flags)},
			{names: []string{"identities"}, set: cache(&dst.Identities)},
		})
	}
}

func (d *decoder) logging(dst *Logging) setter {
	return func(v any, key, shown string) {
		d.object(v, key, shown, []field{
			{names: []string{"log_level"}, set: d.str(&dst.LogLevel)},
			{names: []string{"log_format"}, set: d.str(&dst.LogFormat)},
			{names: []string{"enable_access_log"}, set: d.boolean(&dst.EnableAccessLog)},
			{names: []string{"colours", "colors"}, set: d.boolean(&dst.Colours)},
			{names: []string{"log_event_field_name"}, set: d.str(&dst.LogEventFieldName)},
			{names: []string{"override"}, set: d.rawObject(&dst.Override)},
		})
	}
}

func (d *decoder) server(dst *Server) setter {
	return func(v any, key, shown string) {
		d.object(v, key, shown, []field{
			{names: []string{"host"}, set: d.str(&dst.Host)},
			{names: []string{"port"}, set: d.integer(&dst.Port)},
			{names: []string{"proxy_headers"}, set: d.boolean(&dst.ProxyHeaders)},
			{names: []string{"timeout_keep_alive"}, set: d.number(&dst.TimeoutKeepAlive)},
			{names: []string{"tls_cert"}, set: d.str(&dst.TLSCert)},
			{names: []string{"tls_key"}, set: d.str(&dst.TLSKey)},
			{names: []string{"max_body_bytes"}, set: d.integer64(&dst.MaxBodyBytes)},
			{names: []string{"max_header_bytes"}, set: d.integer(&dst.MaxHeaderBytes)},
			{names: []string{"read_header_timeout_seconds"}, set: d.number(&dst.ReadHeaderTimeoutSeconds)},
			{names: []string{"read_timeout_seconds"}, set: d.number(&dst.ReadTimeoutSeconds)},
			{names: []string{"write_timeout_seconds"}, set: d.number(&dst.WriteTimeoutSeconds)},
			{names: []string{"shutdown_timeout_seconds"}, set: d.number(&dst.ShutdownTimeoutSeconds)},
			{names: []string{"debug_address"}, set: d.str(&dst.DebugAddress)},
		})
	}
}

func (d *decoder) healthCheck(dst *HealthCheck) setter {
	return func(v any, key, shown string) {
		d.object(v, key, shown, []field{
			{names: []string{"environment_update_grace_period_seconds"}, set: d.nullableNumber(&dst.EnvironmentUpdateGracePeriodSeconds)},
		})
	}
}

// object applies the known fields of a JSON object and records the rest
// as unknown. Only the first present name of each field is used, as with
// pydantic's AliasChoices.
func (d *decoder) object(v any, key, shown string, fields []field) {
	m, ok := v.(map[string]any)
	if !ok {
		d.fail(key, shown, mustBe("an object", v))
		return
	}
	d.clear(key, false) // merged, so faults below still stand
	known := map[string]bool{}
	for _, f := range fields {
		found := false
		for _, n := range f.names {
			known[n] = true
			if fv, ok := m[n]; ok && !found {
				f.set(fv, join(key, f.names[0]), join(shown, n))
				found = true
			}
		}
		if !found && f.required {
			d.fail(join(key, f.names[0]), join(shown, f.names[0]), "required")
		}
	}
	for k := range m {
		if !known[k] {
			d.unknown[join(shown, k)] = true
		}
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func (d *decoder) str(dst *string) setter {
	return func(v any, key, shown string) {
		s, ok := v.(string)
		if !ok {
			d.fail(key, shown, mustBe("a string", v))
			return
		}
		*dst = s
		d.clear(key, true)
	}
}

// trimmedStr strips surrounding whitespace, which env files and YAML
// templating often leave on keys and which no key legitimately has.
func (d *decoder) trimmedStr(dst *string) setter {
	inner := d.str(dst)
	return func(v any, key, shown string) {
		inner(v, key, shown)
		*dst = strings.TrimSpace(*dst)
	}
}

func (d *decoder) boolean(dst *bool) setter {
	return func(v any, key, shown string) {
		b, ok := asBool(v)
		if !ok {
			d.fail(key, shown, mustBe("a boolean", v))
			return
		}
		*dst = b
		d.clear(key, true)
	}
}

func (d *decoder) number(dst *float64) setter {
	return func(v any, key, shown string) {
		f, ok := asFloat(v)
		if !ok {
			d.fail(key, shown, mustBe("a number", v))
			return
		}
		*dst = f
		d.clear(key, true)
	}
}

func (d *decoder) nullableNumber(dst **float64) setter {
	return func(v any, key, shown string) {
		if v == nil {
			*dst = nil
			d.clear(key, true)
			return
		}
		f, ok := asFloat(v)
		if !ok {
			d.fail(key, shown, mustBe("a number or null", v))
			return
		}
		*dst = &f
		d.clear(key, true)
	}
}

func (d *decoder) integer(dst *int) setter {
	return func(v any, key, shown string) {
		n, ok := asInt(v)
		if !ok || n < math.MinInt || n > math.MaxInt {
			d.fail(key, shown, mustBe("an integer", v))
			return
		}
		*dst = int(n)
		d.clear(key, true)
	}
}

func (d *decoder) integer64(dst *int64) setter {
	return func(v any, key, shown string) {
		n, ok := asInt(v)
		if !ok {
			d.fail(key, shown, mustBe("an integer", v))
			return
		}
		*dst = n
		d.clear(key, true)
	}
}

// strList accepts an array of strings or, like uvicorn's
// FORWARDED_ALLOW_IPS, one comma-separated string (Flagsmith's docs even
// show "allow_origins": "https://www.example.com").
func (d *decoder) strList(dst *[]string) setter {
	return func(v any, key, shown string) {
		var out []string
		switch t := v.(type) {
		case string:
			for part := range strings.SplitSeq(t, ",") {
				if part = strings.TrimSpace(part); part != "" {
					out = append(out, part)
				}
			}
		case []any:
			for i, item := range t {
				s, ok := item.(string)
				if !ok {
					idx := "[" + strconv.Itoa(i) + "]"
					d.fail(key, shown+idx, mustBe("a string", item))
					return
				}
				out = append(out, strings.TrimSpace(s))
			}
		default:
			d.fail(key, shown, mustBe("an array of strings", v))
			return
		}
		if out == nil {
			out = []string{}
		}
		*dst = out
		d.clear(key, true)
	}
}

// rawObject keeps a JSON object verbatim, deep-merging it into what an
// earlier source set, as pydantic-settings does for dict fields.
func (d *decoder) rawObject(dst *json.RawMessage) setter {
	return func(v any, key, shown string) {
		m, ok := v.(map[string]any)
		if !ok {
			d.fail(key, shown, mustBe("an object", v))
			return
		}
		if prev, err := decodeJSON(*dst); err == nil {
			if pm, ok := prev.(map[string]any); ok {
				m = deepMerge(pm, m)
			}
		}
		b, err := json.Marshal(m)
		if err != nil { // cannot happen for decoded JSON
			d.fail(key, shown, err.Error())
			return
		}
		*dst = b
		d.clear(key, true)
	}
}

func deepMerge(dst, src map[string]any) map[string]any {
	out := make(map[string]any, len(dst)+len(src))
	for k, v := range dst {
		out[k] = v
	}
	for k, v := range src {
		dm, ok1 := out[k].(map[string]any)
		sm, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = deepMerge(dm, sm)
		} else {
			out[k] = v
		}
	}
	return out
}

// asBool follows pydantic's lax bool parsing, so values that worked with
// the Python proxy ("yes", "1", 0) keep working.
func asBool(v any) (bool, bool) {
	switch t := v.(type) {
	case bool:
		return t, true
	case json.Number:
		switch f, err := t.Float64(); {
		case err == nil && f == 1:
			return true, true
		case err == nil && f == 0:
			return false, true
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "1", "on", "t", "true", "y", "yes":
			return true, true
		case "0", "off", "f", "false", "n", "no":
			return false, true
		}
	}
	return false, false
}

// asFloat accepts JSON numbers and numeric strings (pydantic lax mode),
// but never NaN or infinities, which no setting can use.
func asFloat(v any) (float64, bool) {
	var s string
	switch t := v.(type) {
	case json.Number:
		s = string(t)
	case string:
		s = strings.TrimSpace(t)
	default:
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// asInt accepts integral numbers, including 8000.0 and "8000" as pydantic
// does, and rejects fractions and out-of-range values.
func asInt(v any) (int64, bool) {
	var s string
	switch t := v.(type) {
	case json.Number:
		s = string(t)
	case string:
		s = strings.TrimSpace(t)
	default:
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, ok := asFloat(s)
	if !ok || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

func mustBe(want string, got any) string {
	return "must be " + want + ", got " + describe(got)
}

func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean " + strconv.FormatBool(t)
	case json.Number:
		return "number " + clip(string(t))
	case string:
		return "string " + strconv.Quote(clip(t))
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func clip(s string) string {
	const limit = 40
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return string([]rune(s)[:limit]) + "…"
}

func (d *decoder) fail(key, shown, msg string) {
	d.errs = append(d.errs, &Error{Source: d.src, Setting: shown, Msg: msg, key: key})
}

// clear withdraws faults a later source has overridden: the one at key,
// and with subtree also those below it (the old value is gone entirely).
func (d *decoder) clear(key string, subtree bool) {
	d.errs = slices.DeleteFunc(d.errs, func(e *Error) bool {
		if e.key == key {
			return true
		}
		return subtree && (key == "" || strings.HasPrefix(e.key, key+".") || strings.HasPrefix(e.key, key+"["))
	})
}

func (d *decoder) firstError() error {
	if len(d.errs) == 0 {
		return nil
	}
	return d.errs[0]
}

func (d *decoder) unknownKeys() []string {
	keys := make([]string, 0, len(d.unknown))
	for k := range d.unknown {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
