package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// maxValueChars is the SaaS default limit on a string feature_state_value.
const maxValueChars = 20000

// overrideOut is an identity override as the admin API serves it.
type overrideOut struct {
	FeatureStateValue json.RawMessage `json:"feature_state_value"`
	Feature           int64           `json:"feature"`
	MV                []mvOut         `json:"multivariate_feature_state_values"`
	Enabled           bool            `json:"enabled"`
	FeatureStateUUID  string          `json:"featurestate_uuid"`
	IdentityUUID      string          `json:"identity_uuid,omitempty"`
}

func outOverride(o identity.Override, identityUUID string) overrideOut {
	return overrideOut{
		FeatureStateValue: o.Value, Feature: o.Feature.ID, MV: storedMV(o.MultivariateValues),
		Enabled: o.Enabled, FeatureStateUUID: o.FeatureStateUUID, IdentityUUID: identityUUID,
	}
}

// overrideInput is a decoded override body.
type overrideInput struct {
	feature *featureInfo // nil: not given
	enabled bool
	value   json.RawMessage // nil: null
	mv      json.RawMessage // Flagsmith's item form; nil: none
}

func (in *overrideInput) apply(o *identity.Override) {
	o.Feature = in.feature.ref
	o.Enabled, o.Value, o.MultivariateValues = in.enabled, in.value, in.mv
}

// overrideBody decodes an override body: {"feature": id or name, "enabled",
// "feature_state_value", "multivariate_feature_state_values"}. An omitted
// value is null and omitted allocations are none (a PUT replaces).
func (c *call) overrideBody(f fields, requireFeature bool) (overrideInput, error) {
	var in overrideInput
	cat := c.h.catalogs.get(c.envKey, c.snap)
	if raw, ok := f.get("feature"); ok {
		fi, err := resolveFeature(cat, raw)
		if err != nil {
			return in, err
		}
		in.feature = fi
	} else if requireFeature {
		return in, fieldError("feature", "This field is required.")
	}
	var err error
	if in.enabled, err = f.optionalBool("enabled"); err != nil {
		return in, err
	}
	if raw, ok := f.get("feature_state_value"); ok {
		if in.value, err = featureValue(raw); err != nil {
			return in, err
		}
	}
	if raw, ok := f.get("multivariate_feature_state_values"); ok {
		fi := in.feature
		if in.mv, err = allocations(raw, fi); err != nil {
			return in, err
		}
	}
	return in, nil
}

// resolveFeature finds a feature of the environment's document by id (a
// number) or name (a string; a numeric string that names no feature is
// tried as an id).
func resolveFeature(cat *catalog, raw json.RawMessage) (*featureInfo, error) {
	var name string
	switch {
	case raw[0] == '"':
		if json.Unmarshal(raw, &name) != nil {
			return nil, fieldError("feature", "Expected a feature id or name.")
		}
		if fi, ok := cat.byName[name]; ok {
			return fi, nil
		}
		if id, err := strconv.ParseInt(name, 10, 64); err == nil {
			if fi, ok := cat.byID[id]; ok {
				return fi, nil
			}
		}
		return nil, fieldError("feature", fmt.Sprintf("Feature %q does not exist in this environment.", name))
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		id, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, fieldError("feature", "Expected a feature id or name.")
		}
		if fi, ok := cat.byID[id]; ok {
			return fi, nil
		}
		return nil, fieldError("feature", fmt.Sprintf("Feature %d does not exist in this environment.", id))
	}
	return nil, fieldError("feature", "Expected a feature id or name.")
}

// featureValue checks a feature_state_value: a string, an integer or a
// boolean, as Flagsmith types feature values.
func featureValue(raw json.RawMessage) (json.RawMessage, error) {
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, fieldError("feature_state_value", "Not a valid string.")
		}
		if utf8.RuneCountInString(s) > maxValueChars {
			return nil, fieldError("feature_state_value", "Ensure this field has no more than "+strconv.Itoa(maxValueChars)+" characters.")
		}
		return engine.AppendJSONString(nil, s), nil
	case 't', 'f':
		return raw, nil
	}
	if _, ok := new(big.Int).SetString(string(raw), 10); ok {
		return raw, nil
	}
	return nil, fieldError("feature_state_value", "Must be a string, an integer, a boolean or null.")
}

