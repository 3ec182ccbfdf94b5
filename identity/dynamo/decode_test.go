package dynamo_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/dynamo"
	"github.com/fledge-flags/fledge/internal/avjson"
)

// The store reads identity items straight from their attribute values.
// These tests hold that reader to the one it replaced, kept in
// export_test.go: the item converted to JSON, then identity.UnmarshalItem.
// The old reader wrote maps in Go's map order, so where its result depends
// on the order of keys (two names for one field, several type errors in
// one object, a map inside a feature_state_value) it varied from one read
// to the next; the new reader gives what the old one gives in key order,
// and the tests compare with that. Every other item reads the same in
// either order, which the table also checks.

// sameDecoded compares two readings: identity, version, problems and the
// error's text.
func sameDecoded(a, b dynamo.Decoded) bool {
	return reflect.DeepEqual(a.ID, b.ID) && a.Version == b.Version &&
		reflect.DeepEqual(a.Problems, b.Problems) && errText(a.Err) == errText(b.Err)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func decodedText(d dynamo.Decoded) string {
	return fmt.Sprintf("%s version=%d problems=%q err=%v", describeAll(d.ID), d.Version, d.Problems, d.Err)
}

// describeAll is describe with what describe leaves out: the kinds of
// values and the raw bytes of overrides.
func describeAll(id *identity.Identity) string {
	if id == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString(describe(id))
	for _, o := range id.Overrides {
		dj := "nil"
		if o.DjangoID != nil {
			dj = fmt.Sprint(*o.DjangoID)
		}
		fmt.Fprintf(&b, "override %+v enabled=%t value=%q mv=%q uuid=%q django=%s\n",
			o.Feature, o.Enabled, o.Value, o.MultivariateValues, o.FeatureStateUUID, dj)
	}
	return b.String()
}

// checkDecode reads item with the new reader and the old one, keys in
// order, and fails t unless they agree. It returns the new reading.
func checkDecode(t testing.TB, item map[string]types.AttributeValue) dynamo.Decoded {
	t.Helper()
	got := dynamo.DecodeItem(item)
	want := dynamo.DecodeItemViaJSON(item, true)
	if !sameDecoded(got, want) {
		t.Fatalf("item %s\nread as\n%s\nthe JSON reader gives\n%s", avText(&types.AttributeValueMemberM{Value: item}), decodedText(got), decodedText(want))
	}
	return got
}

// with returns a copy of item (an M) with attributes set, or removed
// where the value is nil.
func with(item types.AttributeValue, kv ...any) types.AttributeValue {
	m := maps.Clone(item.(*types.AttributeValueMemberM).Value)
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(m, k)
			continue
		}
		m[k] = kv[i+1].(types.AttributeValue)
	}
	return &types.AttributeValueMemberM{Value: m}
}

// More attribute value constructors: binaries and sets.
func BIN(b ...byte) types.AttributeValue  { return &types.AttributeValueMemberB{Value: b} }
func SS(s ...string) types.AttributeValue { return &types.AttributeValueMemberSS{Value: s} }
func NS(s ...string) types.AttributeValue { return &types.AttributeValueMemberNS{Value: s} }
func BS(b ...[]byte) types.AttributeValue { return &types.AttributeValueMemberBS{Value: b} }

// feature is a well-formed feature state with attributes replaced.
func feature(kv ...any) types.AttributeValue {
	return with(M(
		"feature", M("id", N("67"), "name", S("test_feature"), "type", S("STANDARD")),
		"enabled", B(true),
		"feature_state_value", S("on"),
		"django_id", NULL(),
		"featurestate_uuid", S("20988957-d345-424e-9abc-1dc5a814da48"),
		"feature_segment", NULL(),
		"multivariate_feature_state_values", L(),
	), kv...)
}

// trait is a trait entry.
func trait(key string, value types.AttributeValue) types.AttributeValue {
	return M("trait_key", S(key), "trait_value", value)
}

// nested returns n lists, one inside the other.
func nested(n int) types.AttributeValue {
	av := L()
	for range n - 1 {
		av = L(av)
	}
	return av
}

// flagsmithItemJSON is identity's api.md §4.5 example, as Flagsmith
// writes it (identity/item_test.go).
const flagsmithItemJSON = `{
  "composite_key": "pQuzvsMLQoOVAwITrTWDQJ_57c6edf1bbf145a1a23ea287ce44877f",
  "environment_api_key": "pQuzvsMLQoOVAwITrTWDQJ",
  "identifier": "57c6edf1bbf145a1a23ea287ce44877f",
  "identity_uuid": "118ecfc9-5234-4218-8af8-dd994dbfedc0",
  "created_date": "2024-03-19T09:41:22.974595+00:00",
  "django_id": null,
  "identity_traits": [{"trait_key": "test_trait", "trait_value": 42}],
  "identity_features": [{"feature": {"id": 67, "name": "test_feature", "type": "STANDARD"}, "enabled": true,
    "feature_state_value": null, "django_id": null, "featurestate_uuid": "20988957-d345-424e-9abc-1dc5a814da48",
    "feature_segment": null, "multivariate_feature_state_values": []}],
  "dashboard_alias": "qa account",
  "system_traits": {"cohort_42": true}
}`

// jsonItem converts item JSON to attribute values as the store writes
// them.
func jsonItem(t testing.TB, data string) types.AttributeValue {
	t.Helper()
	av, err := avjson.FromJSON([]byte(data))
	if err != nil {
		t.Fatalf("FromJSON(%s): %v", data, err)
	}
	return av
}

type decodeCase struct {
	name string
	item types.AttributeValue
	// want, when set, is the identity expected, with problems (each the
	// start of one); the reading is compared with the old reader's in any
	// case.
	want     *identity.Identity
	problems []string
	// err, when set, is a part of the error expected.
	err string
	// orderDependent: the old reader's result depended on Go's map order.
	orderDependent bool
}

