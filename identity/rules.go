package identity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/fledge-flags/fledge/engine"
)

// CompositeKey is the identity's primary key in Flagsmith's table:
// {environment_api_key}_{identifier}.
func CompositeKey(envKey, identifier string) string { return envKey + "_" + identifier }

// OverrideDocumentKey is the sort key of a v2 identity-override item.
func OverrideDocumentKey(featureID int64, identityUUID string) string {
	return "identity_override:" + strconv.FormatInt(featureID, 10) + ":" + identityUUID
}

// ValidateIdentifier checks the identifier against the store limits.
func ValidateIdentifier(identifier string) error {
	if identifier == "" {
		return fmt.Errorf("%w: identifier is empty", ErrInvalid)
	}
	if !utf8.ValidString(identifier) {
		return fmt.Errorf("%w: identifier is not valid UTF-8", ErrInvalid)
	}
	if len(identifier) > MaxIdentifierBytes {
		return fmt.Errorf("%w: identifier is %d UTF-8 bytes, more than %d", ErrInvalid, len(identifier), MaxIdentifierBytes)
	}
	return nil
}

// Validate checks an identity before it is written: the limits every store
// enforces, whatever its backend could hold.
func Validate(id *Identity) error {
	_, err := ValidatedItem(id)
	return err
}

// ValidatedItem checks an identity as Validate does and returns its item
// JSON (MarshalItem), which the size limit is measured on: a store writes
// these bytes rather than encoding the identity a second time.
func ValidatedItem(id *Identity) ([]byte, error) {
	if err := validateFields(id); err != nil {
		return nil, err
	}
	data, err := MarshalItem(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(data) > MaxItemBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(data))
	}
	return data, nil
}

// validateFields is Validate without the size limit.
func validateFields(id *Identity) error {
	if err := ValidateIdentifier(id.Identifier); err != nil {
		return err
	}
	if id.EnvironmentAPIKey == "" {
		return fmt.Errorf("%w: environment_api_key is empty", ErrInvalid)
	}
	if utf8.RuneCountInString(id.DashboardAlias) > MaxAliasChars {
		return fmt.Errorf("%w: dashboard_alias longer than %d characters", ErrInvalid, MaxAliasChars)
	}
	for i := range id.Traits {
		t := &id.Traits[i]
		if t.Key == "" {
			return fmt.Errorf("%w: traits[%d]: empty trait_key", ErrInvalid, i)
		}
		if utf8.RuneCountInString(t.Key) > MaxTraitKeyChars {
			return fmt.Errorf("%w: trait_key %.40q… longer than %d characters", ErrInvalid, t.Key, MaxTraitKeyChars)
		}
		if t.Value.Kind == engine.KindNone {
			return fmt.Errorf("%w: trait %q has no value", ErrInvalid, t.Key)
		}
		if t.Value.Kind == engine.KindString && utf8.RuneCountInString(t.Value.Str) > MaxTraitValueChars {
			return fmt.Errorf("%w: trait %q: value longer than %d characters", ErrInvalid, t.Key, MaxTraitValueChars)
		}
		// JSON, and so every store, has no NaN or infinity; without this
		// check they would surface as a marshalling error.
		if t.Value.Kind == engine.KindFloat && (math.IsNaN(t.Value.Float) || math.IsInf(t.Value.Float, 0)) {
			return fmt.Errorf("%w: trait %q: %v is not a storable number", ErrInvalid, t.Key, t.Value.Float)
		}
	}
	seen := make(map[int64]bool, len(id.Overrides))
	for _, o := range id.Overrides {
		if seen[o.Feature.ID] {
			return fmt.Errorf("%w: two overrides for feature %d", ErrInvalid, o.Feature.ID)
		}
		seen[o.Feature.ID] = true
	}
	return nil
}