// allocations checks multivariate_feature_state_values against the
// feature's options and returns them in Flagsmith's item form.
func allocations(raw json.RawMessage, fi *featureInfo) (json.RawMessage, error) {
	const field = "multivariate_feature_state_values"
	var items []map[string]json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, fieldError(field, "Expected a list of {multivariate_feature_option, percentage_allocation} objects.")
	}
	if len(items) == 0 {
		return nil, nil
	}
	if fi == nil {
		return nil, fieldError("feature", "This field is required with multivariate_feature_state_values.")
	}
	type stored struct {
		ID         *int64          `json:"id"`
		Option     map[string]any  `json:"multivariate_feature_option"`
		UUID       string          `json:"mv_fs_value_uuid"`
		Allocation json.RawMessage `json:"percentage_allocation"`
	}
	out := make([]stored, 0, len(items))
	seen := map[int64]bool{}
	total := 0.0
	for i, it := range items {
		at := fmt.Sprintf("%s[%d]", field, i)
		if it == nil {
			return nil, fieldError(field, at+": expected an object.")
		}
		optRaw, ok := it["multivariate_feature_option"]
		id, idOK := optionID(optRaw)
		if !ok || !idOK {
			return nil, fieldError(field, at+".multivariate_feature_option: expected an option id.")
		}
		opt, ok := fi.options[id]
		if !ok {
			return nil, fieldError(field, fmt.Sprintf("%s.multivariate_feature_option: %d is not an option of feature %q.", at, id, fi.ref.Name))
		}
		if seen[id] {
			return nil, fieldError(field, fmt.Sprintf("%s.multivariate_feature_option: option %d appears twice.", at, id))
		}
		seen[id] = true
		pa := bytes.TrimSpace(it["percentage_allocation"])
		p, err := strconv.ParseFloat(string(pa), 64)
		if len(pa) == 0 || pa[0] == '"' || err != nil || p < 0 || p > 100 {
			return nil, fieldError(field, at+".percentage_allocation: expected a number from 0 to 100.")
		}
		total += p
		o := map[string]any{"id": id, "value": json.RawMessage("null")}
		if opt.value != nil {
			o["value"] = opt.value
		}
		if opt.key != nil {
			o["key"] = *opt.key
		}
		out = append(out, stored{Option: o, UUID: identity.NewUUID(), Allocation: pa})
	}
	if total > 100+1e-9 {
		return nil, fieldError(field, "The total percentage allocation must not exceed 100.")
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encoding allocations: %w", err)
	}
	return b, nil
}

// ---- edge-featurestates/ ---------------------------------------------------------

// featureFilter reads ?feature=<id> (0: absent).
func (c *call) featureFilter() (int64, error) {
	v := strings.TrimSpace(c.r.URL.Query().Get("feature"))
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fieldError("feature", "A valid integer is required.")
	}
	return id, nil
}

func (c *call) listFeatureStates() error {
	fid, err := c.featureFilter()
	if err != nil {
		return err
	}
	id, err := c.lookup(c.route.identityUUID)
	if err != nil {
		return err
	}
	out := []overrideOut{}
	for _, o := range id.Overrides {
		if fid == 0 || o.Feature.ID == fid {
			out = append(out, outOverride(o, id.UUID))
		}
	}
	return c.reply(http.StatusOK, out)
}

func (c *call) createFeatureState() error {
	f, err := c.object()
	if err != nil {
		return err
	}
	in, err := c.overrideBody(f, true)
	if err != nil {
		return err
	}
	var created identity.Override
	if _, err := c.update(c.route.identityUUID, func(cur *identity.Identity) (*identity.Identity, error) {
		if slices.ContainsFunc(cur.Overrides, func(o identity.Override) bool { return o.Feature.ID == in.feature.ref.ID }) {
			return nil, listError("Feature state already exists.")
		}
		created = identity.Override{FeatureStateUUID: identity.NewUUID()}
		in.apply(&created)
		cur.Overrides = append(cur.Overrides, created)
		return cur, nil
	}); err != nil {
		return err
	}
	c.changed()
	return c.reply(http.StatusCreated, outOverride(created, c.route.identityUUID))
}