func decodeCases(t testing.TB) []decodeCase {
	core := coreItem("envCore", "57c6edf1")
	fs := func(kv ...any) types.AttributeValue { return with(core, "identity_features", L(feature(kv...))) }
	traits := func(l ...types.AttributeValue) types.AttributeValue { return with(core, "identity_traits", L(l...)) }
	djangoID := int64(4242)
	coreWant := func(edit func(*identity.Identity)) *identity.Identity {
		id := &identity.Identity{
			EnvironmentAPIKey: "envCore", Identifier: "57c6edf1",
			UUID: "118ecfc9-5234-4218-8af8-dd994dbfedc0", CreatedDate: "2024-03-19T09:41:22.974595+00:00",
			DjangoID: &djangoID,
			Traits: []identity.Trait{
				{Key: "test_trait", Value: engine.Int(42)},
				{Key: "ratio", Value: engine.Float(0.25)},
				{Key: "whole", Value: engine.Int(4)},
				{Key: "flag", Value: engine.Bool(true)},
				{Key: "name", Value: engine.String("x")},
				{Key: "repaired", Value: engine.String("")},
			},
			Overrides: []identity.Override{{
				Feature: identity.FeatureRef{ID: 67, Name: "test_feature", Type: "STANDARD"},
				Enabled: true, FeatureStateUUID: "20988957-d345-424e-9abc-1dc5a814da48",
			}},
			DashboardAlias: "qa account",
		}
		if edit != nil {
			edit(id)
		}
		return id
	}
	overrideWant := func(edit func(*identity.Override)) *identity.Identity {
		return coreWant(func(id *identity.Identity) {
			o := identity.Override{
				Feature: identity.FeatureRef{ID: 67, Name: "test_feature", Type: "STANDARD"},
				Enabled: true, Value: json.RawMessage(`"on"`), FeatureStateUUID: "20988957-d345-424e-9abc-1dc5a814da48",
			}
			edit(&o)
			id.Overrides = []identity.Override{o}
		})
	}
	traitWant := func(tr ...identity.Trait) *identity.Identity {
		return coreWant(func(id *identity.Identity) { id.Traits = tr })
	}
	noOverride := func(id *identity.Identity) { id.Overrides = nil }
	flagsmith := jsonItem(t, flagsmithItemJSON)
	big70 := new(big.Int).Lsh(big.NewInt(1), 70)

	return []decodeCase{
		// Items as their writers write them.
		{name: "core item", item: core, want: coreWant(nil)},
		{name: "flagsmith item", item: flagsmith, want: &identity.Identity{
			EnvironmentAPIKey: "pQuzvsMLQoOVAwITrTWDQJ", Identifier: "57c6edf1bbf145a1a23ea287ce44877f",
			UUID: "118ecfc9-5234-4218-8af8-dd994dbfedc0", CreatedDate: "2024-03-19T09:41:22.974595+00:00",
			Traits: []identity.Trait{{Key: "test_trait", Value: engine.Int(42)}},
			Overrides: []identity.Override{{
				Feature: identity.FeatureRef{ID: 67, Name: "test_feature", Type: "STANDARD"}, Enabled: true,
				FeatureStateUUID: "20988957-d345-424e-9abc-1dc5a814da48",
			}},
			DashboardAlias: "qa account",
			SystemTraits:   []identity.Trait{{Key: "cohort_42", Value: engine.Bool(true)}},
		}},
		{name: "fledge floats and version", item: with(core, "identity_traits", L(
			trait("whole", N("4")), trait("big", N("1180591620717411303424")), trait("half", N("0.5")), trait("int", N("3"))),
			"fledge_float_traits", SS("whole", "big", "half", "absent"), "fledge_version", N("17")),
			want: traitWant(
				identity.Trait{Key: "whole", Value: engine.Float(4)}, identity.Trait{Key: "big", Value: engine.Float(1180591620717411303424)},
				identity.Trait{Key: "half", Value: engine.Float(0.5)}, identity.Trait{Key: "int", Value: engine.Int(3)})},
		{name: "version not an integer", item: with(core, "fledge_version", N("1.5"))},
		{name: "version with whitespace", item: with(core, "fledge_version", N("2 "))},
		{name: "version not a number", item: with(core, "fledge_version", S("2"))},
		{name: "float traits not a set", item: with(core, "fledge_float_traits", L(S("whole")))},
		{name: "empty item", item: M(), want: &identity.Identity{}},
		{name: "only a key", item: M("composite_key", S("e_i"))},
		{name: "nulls everywhere", item: M("environment_api_key", NULL(), "identifier", NULL(), "identity_uuid", NULL(),
			"created_date", NULL(), "django_id", NULL(), "identity_traits", NULL(), "identity_features", NULL(),
			"dashboard_alias", NULL(), "system_traits", NULL()), want: &identity.Identity{}},
		{name: "empty lists and map", item: with(core, "identity_traits", L(), "identity_features", L(), "system_traits", M()),
			want: coreWant(func(id *identity.Identity) { id.Traits, id.Overrides = nil, nil })},

		// Top-level attributes of other types.
		{name: "identifier binary", item: with(core, "identifier", BIN('h', 'i')),
			want: coreWant(func(id *identity.Identity) { id.Identifier = "aGk=" })},
		{name: "identifier number", item: with(core, "identifier", N("12")), err: "cannot unmarshal number"},
		{name: "identifier bool", item: with(core, "identifier", B(true)), err: "cannot unmarshal bool"},
		{name: "uuid map", item: with(core, "identity_uuid", M()), err: "cannot unmarshal object"},
		{name: "created_date list", item: with(core, "created_date", L()), err: "cannot unmarshal array"},
		{name: "created_date set", item: with(core, "created_date", SS("a")), err: "cannot unmarshal array"},
		{name: "alias number", item: with(core, "dashboard_alias", N("1")), err: "cannot unmarshal number"},
		{name: "alias binary", item: with(core, "dashboard_alias", BIN(0xff))},
		{name: "env key with bad UTF-8", item: with(core, "environment_api_key", S("env\xff\xfe"), "identifier", S("a\xed\xa0\x80b")),
			want: coreWant(func(id *identity.Identity) {
				id.EnvironmentAPIKey, id.Identifier = "env\ufffd\ufffd", "a\ufffd\ufffd\ufffdb"
			})},
		{name: "traits a string", item: with(core, "identity_traits", S("x")), err: "cannot unmarshal string"},
		{name: "traits a map", item: with(core, "identity_traits", M()), err: "cannot unmarshal object"},
		{name: "traits a number", item: with(core, "identity_traits", N("1")), err: "cannot unmarshal number"},
		{name: "features a bool", item: with(core, "identity_features", B(false)), err: "cannot unmarshal bool"},
		{name: "features binary", item: with(core, "identity_features", BIN(1)), err: "cannot unmarshal string"},
		{name: "two type errors", item: with(core, "identifier", N("1"), "identity_uuid", B(true), "identity_traits", M()),
			err: "cannot unmarshal", orderDependent: true},
		{name: "traits a string set", item: with(core, "identity_traits", SS("a", "b")), want: coreWant(func(id *identity.Identity) { id.Traits = nil }),
			problems: []string{"identity_traits[0]: unreadable trait skipped", "identity_traits[1]: unreadable trait skipped"}},
		{name: "traits a number set", item: with(core, "identity_traits", NS("1", "2.5"))},
		{name: "traits a binary set", item: with(core, "identity_traits", BS([]byte("a")))},
		{name: "features sets", item: with(core, "identity_features", SS("x", "y"))},
		{name: "features number set", item: with(core, "identity_features", NS("7 "))},
		{name: "features binary set", item: with(core, "identity_features", BS([]byte{1}, nil))},

		// django_id.
		{name: "django_id string", item: with(core, "django_id", S("12")), want: coreWant(func(id *identity.Identity) { d := int64(12); id.DjangoID = &d })},
		{name: "django_id decimal", item: with(core, "django_id", N("12.0"))},
		{name: "django_id exponent", item: with(core, "django_id", N("1E3"))},
		{name: "django_id fraction", item: with(core, "django_id", N("1.5")), want: coreWant(func(id *identity.Identity) { id.DjangoID = nil })},
		{name: "django_id beyond 2^53 as float", item: with(core, "django_id", N("1e17"))},
		{name: "django_id beyond 2^53 as int", item: with(core, "django_id", N("9007199254740993"))},
		{name: "django_id beyond int64", item: with(core, "django_id", N("9223372036854775808"))},
		{name: "django_id string with spaces", item: with(core, "django_id", S(" 12"))},
		{name: "django_id string hex float", item: with(core, "django_id", S("0x1p4"))},
		{name: "django_id string inf", item: with(core, "django_id", S("inf"))},
		{name: "django_id binary of digits", item: with(core, "django_id", BIN(0xd7, 0x6d, 0xf8))},
		{name: "django_id bool", item: with(core, "django_id", B(true))},
		{name: "django_id map", item: with(core, "django_id", M("a", N("1")))},
		{name: "django_id list", item: with(core, "django_id", L(N("1")))},
		{name: "django_id number with whitespace", item: with(core, "django_id", N("5\n"))},

		// Traits.
		{name: "trait values", item: traits(
			trait("int", N("-12")), trait("zero", N("-0")), trait("big", N("1180591620717411303424")),
			trait("float", N("2.50")), trait("exp", N("1E+2")), trait("huge", N("1e400")), trait("tiny", N("1e-400")),
			trait("spaced", N("5 \t")), trait("str", S("<b>&amp;</b>\u2028")), trait("bad utf8", S("a\xffb")),
			trait("digits", S("007")), trait("bool", B(false)), trait("null", NULL()), trait("bin", BIN(1, 2, 3)),
			M("trait_key", S("missing")),
		), want: traitWant(
			identity.Trait{Key: "int", Value: engine.Int(-12)}, identity.Trait{Key: "zero", Value: engine.Int(0)},
			identity.Trait{Key: "big", Value: engine.Value{Kind: engine.KindInt, Big: big70}},
			identity.Trait{Key: "float", Value: engine.Float(2.5)}, identity.Trait{Key: "exp", Value: engine.Float(100)},
			identity.Trait{Key: "huge", Value: engine.Float(math.Inf(1))}, identity.Trait{Key: "tiny", Value: engine.Float(0)},
			identity.Trait{Key: "spaced", Value: engine.Int(5)}, identity.Trait{Key: "str", Value: engine.String("<b>&amp;</b>\u2028")},
			identity.Trait{Key: "bad utf8", Value: engine.String("a\ufffdb")},
			identity.Trait{Key: "digits", Value: engine.String("007")}, identity.Trait{Key: "bool", Value: engine.Bool(false)},
			identity.Trait{Key: "null", Value: engine.String("")}, identity.Trait{Key: "bin", Value: engine.String("AQID")},
			identity.Trait{Key: "missing", Value: engine.String("")},
		)},
		{name: "unreadable traits", item: traits(
			trait("ok", N("4.0")), NULL(), S("x"), N("1"), L(), M("trait_value", N("1")), trait("", N("1")),
			M("trait_key", NULL(), "trait_value", N("1")), M("trait_key", N("1"), "trait_value", N("1")),
			M("trait_key", B(true)), M("trait_key", BIN('k'), "trait_value", S("v")),
			trait("map", M("a", N("1"))), trait("list", L()), trait("set", SS("a")), trait("nset", NS("1")),
			trait("bset", BS([]byte("a"))), trait("bad \xff key", L()), M("trait_key", M(), "trait_value", S("v")),
		), want: traitWant(identity.Trait{Key: "ok", Value: engine.Float(4)}, identity.Trait{Key: "aw==", Value: engine.String("v")}),
			problems: []string{
				"identity_traits[1]: unreadable trait skipped", "identity_traits[2]: unreadable trait skipped",
				"identity_traits[3]: unreadable trait skipped", "identity_traits[4]: unreadable trait skipped",
				"identity_traits[5]: unreadable trait skipped", "identity_traits[6]: unreadable trait skipped",
				"identity_traits[7]: unreadable trait skipped", "identity_traits[8]: unreadable trait skipped",
				"identity_traits[9]: unreadable trait skipped",
				`identity_traits[11] "map": unreadable value skipped`, `identity_traits[12] "list": unreadable value skipped`,
				`identity_traits[13] "set": unreadable value skipped`, `identity_traits[14] "nset": unreadable value skipped`,
				`identity_traits[15] "bset": unreadable value skipped`, "identity_traits[16] \"bad \ufffd key\": unreadable value skipped",
				"identity_traits[17]: unreadable trait skipped",
			}},
		{name: "duplicate trait keys", item: traits(trait("a", N("1")), trait("a", N("2")))},
		{name: "trait with other keys", item: traits(M("trait_key", S("a"), "trait_value", N("1"), "extra", L(), "trait_\u212aey2", S("x")))},
		{name: "trait keys in other cases", item: traits(M("Trait_Key", S("a"), "TRAIT_VALUE", N("1")))},
		{name: "trait key with a Kelvin sign", item: traits(M("trait_\u212aey", S("a"), "trait_value", N("1")))},
		{name: "trait key with a long s", item: traits(M("trait_key", S("a"), "trait_value", N("1"), "\u017ftrait_value", N("2")))},
		{name: "trait key exact and folded", item: traits(M("trait_key", S("a"), "TRAIT_KEY", S("b"), "trait_value", N("1"))), orderDependent: true},
		{name: "trait value exact and folded", item: traits(M("trait_key", S("a"), "trait_value", N("1"), "Trait_Value", L())), orderDependent: true},
		{name: "float repair and bad UTF-8 keys", item: with(core, "identity_traits", L(trait("a\xff", N("1")), trait("a\ufffd", N("2"))),
			"fledge_float_traits", SS("a\xff"))},

		// Overrides.
		{name: "override value string", item: fs(), want: overrideWant(func(*identity.Override) {})},
		{name: "override value escapes", item: fs("feature_state_value", S("<v>&\u2028\xff")),
			want: overrideWant(func(o *identity.Override) { o.Value = json.RawMessage(`"\u003cv\u003e\u0026\u2028\ufffd"`) })},
		{name: "override value number", item: fs("feature_state_value", N("1.50 ")),
			want: overrideWant(func(o *identity.Override) { o.Value = json.RawMessage(`1.50`) })},
		{name: "override value big number", item: fs("feature_state_value", N("12345678901234567890123"))},
		{name: "override value bool", item: fs("feature_state_value", B(false)),
			want: overrideWant(func(o *identity.Override) { o.Value = json.RawMessage(`false`) })},
		{name: "override value null", item: fs("feature_state_value", NULL()), want: overrideWant(func(o *identity.Override) { o.Value = nil })},
		{name: "override value missing", item: fs("feature_state_value", nil), want: overrideWant(func(o *identity.Override) { o.Value = nil })},
		{name: "override value map", item: fs("feature_state_value", M("b", N("1 "), "a", L(N("1"), NULL(), M("z", B(true), "y", S("<"))), "c", SS("x"))),
			want: overrideWant(func(o *identity.Override) {
				o.Value = json.RawMessage(`{"a":[1,null,{"y":"\u003c","z":true}],"b":1,"c":["x"]}`)
			}), orderDependent: true},
		{name: "override value sets", item: fs("feature_state_value", L(SS("a"), NS("1 ", "2e5"), BS([]byte("x")), BIN(1)))},
		{name: "override value empty list", item: fs("feature_state_value", L())},
		{name: "override enabled false", item: fs("enabled", B(false))},
		{name: "override enabled null", item: fs("enabled", NULL())},
		{name: "override enabled missing", item: fs("enabled", nil)},
		{name: "override django_id", item: fs("django_id", N("88")),
			want: overrideWant(func(o *identity.Override) { d := int64(88); o.DjangoID = &d })},
		{name: "override django_id string", item: fs("django_id", S("88.0"))},
		{name: "override django_id bad", item: fs("django_id", S("x"))},
		{name: "override uuid binary", item: fs("featurestate_uuid", BIN(1))},
		{name: "override uuid null", item: fs("featurestate_uuid", NULL())},
		{name: "override multivariate", item: fs("multivariate_feature_state_values", L(
			M("id", N("1"), "multivariate_feature_option", M("value", S("a"), "id", N("3")), "percentage_allocation", N("30.5")))),
			want: overrideWant(func(o *identity.Override) {
				o.MultivariateValues = json.RawMessage(`[{"id":1,"multivariate_feature_option":{"id":3,"value":"a"},"percentage_allocation":30.5}]`)
			}), orderDependent: true},
		{name: "override multivariate sets", item: with(core, "identity_features", L(
			feature("multivariate_feature_state_values", SS("a")), feature("multivariate_feature_state_values", NS("1 ")),
			feature("multivariate_feature_state_values", BS([]byte("a"))), feature("multivariate_feature_state_values", SS()),
			feature("multivariate_feature_state_values", NS()), feature("multivariate_feature_state_values", BS())))},
		{name: "override multivariate not a list", item: with(core, "identity_features", L(
			feature("multivariate_feature_state_values", M("a", N("1"))), feature("multivariate_feature_state_values", S("[1]")),
			feature("multivariate_feature_state_values", NULL()), feature("multivariate_feature_state_values", N("1")),
			feature("multivariate_feature_state_values", nil), feature("multivariate_feature_state_values", L(NULL()))))},
		{name: "feature ids", item: with(core, "identity_features", L(
			feature("feature", M("id", S("12"), "name", S("s"))), feature("feature", M("id", N("4.0"), "name", S("f"))),
			feature("feature", M("id", N("1e3"), "name", S("e"))), feature("feature", M("id", BIN(0xd7, 0x6d, 0xf8), "name", S("b"))),
			feature("feature", M("id", N("2.5"), "name", S("frac"))), feature("feature", M("id", S("abc"), "name", S("abc"))),
			feature("feature", M("id", NULL(), "name", S("null"))), feature("feature", M("name", S("missing"))),
			feature("feature", M("id", B(true), "name", S("bool"))), feature("feature", M("id", L(N("1")), "name", S("list"))),
			feature("feature", M("id", N("1"), "name", S("bad\xff"))),
		)), want: coreWant(func(id *identity.Identity) {
			mk := func(fid int64, name string) identity.Override {
				return identity.Override{Feature: identity.FeatureRef{ID: fid, Name: name}, Enabled: true, Value: json.RawMessage(`"on"`),
					FeatureStateUUID: "20988957-d345-424e-9abc-1dc5a814da48"}
			}
			id.Overrides = []identity.Override{mk(12, "s"), mk(4, "f"), mk(1000, "e"), mk(1234, "b"), mk(1, "bad\ufffd")}
		}), problems: []string{
			`identity_features[4]: feature "frac" without an integer id; skipped`,
			`identity_features[5]: feature "abc" without an integer id; skipped`,
			`identity_features[6]: feature "null" without an integer id; skipped`,
			`identity_features[7]: feature "missing" without an integer id; skipped`,
			`identity_features[8]: feature "bool" without an integer id; skipped`,
			`identity_features[9]: feature "list" without an integer id; skipped`,
		}},
		{name: "unreadable overrides", item: with(core, "identity_features", L(
			NULL(), S("x"), N("1"), B(true), L(), M(), feature("feature", NULL()), feature("feature", nil),
			feature("feature", M("id", N("1"))), feature("feature", M("id", N("1"), "name", S(""))),
			feature("feature", M("id", N("1"), "name", NULL())), feature("feature", S("f")), feature("feature", L()),
			feature("feature", M("id", N("1"), "name", N("2"))), feature("feature", M("id", N("1"), "name", S("n"), "type", B(true))),
			feature("enabled", S("yes")), feature("enabled", N("1")), feature("featurestate_uuid", N("1")),
			feature("featurestate_uuid", M()), feature("feature", M("id", N("1"), "type", L())),
			feature("feature", BIN(1)), feature("feature", SS("a")),
		)), want: coreWant(noOverride), problems: []string{
			"identity_features[0]: feature state without a feature name; skipped",
			"identity_features[1]: unreadable feature state: json: cannot unmarshal string into Go value of type struct {",
			"identity_features[2]: unreadable feature state: json: cannot unmarshal number into Go value of type struct {",
			"identity_features[3]: unreadable feature state: json: cannot unmarshal bool into Go value of type struct {",
			"identity_features[4]: unreadable feature state: json: cannot unmarshal array into Go value of type struct {",
			"identity_features[5]: feature state without a feature name; skipped",
			"identity_features[6]: feature state without a feature name; skipped",
			"identity_features[7]: feature state without a feature name; skipped",
			"identity_features[8]: feature state without a feature name; skipped",
			"identity_features[9]: feature state without a feature name; skipped",
			"identity_features[10]: feature state without a feature name; skipped",
			"identity_features[11]: unreadable feature state: json: cannot unmarshal string into Go struct field .feature of type struct {",
			"identity_features[12]: unreadable feature state: json: cannot unmarshal array into Go struct field .feature of type struct {",
			"identity_features[13]: unreadable feature state: json: cannot unmarshal number into Go struct field .feature.name of type string; skipped",
			"identity_features[14]: unreadable feature state: json: cannot unmarshal bool into Go struct field .feature.type of type string; skipped",
			"identity_features[15]: unreadable feature state: json: cannot unmarshal string into Go struct field .enabled of type bool; skipped",
			"identity_features[16]: unreadable feature state: json: cannot unmarshal number into Go struct field .enabled of type bool; skipped",
			"identity_features[17]: unreadable feature state: json: cannot unmarshal number into Go struct field .featurestate_uuid of type string; skipped",
			"identity_features[18]: unreadable feature state: json: cannot unmarshal object into Go struct field .featurestate_uuid of type string; skipped",
			"identity_features[19]: unreadable feature state: json: cannot unmarshal array into Go struct field .feature.type of type string; skipped",
			"identity_features[20]: unreadable feature state: json: cannot unmarshal string into Go struct field .feature of type struct {",
			"identity_features[21]: unreadable feature state: json: cannot unmarshal array into Go struct field .feature of type struct {",
		}},
		{name: "override with two type errors", item: fs("enabled", S("yes"), "featurestate_uuid", N("1")), orderDependent: true},
		{name: "override keys in other cases", item: with(core, "identity_features", L(
			feature("Enabled", B(false), "enabled", nil), feature("FEATURE", M("id", N("2"), "name", S("x")), "feature", nil),
			feature("feature", M("ID", N("3"), "Name", S("y"), "\u017fype", S("t"))),
			feature("feature_\u017ftate_value", S("v"), "feature_state_value", nil),
			feature("multivariate_feature_\u017ftate_values", L(N("1")), "multivariate_feature_state_values", nil),
			feature("Django_ID", N("5"), "django_id", nil),
			feature("FEATURESTATE_UUID", S("u"), "featurestate_uuid", nil),
		))},
		{name: "override keys exact and folded", item: with(core, "identity_features", L(feature("ENABLED", B(false)))), orderDependent: true},
		{name: "feature keys exact and folded", item: with(core, "identity_features", L(
			feature("feature", M("id", N("1"), "name", S("a"), "NAME", S("b"))))), orderDependent: true},

		// system_traits.
		{name: "system traits", item: with(core, "system_traits", M("b", N("1"), "a", S("x"), "c", NULL(), "d", N("4.5"),
			"e", L(), "f", M(), "g", B(false), "h", BIN(1), "", N("2 "), "\u2028", S("\xff"), "i", SS("a"))),
			want: coreWant(func(id *identity.Identity) {
				id.SystemTraits = []identity.Trait{{Key: "", Value: engine.Int(2)}, {Key: "a", Value: engine.String("x")},
					{Key: "b", Value: engine.Int(1)}, {Key: "d", Value: engine.Float(4.5)}, {Key: "g", Value: engine.Bool(false)},
					{Key: "h", Value: engine.String("AQ==")}, {Key: "\u2028", Value: engine.String("\ufffd")}}
			})},
		{name: "system traits a string", item: with(core, "system_traits", S("x")), want: coreWant(nil),
			problems: []string{"system_traits: not an object; ignored"}},
		{name: "system traits others", item: with(core, "system_traits", L())},
		{name: "system traits number", item: with(core, "system_traits", N("0"))},
		{name: "system traits set", item: with(core, "system_traits", SS())},
		{name: "system traits bool", item: with(core, "system_traits", B(false))},
		{name: "system traits bad UTF-8 key", item: with(core, "system_traits", M("a\xff", N("1"), "b", N("2")))},
		{name: "system traits colliding keys", item: with(core, "system_traits", M("a\xff", N("1"), "a\xfe", N("2"))), orderDependent: true},
		{name: "system traits folded name", item: with(core, "system_traits", nil, "\u017fystem_traits", M("a", N("1")))},
		{name: "system traits beside a folded name", item: with(core, "SYSTEM_TRAITS", M("a", N("1"))), orderDependent: true},

		// Names that match a field only case-insensitively.
		{name: "identifier in upper case", item: with(core, "identifier", nil, "IDENTIFIER", S("u"))},
		{name: "identifier twice", item: with(core, "Identifier", S("u")), orderDependent: true},
		{name: "dotless i is no i", item: with(core, "ıdentifier", S("u"))},
		{name: "unknown attributes", item: with(core, "fledge_other", L(M("x", NS("1"))), "Composite_Key", S("x"), "\xff", S("y"))},

		// Items that are not JSON.
		{name: "number not JSON", item: with(core, "fledge_other", N("+1")), err: `number "+1" is not a JSON number`},
		{name: "numbers not JSON", item: with(core, "a", N(".5"), "b", NS("1", "1."), "c", L(N("0x1"))), err: "is not a JSON number", orderDependent: true},
		{name: "number not JSON in a trait", item: traits(trait("a", N("NaN")))},
		{name: "number not JSON in a set", item: with(core, "fledge_float", NS("1", " 1"))},
		{name: "empty number", item: with(core, "django_id", N(""))},
		{name: "nil attribute in a list", item: with(core, "identity_features", L(nil)), err: "unsupported attribute value <nil>"},
		{name: "nil attribute in a map", item: M("identity_traits", L(&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"trait_key": S("a"), "trait_value": nil}})),
			err: "unsupported attribute value <nil>"},
		{name: "nil traits attribute", item: &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"identity_traits": nil}},
			err: "unsupported attribute value <nil>"},
		{name: "nil identifier attribute", item: &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"identifier": nil}},
			err: "unsupported attribute value <nil>"},
		{name: "unknown attribute type", item: with(core, "x", &types.UnknownUnionMember{Tag: "X"}), err: "unsupported attribute value"},
		{name: "nesting at the limit", item: with(core, "identity_traits", nested(9999))},
		{name: "nesting beyond the limit", item: with(core, "identity_traits", nested(10000)), err: "exceeded max depth"},
		{name: "nesting beyond the limit elsewhere", item: with(core, "x", M("a", nested(10000))), err: "exceeded max depth"},
		{name: "nested sets at the limit", item: with(core, "x", nestedSet(9999))},
		{name: "nested sets beyond the limit", item: with(core, "x", nestedSet(10000)), err: "exceeded max depth"},
	}
}