// EncodedSize measures an identity the way the 400 KB limit is applied: the
// length of its item JSON (attribute names plus values), which is close to
// DynamoDB's own measure and the same on every store.
func EncodedSize(id *Identity) int {
	b, err := MarshalItem(id)
	if err != nil {
		return MaxItemBytes + 1
	}
	return len(b)
}

// NewUUID returns a random (version 4) UUID in its canonical text form,
// as identity_uuid and featurestate_uuid are written.
func NewUUID() string { return uuid.NewString() }

// Now formats t as Flagsmith's created_date: ISO-8601, microseconds, offset.
func Now(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000+00:00") }

// Clone returns a deep copy, so an UpdateFunc may modify what it gets.
func (id *Identity) Clone() *Identity {
	if id == nil {
		return nil
	}
	c := *id
	if id.DjangoID != nil {
		v := *id.DjangoID
		c.DjangoID = &v
	}
	c.Traits = cloneTraits(id.Traits)
	c.SystemTraits = cloneTraits(id.SystemTraits)
	c.Overrides = make([]Override, len(id.Overrides))
	for i, o := range id.Overrides {
		o.Value = append([]byte(nil), o.Value...)
		if o.Value != nil && len(o.Value) == 0 {
			o.Value = nil
		}
		o.MultivariateValues = append([]byte(nil), o.MultivariateValues...)
		if len(o.MultivariateValues) == 0 {
			o.MultivariateValues = nil
		}
		if o.DjangoID != nil {
			v := *o.DjangoID
			o.DjangoID = &v
		}
		c.Overrides[i] = o
	}
	if len(c.Overrides) == 0 {
		c.Overrides = nil
	}
	return &c
}

// Trait returns the stored trait named key.
func (id *Identity) Trait(key string) (engine.Value, bool) {
	for _, t := range id.Traits {
		if t.Key == key {
			return t.Value, true
		}
	}
	return engine.Value{}, false
}

// cloneTraits copies traits, including the big.Int behind a large integer,
// which would otherwise be shared.
func cloneTraits(ts []Trait) []Trait {
	if len(ts) == 0 {
		return nil
	}
	out := append([]Trait(nil), ts...)
	for i := range out {
		if b := out[i].Value.Big; b != nil {
			out[i].Value.Big = new(big.Int).Set(b)
		}
	}
	return out
}

// Complete applies what a store owns in an identity about to be written
// over cur (nil for a new one): its key fields, the UUID and creation date
// when the update left them empty (kept from cur, else new), and cur's
// system traits, which only their own writer changes. Every store calls it,
// so that they agree.
func Complete(next, cur *Identity, envKey, identifier string, now time.Time) {
	next.EnvironmentAPIKey, next.Identifier = envKey, identifier
	next.SystemTraits = nil
	if cur != nil {
		next.SystemTraits = cur.Clone().SystemTraits
		if next.UUID == "" {
			next.UUID = cur.UUID
		}
		if next.CreatedDate == "" {
			next.CreatedDate = cur.CreatedDate
		}
	}
	if next.UUID == "" {
		next.UUID = NewUUID()
	}
	if next.CreatedDate == "" {
		next.CreatedDate = Now(now)
	}
	if len(next.Traits) == 0 {
		next.Traits = nil
	}
	if len(next.Overrides) == 0 {
		next.Overrides = nil
	}
}

// Normalize puts an identity's JSON values in the form MarshalItem writes
// and UnmarshalItem reads (compact, a JSON null as nil), so that the
// identity a store returns from Update is exactly what a later Get
// decodes.
func Normalize(id *Identity) {
	for i := range id.Overrides {
		o := &id.Overrides[i]
		o.Value = compactOrNil(o.Value, "null")
		o.MultivariateValues = compactOrNil(o.MultivariateValues, "[]")
	}
}

// compactOrNil compacts raw JSON; empty is nil, as is the literal meaning
// "none" (null for a value, [] for a list).
func compactOrNil(raw json.RawMessage, none string) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw // Validate's caller reports it when it is marshalled
	}
	if buf.String() == none {
		return nil
	}
	return buf.Bytes()
}
