package fakeapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// cursorPrefix mimics the Edge API's page_id, the document_key of the last
// emitted environments_v2 override item (api.md §2.5), so that cursors contain
// characters that need query escaping, as real ones do.
const cursorPrefix = "identity_override:"

// document is a registered environment document, parsed once in SetDocument
// and immutable afterwards so handlers can use it without holding locks.
type document struct {
	raw []byte

	// updatedAt is the document's updated_at; zero when it is missing or not
	// RFC 3339, in which case no Last-Modified is sent and every GET is a 200.
	updatedAt time.Time

	// fields holds the top-level members other than identity_overrides; nil
	// when the document is not a JSON object.
	fields map[string]json.RawMessage
	// overrides holds identity_overrides entries; paged is false when that
	// member is missing or not an array, so the document cannot be split.
	overrides   []json.RawMessage
	identifiers []string
	paged       bool

	// apiKey is the environment's client-side key and features the names
	// in feature_states, for the analytics endpoint.
	apiKey   string
	features map[string]bool
}

func parseDocument(raw []byte) *document {
	d := &document{raw: raw}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || fields == nil {
		return d
	}
	d.fields = fields
	_ = json.Unmarshal(fields["api_key"], &d.apiKey)
	var states []struct {
		Feature struct {
			Name string `json:"name"`
		} `json:"feature"`
	}
	_ = json.Unmarshal(fields["feature_states"], &states) // not a list: no features
	d.features = make(map[string]bool, len(states))
	for _, fs := range states {
		d.features[fs.Feature.Name] = true
	}
	var updated string
	if json.Unmarshal(fields["updated_at"], &updated) == nil {
		if t, err := time.Parse(time.RFC3339Nano, updated); err == nil {
			d.updatedAt = t
		}
	}
	if json.Unmarshal(fields["identity_overrides"], &d.overrides) == nil && d.overrides != nil {
		d.paged = true
		d.identifiers = make([]string, len(d.overrides))
		for i, o := range d.overrides {
			var id struct {
				Identifier string `json:"identifier"`
			}
			_ = json.Unmarshal(o, &id) // a malformed entry is still served, just named ""
			d.identifiers[i] = id.Identifier
		}
	}
	delete(d.fields, "identity_overrides")
	return d
}

// lastModified is updated_at at HTTP-date (whole second) precision.
func (d *document) lastModified() string {
	return d.updatedAt.UTC().Format(http.TimeFormat)
}

// updatedAtHeader formats X-Flagsmith-Document-Updated-At from integers, since
// a float64 cannot hold a current epoch with all six decimals exactly.
func (d *document) updatedAtHeader() string {
	us := d.updatedAt.UnixMicro()
	return fmt.Sprintf("%d.%06d", us/1_000_000, us%1_000_000)
}

// notModified applies core's rule: If-Modified-Since ≥ updated_at truncated to
// whole seconds. An absent or malformed date never matches, as in Django.
func (d *document) notModified(ims string) bool {
	if ims == "" || d.updatedAt.IsZero() {
		return false
	}
	t, err := http.ParseTime(ims)
	if err != nil {
		return false
	}
	return !t.Before(d.updatedAt.Truncate(time.Second))
}

func cursorFor(index int, identifier string) string {
	return cursorPrefix + strconv.Itoa(index) + ":" + identifier
}

// resolve maps a page_id back to the index of the override it names. The
// identifier is checked too, so a cursor from before SetDocument replaced the
// overrides is reported as unknown rather than silently skipping entries.
func (d *document) resolve(cursor string) (int, bool) {
	rest, ok := strings.CutPrefix(cursor, cursorPrefix)
	if !ok {
		return 0, false
	}
	num, identifier, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(num)
	if err != nil || i < 0 || i >= len(d.identifiers) || d.identifiers[i] != identifier {
		return 0, false
	}
	return i, true
}