// nestedSet is a set inside n-1 lists.
func nestedSet(n int) types.AttributeValue {
	av := SS("a")
	for range n - 1 {
		av = L(av)
	}
	return av
}

// TestDecodeItem reads each case with the store's reader and with the old
// JSON reader: they agree, on every item, with keys in order, and in Go's
// map order too on items whose reading did not depend on it.
func TestDecodeItem(t *testing.T) {
	for _, tc := range decodeCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			item := tc.item.(*types.AttributeValueMemberM).Value
			got := checkDecode(t, item)
			if !tc.orderDependent {
				for range 5 {
					if old := dynamo.DecodeItemViaJSON(item, false); !sameDecoded(got, old) {
						t.Fatalf("read as\n%s\nthe JSON reader, in map order, gives\n%s", decodedText(got), decodedText(old))
					}
				}
			}
			switch {
			case tc.err != "":
				if got.Err == nil || !strings.Contains(got.Err.Error(), tc.err) {
					t.Fatalf("error %v; want one with %q", got.Err, tc.err)
				}
			case tc.want != nil:
				if got.Err != nil {
					t.Fatal(got.Err)
				}
				if g, w := describeAll(got.ID), describeAll(tc.want); g != w || !reflect.DeepEqual(got.ID, tc.want) {
					t.Fatalf("read as\n%s\nwant\n%s", g, w)
				}
				ok := len(got.Problems) == len(tc.problems)
				for i := 0; ok && i < len(tc.problems); i++ {
					ok = strings.HasPrefix(got.Problems[i], tc.problems[i])
				}
				if !ok {
					t.Fatalf("problems\n%q\nwant\n%q", got.Problems, tc.problems)
				}
			}
		})
	}
}