func (c *call) getFeatureState() error {
	id, err := c.lookup(c.route.identityUUID)
	if err != nil {
		return err
	}
	for _, o := range id.Overrides {
		if o.FeatureStateUUID == c.route.fsUUID {
			return c.reply(http.StatusOK, outOverride(o, id.UUID))
		}
	}
	return errNotFound
}

// updateFeatureState: PUT replaces the override's state; its feature may
// be given again but not changed.
func (c *call) updateFeatureState() error {
	f, err := c.object()
	if err != nil {
		return err
	}
	in, err := c.overrideBody(f, false)
	if err != nil {
		return err
	}
	var updated identity.Override
	if _, err := c.update(c.route.identityUUID, func(cur *identity.Identity) (*identity.Identity, error) {
		i := slices.IndexFunc(cur.Overrides, func(o identity.Override) bool { return o.FeatureStateUUID == c.route.fsUUID })
		if i < 0 {
			return nil, errNotFound
		}
		o := &cur.Overrides[i]
		if in.feature != nil && in.feature.ref.ID != o.Feature.ID {
			return nil, fieldError("feature", "The feature of an existing feature state cannot be changed.")
		}
		if in.feature == nil {
			// Keep the feature, refreshed from the document (a renamed
			// feature must still match by name in evaluation).
			in.feature = &featureInfo{ref: o.Feature}
			if fi, ok := c.h.catalogs.get(c.envKey, c.snap).byID[o.Feature.ID]; ok {
				in.feature = fi
			}
		}
		in.apply(o)
		updated = *o
		return cur, nil
	}); err != nil {
		return err
	}
	c.changed()
	return c.reply(http.StatusOK, outOverride(updated, c.route.identityUUID))
}

func (c *call) deleteFeatureState() error {
	if _, err := c.update(c.route.identityUUID, func(cur *identity.Identity) (*identity.Identity, error) {
		i := slices.IndexFunc(cur.Overrides, func(o identity.Override) bool { return o.FeatureStateUUID == c.route.fsUUID })
		if i < 0 {
			return nil, errNotFound
		}
		cur.Overrides = slices.Delete(cur.Overrides, i, i+1)
		return cur, nil
	}); err != nil {
		return err
	}
	c.changed()
	return c.noContent()
}

// ---- all/ and clone --------------------------------------------------------------

type flagOut struct {
	Feature           identity.FeatureRef `json:"feature"`
	Enabled           bool                `json:"enabled"`
	FeatureStateValue json.RawMessage     `json:"feature_state_value"`
	OverriddenBy      *string             `json:"overridden_by"`
	Segment           *segmentOut         `json:"segment"`
	MV                []mvOut             `json:"multivariate_feature_state_values"`
}

type segmentOut struct {
	ID   json.RawMessage `json:"id"`
	Name string          `json:"name"`
}

var (
	byIdentity = "IDENTITY"
	bySegment  = "SEGMENT"
)

// evalIdentity is what the SDK path evaluates for a stored identity
// (edge.Identifier): stored traits with system traits winning, the
// identity's own overrides, and the hash key rule (a migrated identity's
// core id unless the environment hashes composite keys).
func evalIdentity(hashComposite bool, id *identity.Identity) *engine.Identity {
	out := &engine.Identity{Identifier: id.Identifier}
	for _, t := range id.Traits {
		out.Traits = append(out.Traits, engine.Trait{Name: t.Key, Value: t.Value})
	}
	for _, st := range id.SystemTraits {
		if i := slices.IndexFunc(out.Traits, func(t engine.Trait) bool { return t.Name == st.Key }); i >= 0 {
			out.Traits[i].Value = st.Value
		} else {
			out.Traits = append(out.Traits, engine.Trait{Name: st.Key, Value: st.Value})
		}
	}
	for _, o := range id.Overrides {
		out.Overrides = append(out.Overrides, engine.IdentityOverride{Feature: o.Feature.Name, Enabled: o.Enabled, Value: o.Value})
	}
	if !hashComposite && id.DjangoID != nil {
		out.Key = strconv.FormatInt(*id.DjangoID, 10)
	}
	return out
}

