package migrate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// Core's value_type names (traits) and value types (feature state values and
// multivariate options).
const (
	typeInt     = "int"
	typeUnicode = "unicode"
	typeBool    = "bool"
	typeFloat   = "float"
)

// traitColumns are the typed columns of a Core trait row (environments_trait)
// or of the REST trait object, which has the same fields.
type traitColumns struct {
	Key          string
	ValueType    *string
	BooleanValue *bool
	IntegerValue *int64
	StringValue  *string
	FloatValue   *float64
}

// errNonFinite marks a trait value Core's validation refuses (NaN, ±Inf);
// Core aborts the whole migration on it, Fledge skips the identity.
var errNonFinite = fmt.Errorf("non-finite float trait value")

// traitValue types a Core trait as the migrator does (migrate.md §1.3): the
// column named by value_type, numeric strings coerced. A NULL or unknown
// value_type, or a NULL in the chosen column, is Core's null value; the
// stored model has no null trait values (null deletes), so it becomes the
// empty string, which is what Fledge reads back for a null trait in an item
// Core wrote (flagsmith#2806's repair rule).
func traitValue(c traitColumns) (engine.Value, error) {
	vt := ""
	if c.ValueType != nil {
		vt = *c.ValueType
	}
	switch vt {
	case typeInt:
		if c.IntegerValue != nil {
			return engine.Int(*c.IntegerValue), nil
		}
	case typeUnicode:
		if c.StringValue != nil {
			return identity.Coerce(engine.String(*c.StringValue)), nil
		}
	case typeBool:
		if c.BooleanValue != nil {
			return engine.Bool(*c.BooleanValue), nil
		}
	case typeFloat:
		if c.FloatValue != nil {
			f := *c.FloatValue
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return engine.Value{}, fmt.Errorf("%w: trait %q is %v", errNonFinite, c.Key, f)
			}
			return engine.Float(f), nil
		}
	}
	return engine.String(""), nil
}

// valueColumns are the typed columns of a feature state value or a
// multivariate option.
type valueColumns struct {
	Type         *string
	BooleanValue *bool
	IntegerValue *int64
	StringValue  *string
}

// valueJSON types a feature state value or option value (migrate.md §1.4):
// int → integer_value, bool → boolean_value, anything else → string_value;
// no numeric-string coercion. A NULL column gives null.
func valueJSON(c valueColumns) json.RawMessage {
	t := ""
	if c.Type != nil {
		t = *c.Type
	}
	switch t {
	case typeInt:
		if c.IntegerValue != nil {
			return strconv.AppendInt(nil, *c.IntegerValue, 10)
		}
	case typeBool:
		if c.BooleanValue != nil {
			return strconv.AppendBool(nil, *c.BooleanValue)
		}
	default:
		if c.StringValue != nil {
			return jsonString(*c.StringValue)
		}
	}
	return nil
}

// jsonString encodes s as a JSON string without escaping <, > and &, as
// Python's json.dumps writes it.
func jsonString(s string) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// mvValue is one entry of multivariate_feature_state_values as the
// migrator writes it.
type mvValue struct {
	ID                        int64    `json:"id"`
	MultivariateFeatureOption mvOption `json:"multivariate_feature_option"`
	MvFsValueUUID             string   `json:"mv_fs_value_uuid"`
	PercentageAllocation      pyFloat  `json:"percentage_allocation"`
}

type mvOption struct {
	ID    int64           `json:"id"`
	Key   *string         `json:"key"`
	Value json.RawMessage `json:"value"`
}

// pyFloat encodes a float the way the item JSON keeps floats: shortest
// round-trip text, always with a decimal point or exponent.
type pyFloat float64

func (f pyFloat) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return nil, fmt.Errorf("non-finite percentage allocation %v", float64(f))
	}
	return identity.ValueJSON(engine.Float(float64(f))), nil
}

// encodeMV encodes a kept override's multivariate values (already in id
// order); nil when there are none.
func encodeMV(vs []mvValue) (json.RawMessage, error) {
	if len(vs) == 0 {
		return nil, nil
	}
	for i := range vs {
		if vs[i].MultivariateFeatureOption.Value == nil {
			vs[i].MultivariateFeatureOption.Value = json.RawMessage("null")
		}
	}
	b, err := json.Marshal(vs)
	if err != nil {
		return nil, fmt.Errorf("encoding multivariate values: %w", err)
	}
	return b, nil
}

// isoformat formats a Core datetime as Python's isoformat() of a UTC time:
// microseconds only when non-zero.
func isoformat(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02T15:04:05+00:00")
	}
	return t.Format("2006-01-02T15:04:05.000000+00:00")
}

// derivedUUID is a version-4-shaped UUID derived from name, for values REST
// does not expose (mv_fs_value_uuid): the same input gives the same UUID, so
// re-runs write the same items.
func derivedUUID(name string) string {
	sum := sha256.Sum256([]byte("fledge-migrate:" + name))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func int64p(v int64) *int64 { return &v }