// TestDecodeItemIdentityFixtures reads identity's tolerance fixtures
// (identity/item_test.go) as DynamoDB items.
func TestDecodeItemIdentityFixtures(t *testing.T) {
	fixtures := []struct {
		field, raw     string
		orderDependent bool // a map in multivariate_feature_state_values
	}{
		{"django_id", `null`, false}, {"django_id", `1234`, false}, {"django_id", `1234.0`, false},
		{"system_traits", `null`, false}, {"system_traits", ``, false}, {"system_traits", `"x"`, false},
		{"system_traits", `{"b":1,"a":"x","c":null,"d":4.5}`, false}, {"dashboard_alias", `null`, false},
		{"identity_traits", `[{"trait_key":"a"},{"trait_key":"b","trait_value":null}]`, false},
		{"identity_traits", `[{"trait_key":"ok","trait_value":4.0},{"trait_value":1},{"trait_key":"","trait_value":1},{"trait_key":"o","trait_value":{"a":1}},[1]]`, false},
		{"identity_features", `[
			{"feature":{"id":1,"name":"ok","type":"STANDARD"},"enabled":true,"feature_state_value":"v","multivariate_feature_state_values":[{"id":1,"percentage_allocation":100}]},
			{"feature":null,"enabled":true},
			{"enabled":true},
			{"feature":{"id":"abc","name":"bad id"}},
			{"feature":{"id":2.5,"name":"fractional id"}},
			{"feature":{"id":3}},
			"not an object"]`, true},
		{"identity_features", `[{"feature":{"id":"12","name":"f"},"enabled":false,"feature_state_value":{ "a" : [1, 2] }}]`, false},
		{"identity_traits", `12`, false},
	}
	base := jsonItem(t, flagsmithItemJSON)
	for _, f := range fixtures {
		var v types.AttributeValue
		if f.raw != "" {
			v = jsonItem(t, f.raw)
		}
		item := with(base, f.field, v).(*types.AttributeValueMemberM).Value
		got := checkDecode(t, item)
		if old := dynamo.DecodeItemViaJSON(item, false); !f.orderDependent && !sameDecoded(got, old) {
			t.Errorf("%s = %s: read as\n%s\nthe JSON reader, in map order, gives\n%s", f.field, f.raw, decodedText(got), decodedText(old))
		}
	}
}

