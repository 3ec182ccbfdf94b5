package environment

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/fledge-flags/fledge/engine"
)

// Snapshot is one compiled version of an environment document with every
// response that does not depend on the request already serialized. It is
// immutable; a new document version gives a new Snapshot.
type Snapshot struct {
	// APIKey is the environment's client-side key as the document names it.
	// The parsed Document itself is not kept: the compiled Program and the
	// prepared bodies hold all that is served, and dropping the document's
	// pointer-rich tree leaves the garbage collector less to scan.
	APIKey  string
	Program *engine.Program
	// EnvironmentID is Flagsmith's numeric environment id, as text.
	EnvironmentID string

	UpdatedAt time.Time
	// UpdatedAtHeader (X-Flagsmith-Document-Updated-At) and LastModified
	// (RFC 1123, for the document endpoint) are http.Header values, nil when
	// the document has no updated_at. Every response shares them: never
	// modify.
	UpdatedAtHeader, LastModified []string

	// Document is the document as served by /environment-document/,
	// without fields that must never leave the server (SetDocumentJSON).
	Document Body
	// SourceSum is the SHA-256 of the document bytes as received, to tell
	// an unchanged document without recompiling it.
	SourceSum [sha256.Size]byte

	features          []featureOut // by program feature index
	hideDisabled      bool
	hideSensitive     bool
	allowClientTraits bool
	persistTraits     bool
	stopServing       bool
	compositeHashing  bool
	overridesInDoc    bool
	flags             [2]Body              // by keyKind
	flagJSON          [2]map[string][]byte // ?feature=NAME, by keyKind
	results           sync.Pool
}

// GzipMinBytes is the body size from which responses are compressed, as in
// the Flagsmith edge proxy: below it gzip costs more than it saves.
const GzipMinBytes = 1000

// Body is a response body prepared once per document version, so that
// serving it costs no serialization, compression or allocation.
type Body struct {
	JSON []byte
	Gzip []byte // JSON gzip-compressed; nil when JSON is shorter than GzipMinBytes
	// JSONLength and GzipLength are the Content-Length values of JSON and
	// Gzip as http.Header values, shared by every response: never modify.
	JSONLength, GzipLength []string
}

// newBody prepares body for serving, compressing it at level (a
// compress/gzip level) when it is long enough.
func newBody(body []byte, level int) (Body, error) {
	b := Body{JSON: body, JSONLength: []string{strconv.Itoa(len(body))}}
	if len(body) < GzipMinBytes {
		return b, nil
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		return Body{}, err
	}
	if _, err := zw.Write(body); err != nil {
		return Body{}, fmt.Errorf("compressing a response body: %w", err)
	}
	if err := zw.Close(); err != nil {
		return Body{}, fmt.Errorf("compressing a response body: %w", err)
	}
	b.Gzip = buf.Bytes()
	b.GzipLength = []string{strconv.Itoa(len(b.Gzip))}
	return b, nil
}

type featureOut struct {
	head          []byte // {"feature":{"id":..,"name":..,"type":..},"enabled":
	serverKeyOnly bool
}

// KeyKind says whether a request came with a client-side or a server-side
// key; only client keys are filtered.
type KeyKind int

// Key kinds.
const (
	ClientKey KeyKind = iota
	ServerKey
)

// secretFields are stored with environments in Flagsmith but must never be
// served: they hold third-party API keys and webhook secrets.
var secretFields = []string{
	"amplitude_config", "heap_config", "mixpanel_config", "rudderstack_config", "segment_config",
	"webhook_config", "dynatrace_config", "new_relic_config", "datadog_config", "slack_config",
	"onboarding_pending", "compressed", "environment_id", "document_key", "environment_api_key",
}