// flags evaluates every feature for the identity, as all/ serves them.
func (c *call) flags(id *identity.Identity) []flagOut {
	p := c.snap.Program
	cat := c.h.catalogs.get(c.envKey, c.snap)
	var r engine.Result
	p.Evaluate(evalIdentity(c.snap.CompositeKeyHashing(), id), &r)
	out := make([]flagOut, 0, len(r.Flags))
	for i := range r.Flags {
		fl := &r.Flags[i]
		fo := flagOut{Enabled: fl.Enabled(), FeatureStateValue: fl.Value(), MV: []mvOut{}}
		if fi, ok := cat.byName[fl.Name()]; ok {
			fo.Feature, fo.MV = fi.ref, fi.mv
		} else {
			fo.Feature = identity.FeatureRef{Name: fl.Name(), Type: "STANDARD"}
		}
		switch {
		case fl.IdentityOverride():
			fo.OverriddenBy = &byIdentity
			if j := slices.IndexFunc(id.Overrides, func(o identity.Override) bool { return o.Feature.Name == fl.Name() }); j >= 0 {
				fo.MV = storedMV(id.Overrides[j].MultivariateValues)
			}
		case fl.Feature() != fl.Default():
			seg := winningSegment(p, &r, fl)
			if seg == nil || bytes.Contains(seg.Metadata, []byte(`"source":"identity_overrides"`)) {
				// An override from the document's identity_overrides.
				fo.OverriddenBy, fo.MV = &byIdentity, []mvOut{}
				break
			}
			fo.OverriddenBy = &bySegment
			fo.Segment = &segmentOut{ID: segmentID(seg.Key), Name: seg.Name}
			fo.MV = cat.segmentMV[segmentFeature{seg.Key, fl.Name()}]
			if fo.MV == nil {
				fo.MV = []mvOut{}
			}
		}
		out = append(out, fo)
	}
	return out
}

// winningSegment finds the matched segment whose override the flag took.
func winningSegment(p *engine.Program, r *engine.Result, fl *engine.Flag) *engine.Segment {
	src := fl.Feature()
	for _, si := range r.Segments {
		s := p.Segment(si)
		for j := range s.Overrides {
			if &s.Overrides[j] == src {
				return s
			}
		}
	}
	return nil
}

func segmentID(key string) json.RawMessage {
	if _, err := strconv.ParseInt(key, 10, 64); err == nil {
		return json.RawMessage(key)
	}
	return engine.AppendJSONString(nil, key)
}

func (c *call) allFeatureStates() error {
	id, err := c.lookup(c.route.identityUUID)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, c.flags(id))
}

// cloneFeatureStates replaces the identity's overrides with copies of the
// source identity's (new featurestate_uuids), answering as all/ does.
func (c *call) cloneFeatureStates() error {
	f, err := c.object()
	if err != nil {
		return err
	}
	srcUUID, err := f.requiredString("source_identity_uuid")
	if err != nil {
		return err
	}
	src, err := c.h.opt.Store.GetByUUID(c.r.Context(), srcUUID)
	switch {
	case errors.Is(err, identity.ErrNotFound):
		return fieldError("source_identity_uuid", "No identity with this identity_uuid.")
	case err != nil:
		return fmt.Errorf("reading source identity %s: %w", srcUUID, err)
	case src.EnvironmentAPIKey != c.envKey:
		return &apiError{code: http.StatusForbidden, body: detail("Source identity does not belong to this environment.")}
	}
	id, err := c.update(c.route.identityUUID, func(cur *identity.Identity) (*identity.Identity, error) {
		cur.Overrides = make([]identity.Override, 0, len(src.Overrides))
		for _, o := range src.Clone().Overrides {
			o.FeatureStateUUID, o.DjangoID = identity.NewUUID(), nil
			cur.Overrides = append(cur.Overrides, o)
		}
		return cur, nil
	})
	if err != nil {
		return err
	}
	c.changed()
	return c.reply(http.StatusOK, c.flags(id))
}

// ---- edge-identity-overrides ------------------------------------------------------