// TestDecodeItemGenerated reads items Fledge writes for random identities,
// and damaged copies of them and of the table's items.
func TestDecodeItemGenerated(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	cases := decodeCases(t)
	orderDependent := 0
	for seed := range uint64(n) {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		var item map[string]types.AttributeValue
		if seed%3 == 2 {
			item = cases[r.IntN(len(cases))].item.(*types.AttributeValueMemberM).Value
		} else {
			item = fledgeItem(t, randomIdentity(r))
		}
		if seed%2 == 1 {
			junk := make([]byte, 16+r.IntN(256))
			for i := range junk {
				junk[i] = byte(r.Uint32())
			}
			item = mutateItem(item, junk)
		}
		got := checkDecode(t, item)
		if !sameDecoded(got, dynamo.DecodeItemViaJSON(item, false)) {
			orderDependent++
		}
	}
	t.Logf("%d items, %d read differently by the JSON reader in map order", n, orderDependent)
}

// fledgeItem is the item Fledge writes for id.
func fledgeItem(t testing.TB, id *identity.Identity) map[string]types.AttributeValue {
	t.Helper()
	data, err := identity.MarshalItem(id)
	if err != nil {
		t.Fatalf("MarshalItem: %v", err)
	}
	item := jsonItem(t, string(data)).(*types.AttributeValueMemberM).Value
	var floats []string
	for _, tr := range id.Traits {
		if tr.Value.Kind == engine.KindFloat && tr.Value.Float == math.Trunc(tr.Value.Float) {
			floats = append(floats, tr.Key)
		}
	}
	if len(floats) > 0 {
		item["fledge_float_traits"] = SS(floats...)
	}
	item["fledge_version"] = N(fmt.Sprint(len(id.Traits)))
	return item
}

