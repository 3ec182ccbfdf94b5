package admin

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"

	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/identity"
)

// catalog is what the admin API needs of an environment document beyond
// the compiled program: each feature's id, name and type, its variants'
// option ids, and the variant allocations of segment overrides. It is
// built once per snapshot.
type catalog struct {
	byName map[string]*featureInfo
	byID   map[int64]*featureInfo
	// segmentMV is the allocations of segment overrides, by segment id (as
	// the program's Segment.Key) and feature name.
	segmentMV map[segmentFeature][]mvOut
}

type segmentFeature struct{ segment, feature string }

type featureInfo struct {
	ref identity.FeatureRef
	// mv is the environment default's allocations.
	mv []mvOut
	// options are the feature's variant options by id.
	options map[int64]option
}

type option struct {
	value json.RawMessage
	key   *string
}

// mvOut is a variant allocation as the admin API serves it.
type mvOut struct {
	Option     *int64      `json:"multivariate_feature_option"`
	Allocation json.Number `json:"percentage_allocation"`
}

// catalogs caches one catalog per environment for its current snapshot.
type catalogs struct{ m sync.Map } // client key → *catalogEntry

type catalogEntry struct {
	snap *environment.Snapshot
	cat  *catalog
}

func (cs *catalogs) get(envKey string, snap *environment.Snapshot) *catalog {
	if e, ok := cs.m.Load(envKey); ok && e.(*catalogEntry).snap == snap {
		return e.(*catalogEntry).cat
	}
	cat := buildCatalog(snap)
	cs.m.Store(envKey, &catalogEntry{snap: snap, cat: cat})
	return cat
}

// buildCatalog reads the snapshot's document; without one (a snapshot
// compiled without its JSON) it falls back to the program's features,
// which carry ids but no types or option ids.
func buildCatalog(snap *environment.Snapshot) *catalog {
	cat := &catalog{byName: map[string]*featureInfo{}, byID: map[int64]*featureInfo{}, segmentMV: map[segmentFeature][]mvOut{}}
	add := func(fi *featureInfo) {
		if _, dup := cat.byName[fi.ref.Name]; dup {
			return
		}
		cat.byName[fi.ref.Name] = fi
		cat.byID[fi.ref.ID] = fi
	}
	if doc, err := environment.Parse(snap.Document.JSON); err == nil {
		for i := range doc.FeatureStates {
			fs := &doc.FeatureStates[i]
			fi := &featureInfo{ref: identity.FeatureRef{ID: fs.Feature.ID, Name: fs.Feature.Name, Type: fs.Feature.Type}, options: map[int64]option{}}
			if fi.ref.Type == "" {
				fi.ref.Type = "STANDARD"
			}
			fi.mv = mvOf(fs)
			for _, mv := range fs.MultivariateFeatureStateValues {
				if id, ok := intNumber(mv.MultivariateFeatureOption.ID); ok {
					fi.options[id] = option{value: mv.MultivariateFeatureOption.Value, key: mv.MultivariateFeatureOption.Key}
				}
			}
			add(fi)
		}
		for _, s := range doc.Project.Segments {
			for i := range s.FeatureStates {
				fs := &s.FeatureStates[i]
				cat.segmentMV[segmentFeature{segmentKey(s.ID), fs.Feature.Name}] = mvOf(fs)
			}
		}
		return cat
	}
	p := snap.Program
	for i := range p.Features() {
		f := p.Default(i)
		var meta struct {
			ID int64 `json:"id"`
		}
		_ = json.Unmarshal(f.Metadata, &meta)
		typ := "STANDARD"
		if len(f.Variants) > 0 {
			typ = "MULTIVARIATE"
		}
		add(&featureInfo{ref: identity.FeatureRef{ID: meta.ID, Name: f.Name, Type: typ}, mv: []mvOut{}, options: map[int64]option{}})
	}
	return cat
}

// segmentKey is a segment id as the program's Segment.Key spells it.
func segmentKey(id json.Number) string {
	if i, err := strconv.ParseInt(id.String(), 10, 64); err == nil {
		return strconv.FormatInt(i, 10)
	}
	return id.String()
}

func intNumber(n *json.Number) (int64, bool) {
	if n == nil {
		return 0, false
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	return i, err == nil
}

func mvOf(fs *environment.FeatureState) []mvOut {
	out := make([]mvOut, 0, len(fs.MultivariateFeatureStateValues))
	for _, mv := range fs.MultivariateFeatureStateValues {
		o := mvOut{Allocation: mv.PercentageAllocation}
		if id, ok := intNumber(mv.MultivariateFeatureOption.ID); ok {
			o.Option = &id
		}
		out = append(out, o)
	}
	return out
}

// storedMV reads an override's stored multivariate_feature_state_values,
// whose option is an object with an id (Flagsmith's items) or an id.
func storedMV(raw json.RawMessage) []mvOut {
	out := []mvOut{}
	if len(raw) == 0 {
		return out
	}
	var items []struct {
		Option     json.RawMessage `json:"multivariate_feature_option"`
		Allocation json.Number     `json:"percentage_allocation"`
	}
	if json.Unmarshal(raw, &items) != nil {
		return out
	}
	for _, it := range items {
		o := mvOut{Allocation: it.Allocation}
		if o.Allocation == "" {
			o.Allocation = "0"
		}
		if id, ok := optionID(it.Option); ok {
			o.Option = &id
		}
		out = append(out, o)
	}
	return out
}

// optionID reads a multivariate_feature_option: an id, or {"id": …}.
func optionID(raw json.RawMessage) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var o struct {
			ID json.Number `json:"id"`
		}
		if json.Unmarshal(raw, &o) != nil {
			return 0, false
		}
		raw = json.RawMessage(o.ID)
	}
	i, err := strconv.ParseInt(string(raw), 10, 64)
	return i, err == nil
}

// normalizeMV rewrites stored allocations into Flagsmith's item form,
// {"id","multivariate_feature_option":{"id","value"},"mv_fs_value_uuid",
// "percentage_allocation"}, which is what SDKs decode from a document (an
// option given as a bare id would break the Go SDK's decoding). Values
// come from the feature's options when known.
func normalizeMV(raw json.RawMessage, fi *featureInfo) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var items []map[string]json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	changed := false
	for _, it := range items {
		opt := bytes.TrimSpace(it["multivariate_feature_option"])
		if len(opt) > 0 && opt[0] == '{' {
			continue
		}
		changed = true
		id, ok := optionID(opt)
		if !ok {
			it["multivariate_feature_option"] = json.RawMessage(`{"id":null,"value":null}`)
			continue
		}
		value := json.RawMessage("null")
		if fi != nil {
			if o, ok := fi.options[id]; ok && o.value != nil {
				value = o.value
			}
		}
		b, _ := json.Marshal(map[string]any{"id": id, "value": value})
		it["multivariate_feature_option"] = b
	}
	if !changed {
		return raw
	}
	b, err := json.Marshal(items)
	if err != nil {
		return nil
	}
	return b
}