// Compile parses nothing: it maps a parsed document, compiles it and
// pre-serializes its responses. warn receives the rules that cannot compile.
func Compile(doc *Document, warn func(msg string)) (*Snapshot, error) {
	ctx, err := doc.Context()
	if err != nil {
		return nil, fmt.Errorf("mapping environment %s: %w", doc.APIKey, err)
	}
	prog, err := engine.Compile(ctx)
	if err != nil {
		return nil, fmt.Errorf("compiling environment %s: %w", doc.APIKey, err)
	}
	if warn != nil {
		for _, w := range prog.Warnings() {
			warn(w)
		}
	}
	s := &Snapshot{
		APIKey:            doc.APIKey,
		Program:           prog,
		UpdatedAt:         doc.UpdatedAtTime(),
		hideDisabled:      doc.EffectiveHideDisabledFlags(),
		hideSensitive:     doc.HideSensitiveData,
		allowClientTraits: doc.AllowClientTraits == nil || *doc.AllowClientTraits,
		EnvironmentID:     doc.ID.String(),
		compositeHashing:  doc.UseIdentityCompositeKeyForHash != nil && *doc.UseIdentityCompositeKeyForHash,
		overridesInDoc:    doc.UseIdentityOverridesInLocalEval != nil && *doc.UseIdentityOverridesInLocalEval,
	}
	org := doc.Org()
	s.persistTraits = org.PersistTraitData == nil || *org.PersistTraitData
	s.stopServing = org.StopServingFlags
	if !s.UpdatedAt.IsZero() {
		s.UpdatedAtHeader = []string{UpdatedAtHeader(s.UpdatedAt)}
		s.LastModified = []string{s.UpdatedAt.Format(http1123)}
	}
	serverOnly := make(map[int64]bool, len(doc.Project.ServerKeyOnlyFeatureIDs))
	for _, id := range doc.Project.ServerKeyOnlyFeatureIDs {
		serverOnly[id] = true
	}
	types := make(map[string]FeatureRef, len(doc.FeatureStates))
	for _, fs := range doc.FeatureStates {
		types[fs.Feature.Name] = fs.Feature
	}
	s.features = make([]featureOut, prog.Features())
	for i := range s.features {
		ref := types[prog.Default(i).Name]
		typ := ref.Type
		if typ == "" {
			typ = "STANDARD"
		}
		head := []byte(`{"feature":{"id":`)
		head = strconv.AppendInt(head, ref.ID, 10)
		head = append(head, `,"name":`...)
		head = engine.AppendJSONString(head, ref.Name)
		head = append(head, `,"type":`...)
		head = engine.AppendJSONString(head, typ)
		head = append(head, `},"enabled":`...)
		s.features[i] = featureOut{head: head, serverKeyOnly: serverOnly[ref.ID]}
	}
	for kind := ClientKey; kind <= ServerKey; kind++ {
		s.flagJSON[kind] = make(map[string][]byte, len(s.features))
		body := []byte{'['}
		n := 0
		for i := range s.features {
			f := prog.Default(i)
			if !s.visible(kind, i, f.Enabled) {
				continue
			}
			start := len(body)
			if n > 0 {
				body = append(body, ',')
				start++
			}
			body = s.appendFlag(body, i, f.Enabled, f.Value)
			s.flagJSON[kind][f.Name] = body[start:len(body):len(body)]
			n++
		}
		// The flags bodies are small and compressed once per version, so
		// the best compression costs nothing that matters.
		if s.flags[kind], err = newBody(append(body, ']'), gzip.BestCompression); err != nil {
			return nil, err
		}
	}
	return s, nil
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

// SetDocumentJSON stores the bytes served by /environment-document/, with
// secret fields removed, and their gzip form.
func (s *Snapshot) SetDocumentJSON(raw []byte) error {
	clean, err := sanitize(raw)
	if err != nil {
		return err
	}
	// BestSpeed: the document is large and compressed on every new
	// version, and the swap must stay quick.
	if s.Document, err = newBody(clean, gzip.BestSpeed); err != nil {
		return err
	}
	s.SourceSum = sha256.Sum256(raw)
	return nil
}

// sanitize drops fields that must never be served. Keys are compared after
// JSON decoding, so an escaped spelling cannot slip a secret through. A
// document that has none of them keeps its bytes exactly as received.
func sanitize(raw []byte) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("sanitizing document: %w", err)
	}
	changed := false
	for _, f := range secretFields {
		if _, ok := top[f]; ok {
			delete(top, f)
			changed = true
		}
	}
	if ov, ok := top["identity_overrides"]; ok {
		var items []map[string]json.RawMessage
		if err := json.Unmarshal(ov, &items); err == nil {
			stripped := false
			for _, it := range items {
				if _, ok := it["system_traits"]; ok {
					delete(it, "system_traits")
					stripped = true
				}
			}
			if stripped {
				b, err := json.Marshal(items)
				if err != nil {
					return nil, fmt.Errorf("sanitizing identity_overrides: %w", err)
				}
				top["identity_overrides"] = b
				changed = true
			}
		}
	}
	if !changed {
		return raw, nil
	}
	return json.Marshal(top)
}