var (
	genKeys    = []string{"a", "name", "age", "名前", "<&>", "", "x\u2028", "k\xff", "trait_key", "4.0"}
	genStrings = []string{"", "x", "007", "1e3", " 7", "<b>&amp;</b>", "名前 🚀", "a\xffb", "true", "null"}
	genValues  = []string{`null`, `"v"`, `12`, `1.5`, `true`, `{"b":1,"a":[1,2.0,"x"]}`, `[]`, `"\u003c"`, `12345678901234567890123`}
)

// randomIdentity makes an identity Fledge could store.
func randomIdentity(r *rand.Rand) *identity.Identity {
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	id := &identity.Identity{
		EnvironmentAPIKey: "env" + pick(genStrings), Identifier: pick(genStrings), UUID: identity.NewUUID(),
		CreatedDate: "2024-03-19T09:41:22.974595+00:00", DashboardAlias: pick(genStrings),
	}
	if r.IntN(2) == 0 {
		d := r.Int64N(1 << 40)
		id.DjangoID = &d
	}
	for range r.IntN(16) {
		var v engine.Value
		switch r.IntN(6) {
		case 0:
			v = engine.String(pick(genStrings))
		case 1:
			v = engine.Int(r.Int64() >> r.IntN(64))
		case 2:
			v = engine.Value{Kind: engine.KindInt, Big: new(big.Int).Lsh(big.NewInt(r.Int64N(1000)+1), 64+uint(r.IntN(40)))}
		case 3:
			v = engine.Float(float64(r.IntN(100)) / 4)
		case 4:
			v = engine.Float(r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20)))
		default:
			v = engine.Bool(r.IntN(2) == 0)
		}
		id.Traits = append(id.Traits, identity.Trait{Key: pick(genKeys), Value: v})
	}
	for i := range r.IntN(4) {
		o := identity.Override{
			Feature: identity.FeatureRef{ID: int64(i + 1), Name: "f" + pick(genStrings), Type: "STANDARD"},
			Enabled: r.IntN(2) == 0, FeatureStateUUID: identity.NewUUID(),
		}
		if v := pick(genValues); v != "null" {
			o.Value = json.RawMessage(v)
		}
		if r.IntN(3) == 0 {
			d := r.Int64N(1000)
			o.DjangoID = &d
		}
		if r.IntN(3) == 0 {
			o.Feature.Type = "MULTIVARIATE"
			o.MultivariateValues = json.RawMessage(`[{"id":1,"multivariate_feature_option":{"value":"a"},"percentage_allocation":30.5},{"id":2,"percentage_allocation":69.5}]`)
		}
		id.Overrides = append(id.Overrides, o)
	}
	for range r.IntN(3) {
		id.SystemTraits = append(id.SystemTraits, identity.Trait{Key: "cohort_" + pick(genKeys), Value: engine.Bool(true)})
	}
	return id
}