// page returns the body of one page and the cursor of the next page ("" on the
// last one). cursor is nil for page 1. size ≤ 0 means no limit. ok is false
// for an unknown cursor.
func (d *document) page(size int, cursor *string) (body []byte, next string, ok bool) {
	start := 0
	if cursor != nil {
		i, ok := d.resolve(*cursor)
		if !ok {
			return nil, "", false
		}
		start = i + 1
	}
	if !d.paged {
		return d.raw, "", true
	}
	end := len(d.overrides)
	if size > 0 && start+size < end {
		end = start + size
		next = cursorFor(end-1, d.identifiers[end-1])
	}
	if start == 0 && next == "" {
		// Nothing to split: serve the registered bytes verbatim.
		return d.raw, "", true
	}
	var list bytes.Buffer
	list.WriteByte('[')
	for i, o := range d.overrides[start:end] {
		if i > 0 {
			list.WriteByte(',')
		}
		list.Write(o)
	}
	list.WriteByte(']')
	return d.encode(list.Bytes()), next, true
}

// encode rebuilds the document with the given identity_overrides value.
func (d *document) encode(overrides json.RawMessage) []byte {
	m := make(map[string]json.RawMessage, len(d.fields)+1)
	for k, v := range d.fields {
		m[k] = v
	}
	m["identity_overrides"] = overrides
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep string values byte-for-byte as registered
	if err := enc.Encode(m); err != nil {
		panic("fakeapi: re-encoding a parsed document: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// hugePrefix is the document up to and including `"identity_overrides":[`.
func (d *document) hugePrefix() []byte {
	fields := d.fields
	if fields == nil {
		fields = fallbackDocument.fields
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(fields); err != nil {
		panic("fakeapi: re-encoding a parsed document: " + err.Error())
	}
	b := bytes.TrimSuffix(bytes.TrimSpace(buf.Bytes()), []byte("}"))
	if len(fields) > 0 {
		b = append(b, ',')
	}
	return append(b, `"identity_overrides":[`...)
}

// writeHuge streams a valid JSON document of exactly size bytes (unless the
// document's own fields are already larger) whose identity_overrides are
// filler entries. It is generated on the fly so that a 50 MB body costs the
// test process no 50 MB allocation.
func writeHuge(w io.Writer, prefix []byte, size int) error {
	const (
		suffix     = "]}"
		finalOpen  = `{"identifier":"huge-pad-`
		finalClose = `","identity_features":[]}`
		finalBase  = len(finalOpen) + len(finalClose)
	)
	elem := []byte(`{"identifier":"huge-00000000","identity_features":[]}`)
	digits := bytes.IndexByte(elem, '0')

	if _, err := w.Write(prefix); err != nil {
		return err
	}
	rem := size - len(prefix) - len(suffix)
	n := 0
	for ; ; n++ {
		sep := min(n, 1)
		if rem-sep-len(elem) < 1+finalBase {
			break
		}
		s := strconv.Itoa(n % 100_000_000)
		copy(elem[digits:digits+8], "00000000"[len(s):]+s)
		if sep == 1 {
			if _, err := io.WriteString(w, ","); err != nil {
				return err
			}
		}
		if _, err := w.Write(elem); err != nil {
			return err
		}
		rem -= sep + len(elem)
	}
	sep := min(n, 1)
	pad := max(rem-sep-finalBase, 0)
	if _, err := io.WriteString(w, ","[:sep]+finalOpen); err != nil {
		return err
	}
	filler := bytes.Repeat([]byte("x"), 4096)
	for pad > 0 {
		k := min(pad, len(filler))
		if _, err := w.Write(filler[:k]); err != nil {
			return err
		}
		pad -= k
	}
	_, err := io.WriteString(w, finalClose+suffix)
	return err
}

// fallbackDocument is served by faults that need a document-looking body when
// the request's key has none registered (faults apply before authentication).
var fallbackDocument = parseDocument([]byte(`{"id":1,"api_key":"fakeapiClientKey000000","name":"fakeapi",` +
	`"updated_at":"2025-01-01T00:00:00+00:00","allow_client_traits":true,"hide_sensitive_data":false,` +
	`"hide_disabled_flags":null,"use_identity_composite_key_for_hashing":true,` +
	`"use_identity_overrides_in_local_eval":true,"project":{"id":1,"name":"fakeapi","hide_disabled_flags":false,` +
	`"enable_realtime_updates":false,"server_key_only_feature_ids":[],"organisation":{"id":1,"name":"fakeapi",` +
	`"feature_analytics":false,"stop_serving_flags":false,"persist_trait_data":true},"segments":[]},` +
	`"feature_states":[],"identity_overrides":[]}`))