func (s *Snapshot) visible(kind KeyKind, i int, enabled bool) bool {
	if kind == ServerKey {
		return true
	}
	if s.features[i].serverKeyOnly {
		return false
	}
	return enabled || !s.hideDisabled
}

func (s *Snapshot) appendFlag(dst []byte, i int, enabled bool, value json.RawMessage) []byte {
	dst = append(dst, s.features[i].head...)
	dst = strconv.AppendBool(dst, enabled)
	dst = append(dst, `,"feature_state_value":`...)
	if value == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, value...)
	}
	return append(dst, '}')
}

// FlagsJSON is the body of GET /api/v1/flags/ for the key kind.
func (s *Snapshot) FlagsJSON(kind KeyKind) []byte { return s.flags[kind].JSON }

// Flags is the body of GET /api/v1/flags/ for the key kind, with its gzip
// form.
func (s *Snapshot) Flags(kind KeyKind) *Body { return &s.flags[kind] }

// FlagJSON is the body of GET /api/v1/flags/?feature=NAME; ok is false when
// the feature does not exist or is hidden from this key kind.
func (s *Snapshot) FlagJSON(kind KeyKind, name string) ([]byte, bool) {
	b, ok := s.flagJSON[kind][name]
	return b, ok
}

// HideSensitiveData reports whether identity responses must leave out traits.
func (s *Snapshot) HideSensitiveData() bool { return s.hideSensitive }

// PersistTraitData reports whether the organisation lets traits be stored.
func (s *Snapshot) PersistTraitData() bool { return s.persistTraits }

// StopServingFlags reports whether the organisation is barred from serving
// flags (every SDK call is refused).
func (s *Snapshot) StopServingFlags() bool { return s.stopServing }

// CompositeKeyHashing reports use_identity_composite_key_for_hashing: stored
// identities hash their composite key rather than their core id.
func (s *Snapshot) CompositeKeyHashing() bool { return s.compositeHashing }

// IdentityOverridesInLocalEval reports use_identity_overrides_in_local_eval:
// the environment document carries identity overrides.
func (s *Snapshot) IdentityOverridesInLocalEval() bool { return s.overridesInDoc }

// AllowClientTraits reports whether client keys may send traits.
func (s *Snapshot) AllowClientTraits() bool { return s.allowClientTraits }

// AppendIdentityFlags evaluates the identity and appends its flags as a JSON
// list in the shape of /identities/ responses.
func (s *Snapshot) AppendIdentityFlags(dst []byte, kind KeyKind, id *engine.Identity) []byte {
	r, _ := s.results.Get().(*engine.Result)
	if r == nil {
		r = new(engine.Result)
	}
	s.Program.Evaluate(id, r)
	dst = append(dst, '[')
	n := 0
	for i := range r.Flags {
		f := &r.Flags[i]
		enabled := f.Enabled()
		if !s.visible(kind, i, enabled) {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = s.appendFlag(dst, i, enabled, f.Value())
		n++
	}
	s.results.Put(r)
	return append(dst, ']')
}