// mutator damages an item as the bytes it reads direct, in the ways
// DynamoDB items can differ from what Fledge writes: other attribute
// types (binaries, sets, NULL), numbers JSON does not have, strings that
// are not UTF-8, names in other cases, missing and extra attributes. It is
// deterministic for given bytes (maps are walked in key order).
type mutator struct{ data []byte }

func mutateItem(item map[string]types.AttributeValue, data []byte) map[string]types.AttributeValue {
	m := &mutator{data: data}
	return m.mapValue(item, 1)
}

func (m *mutator) next() byte {
	if len(m.data) == 0 {
		return 0
	}
	c := m.data[0]
	m.data = m.data[1:]
	return c
}

var mutKeys = []string{
	"environment_api_key", "identifier", "identity_uuid", "created_date", "django_id", "identity_traits",
	"identity_features", "dashboard_alias", "system_traits", "fledge_version", "fledge_float_traits",
	"trait_key", "trait_value", "feature", "enabled", "feature_state_value", "featurestate_uuid",
	"multivariate_feature_state_values", "id", "name", "type", "composite_key", "x",
}

func (m *mutator) scalar() types.AttributeValue {
	all := []types.AttributeValue{
		S(""), S("x"), S("12"), S(" 7"), S("1e3"), S("4.0"), S("a\xffb"), S("<&>\u2028"), S("0x1p4"), S("-0"), S("9007199254740993"),
		N("0"), N("-0"), N("7"), N("-12"), N("1.0"), N("4.50"), N("1e3"), N("1E+2"), N("2.5"), N("12345678901234567890123"),
		N("1e400"), N("1e-400"), N("5 "), N("9007199254740993"), N("1e20"), N("+1"), N(".5"), N("1."), N("0x10"), N(""), N("NaN"),
		B(true), B(false), NULL(), BIN('1', '2'), BIN(0xff), BIN(0xd7, 0x6d, 0xf8), M(), L(), L(N("1")), SS("a", "b"), SS(),
		NS("1", "2.5 "), NS("+1"), BS([]byte{1}), M("a", N("1 "), "B", S("x")), M("trait_key", S("k")),
		M("feature", M("id", N("1"), "name", S("f"))), nil,
	}
	return all[int(m.next())%len(all)]
}

func (m *mutator) value(av types.AttributeValue, depth int) types.AttributeValue {
	c := m.next()
	switch {
	case c < 144 || depth > 6:
		switch v := av.(type) {
		case *types.AttributeValueMemberM:
			return &types.AttributeValueMemberM{Value: m.mapValue(v.Value, depth)}
		case *types.AttributeValueMemberL:
			l := make([]types.AttributeValue, len(v.Value))
			for i, e := range v.Value {
				l[i] = m.value(e, depth+1)
			}
			return &types.AttributeValueMemberL{Value: l}
		}
		return av
	case c < 176:
		return m.scalar()
	case c < 200:
		return m.retype(av)
	case c < 208:
		return NULL()
	case c < 216:
		return L(m.value(av, depth+1))
	default:
		return av
	}
}