type overrideItemOut struct {
	Identifier   string      `json:"identifier"`
	IdentityUUID string      `json:"identity_uuid"`
	FeatureState overrideOut `json:"feature_state"`
}

func (c *call) listOverrides() error {
	fid, err := c.featureFilter()
	if err != nil {
		return err
	}
	items, err := c.h.opt.Store.Overrides(c.r.Context(), c.env, fid)
	if err != nil {
		return fmt.Errorf("listing overrides: %w", err)
	}
	out := struct {
		Results []overrideItemOut `json:"results"`
	}{Results: make([]overrideItemOut, 0, len(items))}
	for _, it := range items {
		out.Results = append(out.Results, overrideItemOut{Identifier: it.Identifier, IdentityUUID: it.IdentityUUID,
			FeatureState: outOverride(it.Override, "")})
	}
	return c.reply(http.StatusOK, out)
}

// ---- environments/environments/{key}/edge-identities-featurestates ----------------

// putByIdentifier upserts the override of a feature for an identity named
// by identifier, creating the identity when it does not exist.
func (c *call) putByIdentifier() error {
	f, err := c.object()
	if err != nil {
		return err
	}
	identifier, err := f.requiredString("identifier")
	if err != nil {
		return err
	}
	if err := validIdentifier("identifier", identifier); err != nil {
		return err
	}
	in, err := c.overrideBody(f, true)
	if err != nil {
		return err
	}
	var put identity.Override
	id, err := c.h.opt.Store.Update(c.r.Context(), c.env, identifier, func(cur *identity.Identity) (*identity.Identity, error) {
		if cur == nil {
			cur = &identity.Identity{EnvironmentAPIKey: c.envKey, Identifier: identifier}
		}
		i := slices.IndexFunc(cur.Overrides, func(o identity.Override) bool { return o.Feature.ID == in.feature.ref.ID })
		if i < 0 {
			cur.Overrides = append(cur.Overrides, identity.Override{FeatureStateUUID: identity.NewUUID()})
			i = len(cur.Overrides) - 1
		}
		in.apply(&cur.Overrides[i])
		put = cur.Overrides[i]
		return cur, nil
	})
	if err != nil {
		return fmt.Errorf("writing override for %q: %w", identifier, err)
	}
	c.changed()
	return c.reply(http.StatusOK, outOverride(put, id.UUID))
}

// deleteByIdentifier removes the override of a feature (id or name) from
// the identity named by identifier; nothing to remove is still a 204.
func (c *call) deleteByIdentifier() error {
	f, err := c.object()
	if err != nil {
		return err
	}
	identifier, err := f.requiredString("identifier")
	if err != nil {
		return err
	}
	if err := validIdentifier("identifier", identifier); err != nil {
		return err
	}
	raw, ok := f.get("feature")
	if !ok {
		return fieldError("feature", "This field is required.")
	}
	// A feature no longer in the document may still have overrides to
	// remove: match stored overrides by id or name as well.
	var wantID int64 = -1
	var wantName string
	if fi, err := resolveFeature(c.h.catalogs.get(c.envKey, c.snap), raw); err == nil {
		wantID = fi.ref.ID
	} else if raw[0] == '"' {
		_ = json.Unmarshal(raw, &wantName)
	} else if wantID, err = strconv.ParseInt(string(raw), 10, 64); err != nil {
		return fieldError("feature", "Expected a feature id or name.")
	}
	removed := false
	if _, err := c.h.opt.Store.Update(c.r.Context(), c.env, identifier, func(cur *identity.Identity) (*identity.Identity, error) {
		removed = false
		if cur == nil {
			return nil, identity.ErrSkip
		}
		n := len(cur.Overrides)
		cur.Overrides = slices.DeleteFunc(cur.Overrides, func(o identity.Override) bool {
			return o.Feature.ID == wantID || wantName != "" && o.Feature.Name == wantName
		})
		if len(cur.Overrides) == n {
			return nil, identity.ErrSkip
		}
		removed = true
		return cur, nil
	}); err != nil {
		return fmt.Errorf("removing override for %q: %w", identifier, err)
	}
	if removed {
		c.changed()
	}
	return c.noContent()
}