// retype gives av another type that holds the same content.
func (m *mutator) retype(av types.AttributeValue) types.AttributeValue {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		switch m.next() % 3 {
		case 0:
			return BIN([]byte(v.Value)...)
		case 1:
			return S(v.Value + "\xff")
		default:
			return N(v.Value)
		}
	case *types.AttributeValueMemberN:
		switch m.next() % 3 {
		case 0:
			return S(v.Value)
		case 1:
			return N(v.Value + " ")
		default:
			return N("+" + v.Value)
		}
	case *types.AttributeValueMemberL:
		var ss, ns []string
		for _, e := range v.Value {
			switch e := e.(type) {
			case *types.AttributeValueMemberS:
				ss = append(ss, e.Value)
			case *types.AttributeValueMemberN:
				ns = append(ns, e.Value)
			}
		}
		if m.next()%2 == 0 {
			return SS(ss...)
		}
		return NS(ns...)
	case *types.AttributeValueMemberM:
		l := L()
		for _, k := range slices.Sorted(maps.Keys(v.Value)) {
			l.(*types.AttributeValueMemberL).Value = append(l.(*types.AttributeValueMemberL).Value, v.Value[k])
		}
		return l
	case *types.AttributeValueMemberBOOL:
		return S(fmt.Sprint(v.Value))
	}
	return m.scalar()
}

// renamed returns k in another spelling.
func (m *mutator) renamed(k string) string {
	switch m.next() % 6 {
	case 0:
		return strings.ToUpper(k)
	case 1:
		if k == "" {
			return k
		}
		return strings.ToUpper(k[:1]) + k[1:]
	case 2:
		return strings.Replace(k, "s", "\u017f", 1)
	case 3:
		return strings.Replace(k, "k", "\u212a", 1)
	case 4:
		return strings.Replace(k, "i", "ı", 1)
	default:
		return k + "\xff"
	}
}

func (m *mutator) mapValue(in map[string]types.AttributeValue, depth int) map[string]types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(in))
	for _, k := range slices.Sorted(maps.Keys(in)) {
		v := in[k]
		switch c := m.next(); {
		case c < 200:
			out[k] = m.value(v, depth+1)
		case c < 212:
			out[m.renamed(k)] = v
		case c < 220:
			out[k] = v
			out[m.renamed(k)] = m.value(v, depth+1)
		case c < 232:
			// dropped
		default:
			out[k] = v
		}
	}
	if c := m.next(); c >= 224 {
		out[mutKeys[int(m.next())%len(mutKeys)]] = m.scalar()
	}
	return out
}

// FuzzDecodeItem reads items made of a seed item (JSON, converted as the
// store converts what it writes) damaged as the fuzz bytes direct, with
// the store's reader and the old JSON reader: they agree.
func FuzzDecodeItem(f *testing.F) {
	for i, tc := range decodeCases(f) {
		data, err := dynamo.AVJSON(tc.item)
		if err != nil || len(data) > 4096 {
			continue // not JSON (the damage brings such items back), or deep and slow
		}
		f.Add(string(data), []byte{byte(i), byte(i * 37), 255, 230, 180, 100})
	}
	f.Add(flagsmithItemJSON, []byte{})
	f.Fuzz(func(t *testing.T, seed string, damage []byte) {
		av, err := avjson.FromJSON([]byte(seed))
		m, ok := av.(*types.AttributeValueMemberM)
		if err != nil || !ok {
			t.Skip("not a JSON object")
		}
		checkDecode(t, mutateItem(m.Value, damage))
	})
}

// TestDecodeOverride reads override items' feature_state attributes: the
// features of the table's items, one by one, and damaged copies.
func TestDecodeOverride(t *testing.T) {
	var states []types.AttributeValue
	for _, tc := range decodeCases(t) {
		if l, ok := tc.item.(*types.AttributeValueMemberM).Value["identity_features"].(*types.AttributeValueMemberL); ok {
			states = append(states, l.Value...)
		}
	}
	states = append(states, N("+1"), L(feature("enabled", N("01"))), nil, nested(10000), nested(10001),
		M("feature", nested(9999)), M("feature", nested(10000)))
	r := rand.New(rand.NewPCG(1, 2))
	for i, fs := range states {
		for round := range 4 {
			if round > 0 {
				junk := make([]byte, 64)
				for j := range junk {
					junk[j] = byte(r.Uint32())
				}
				fs = (&mutator{data: junk}).value(fs, 1)
			}
			got, gotErr := dynamo.DecodeOverride(fs)
			want, wantErr := dynamo.DecodeOverrideViaJSON(fs, true)
			if !reflect.DeepEqual(got, want) || errText(gotErr) != errText(wantErr) {
				t.Fatalf("state %d round %d: %s\nread as %+v, %v\nthe JSON reader gives %+v, %v", i, round, avText(fs), got, gotErr, want, wantErr)
			}
		}
	}
}

// BenchmarkDecodeItem reads an identity item with 2 or 15 traits and one
// override, as core writes it: with the store's reader (direct) and with
// the JSON reader it replaced (json).
func BenchmarkDecodeItem(b *testing.B) {
	for _, n := range []int{2, 15} {
		item := benchItem(n)
		b.Run(fmt.Sprintf("traits=%d/direct", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := dynamo.DecodeItem(item); d.Err != nil {
					b.Fatal(d.Err)
				}
			}
		})
		b.Run(fmt.Sprintf("traits=%d/json", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := dynamo.DecodeItemViaJSON(item, false); d.Err != nil {
					b.Fatal(d.Err)
				}
			}
		})
	}
}

func benchItem(traits int) map[string]types.AttributeValue {
	l := make([]types.AttributeValue, 0, traits)
	for i := range traits {
		var v types.AttributeValue
		switch i % 4 {
		case 0:
			v = S(fmt.Sprint("value-", i))
		case 1:
			v = N(fmt.Sprint(i * 1000))
		case 2:
			v = N("0.25")
		default:
			v = B(i%2 == 0)
		}
		l = append(l, trait(fmt.Sprint("trait_", i), v))
	}
	return with(coreItem("pQuzvsMLQoOVAwITrTWDQJ", "57c6edf1bbf145a1a23ea287ce44877f"),
		"django_id", NULL(), "system_traits", nil, "identity_traits", L(l...),
		"identity_features", L(feature()), "fledge_version", N("3"),
	).(*types.AttributeValueMemberM).Value
}
