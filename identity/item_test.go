package identity

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/fledge-flags/fledge/engine"
)

// flagsmithItem is api.md §4.5's example item, as Flagsmith writes it.
const flagsmithItem = `{
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

func TestUnmarshalFlagsmithItem(t *testing.T) {
	got, problems, err := UnmarshalItem([]byte(flagsmithItem))
	if err != nil || len(problems) != 0 {
		t.Fatalf("UnmarshalItem = %v, %v", problems, err)
	}
	want := &Identity{
		EnvironmentAPIKey: "pQuzvsMLQoOVAwITrTWDQJ",
		Identifier:        "57c6edf1bbf145a1a23ea287ce44877f",
		UUID:              "118ecfc9-5234-4218-8af8-dd994dbfedc0",
		CreatedDate:       "2024-03-19T09:41:22.974595+00:00",
		Traits:            []Trait{{Key: "test_trait", Value: engine.Int(42)}},
		Overrides: []Override{{
			Feature: FeatureRef{ID: 67, Name: "test_feature", Type: "STANDARD"}, Enabled: true,
			FeatureStateUUID: "20988957-d345-424e-9abc-1dc5a814da48",
		}},
		DashboardAlias: "qa account",
		SystemTraits:   []Trait{{Key: "cohort_42", Value: engine.Bool(true)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

// withField returns flagsmithItem with one top-level attribute replaced
// (or, with raw "", removed).
func withField(t *testing.T, name, raw string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(flagsmithItem), &m); err != nil {
		t.Fatal(err)
	}
	if raw == "" {
		delete(m, name)
	} else {
		m[name] = json.RawMessage(raw)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnmarshalTolerance(t *testing.T) {
	cases := []struct {
		name, field, raw string
		check            func(t *testing.T, id *Identity)
		problems         int
	}{
		{"django_id null", "django_id", `null`, func(t *testing.T, id *Identity) {
			if id.DjangoID != nil {
				t.Errorf("DjangoID = %d", *id.DjangoID)
			}
		}, 0},
		{"django_id number", "django_id", `1234`, func(t *testing.T, id *Identity) {
			if id.DjangoID == nil || *id.DjangoID != 1234 {
				t.Errorf("DjangoID = %v", id.DjangoID)
			}
		}, 0},
		{"django_id as a decimal", "django_id", `1234.0`, func(t *testing.T, id *Identity) {
			if id.DjangoID == nil || *id.DjangoID != 1234 {
				t.Errorf("DjangoID = %v", id.DjangoID)
			}
		}, 0},
		{"system_traits null", "system_traits", `null`, func(t *testing.T, id *Identity) {
			if id.SystemTraits != nil {
				t.Errorf("SystemTraits = %v", id.SystemTraits)
			}
		}, 0},
		{"system_traits absent", "system_traits", ``, func(t *testing.T, id *Identity) {
			if id.SystemTraits != nil {
				t.Errorf("SystemTraits = %v", id.SystemTraits)
			}
		}, 0},
		{"system_traits not an object", "system_traits", `"x"`, func(t *testing.T, id *Identity) {
			if id.SystemTraits != nil {
				t.Errorf("SystemTraits = %v", id.SystemTraits)
			}
		}, 1},
		{"system_traits sorted, nulls dropped", "system_traits", `{"b":1,"a":"x","c":null,"d":4.5}`, func(t *testing.T, id *Identity) {
			want := []Trait{{"a", engine.String("x")}, {"b", engine.Int(1)}, {"d", engine.Float(4.5)}}
			if !reflect.DeepEqual(id.SystemTraits, want) {
				t.Errorf("SystemTraits = %v", id.SystemTraits)
			}
		}, 0},
		{"dashboard_alias null", "dashboard_alias", `null`, func(t *testing.T, id *Identity) {
			if id.DashboardAlias != "" {
				t.Errorf("DashboardAlias = %q", id.DashboardAlias)
			}
		}, 0},
		{"trait without trait_value", "identity_traits", `[{"trait_key":"a"},{"trait_key":"b","trait_value":null}]`, func(t *testing.T, id *Identity) {
			want := []Trait{{"a", engine.String("")}, {"b", engine.String("")}}
			if !reflect.DeepEqual(id.Traits, want) {
				t.Errorf("Traits = %v; want blanks (flagsmith#2806)", id.Traits)
			}
		}, 0},
		{"unreadable traits skipped", "identity_traits", `[{"trait_key":"ok","trait_value":4.0},{"trait_value":1},{"trait_key":"","trait_value":1},{"trait_key":"o","trait_value":{"a":1}},[1]]`, func(t *testing.T, id *Identity) {
			if want := []Trait{{"ok", engine.Float(4)}}; !reflect.DeepEqual(id.Traits, want) {
				t.Errorf("Traits = %v", id.Traits)
			}
		}, 4},
		{"overrides with bad features skipped", "identity_features", `[
			{"feature":{"id":1,"name":"ok","type":"STANDARD"},"enabled":true,"feature_state_value":"v","multivariate_feature_state_values":[{"id":1,"percentage_allocation":100}]},
			{"feature":null,"enabled":true},
			{"enabled":true},
			{"feature":{"id":"abc","name":"bad id"}},
			{"feature":{"id":2.5,"name":"fractional id"}},
			{"feature":{"id":3}},
			"not an object"]`, func(t *testing.T, id *Identity) {
			if len(id.Overrides) != 1 || id.Overrides[0].Feature.Name != "ok" ||
				string(id.Overrides[0].Value) != `"v"` || string(id.Overrides[0].MultivariateValues) != `[{"id":1,"percentage_allocation":100}]` {
				t.Errorf("Overrides = %+v", id.Overrides)
			}
		}, 6},
		{"feature id as a string", "identity_features", `[{"feature":{"id":"12","name":"f"},"enabled":false,"feature_state_value":{ "a" : [1, 2] }}]`, func(t *testing.T, id *Identity) {
			if len(id.Overrides) != 1 || id.Overrides[0].Feature.ID != 12 || string(id.Overrides[0].Value) != `{"a":[1,2]}` {
				t.Errorf("Overrides = %+v", id.Overrides)
			}
		}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, problems, err := UnmarshalItem(withField(t, tc.field, tc.raw))
			if err != nil {
				t.Fatalf("UnmarshalItem: %v", err)
			}
			if len(problems) != tc.problems {
				t.Errorf("problems %q; want %d", problems, tc.problems)
			}
			tc.check(t, id)
		})
	}
	for _, bad := range []string{``, `{`, `[]`, `{"identity_traits": 12}`} {
		if _, _, err := UnmarshalItem([]byte(bad)); err == nil {
			t.Errorf("UnmarshalItem(%q) succeeded", bad)
		}
	}
}

func TestItemRoundTrip(t *testing.T) {
	django, ovDjango := int64(77), int64(88)
	big70 := new(big.Int).Lsh(big.NewInt(1), 70)
	id := &Identity{
		EnvironmentAPIKey: "env", Identifier: "user <1> & \"2\"", UUID: NewUUID(), CreatedDate: Now(testTime),
		DjangoID: &django,
		Traits: []Trait{
			{"z", engine.String("first")}, {"int", engine.Int(-3)}, {"big", engine.Value{Kind: engine.KindInt, Big: big70}},
			{"float", engine.Float(4)}, {"tiny", engine.Float(1e-300)}, {"bool", engine.Bool(false)},
			{"html", engine.String("<b>&amp;</b>")}, {"empty", engine.String("")}, {"unicode", engine.String("名前 🚀")},
		},
		Overrides: []Override{
			{Feature: FeatureRef{ID: 1, Name: "a", Type: "STANDARD"}, Enabled: true, Value: json.RawMessage(`"<v>"`), FeatureStateUUID: NewUUID(), DjangoID: &ovDjango},
			{Feature: FeatureRef{ID: 2, Name: "b", Type: "MULTIVARIATE"}, Value: json.RawMessage(`12345678901234567890`),
				MultivariateValues: json.RawMessage(`[{"id":1,"multivariate_feature_option":2,"percentage_allocation":30.5}]`)},
			{Feature: FeatureRef{ID: 3, Name: "c"}},
		},
		DashboardAlias: "alias",
		SystemTraits:   []Trait{{"cohort_1", engine.Bool(true)}, {"cohort_2", engine.Float(2)}},
	}
	data, err := MarshalItem(id)
	if err != nil {
		t.Fatal(err)
	}
	got, problems, err := UnmarshalItem(data)
	if err != nil || len(problems) > 0 {
		t.Fatalf("UnmarshalItem = %v, %v", problems, err)
	}
	if !reflect.DeepEqual(got, id) {
		t.Fatalf("round trip:\n got %+v\nwant %+v\nitem %s", got, id, data)
	}
	// Flagsmith's shape, and no HTML escaping (Python's json writes none).
	for _, want := range []string{
		`"composite_key":"env_user <1> & \"2\""`, `"trait_value":4.0`, `"trait_value":1180591620717411303424`,
		`"feature_segment":null`, `"multivariate_feature_state_values":[]`, `"feature_state_value":null`,
		`"system_traits":{"cohort_1":true,"cohort_2":2.0}`, `"feature_state_value":"<v>"`, `"django_id":77`,
	} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("item lacks %s:\n%s", want, data)
		}
	}
	if EncodedSize(id) != len(data) {
		t.Errorf("EncodedSize = %d; item is %d bytes", EncodedSize(id), len(data))
	}
	// No system traits: the attribute is absent, not null.
	id.SystemTraits = nil
	if data, _ := MarshalItem(id); bytes.Contains(data, []byte("system_traits")) {
		t.Errorf("item without system traits: %s", data)
	}
}

func TestParseID(t *testing.T) {
	cases := []struct {
		in string
		id int64
		ok bool
	}{
		{"12", 12, true}, {"-7", -7, true}, {"-0", 0, true}, {"12.0", 12, true}, {"1e3", 1000, true}, {"1E+2", 100, true},
		{"9007199254740993", 9007199254740993, true}, {"9007199254740992.0", 1 << 53, true},
		{"1e17", 0, false}, {"2.5", 0, false}, {"abc", 0, false}, {"", 0, false}, {" 1", 0, false},
		{"9223372036854775808", 0, false}, {"inf", 0, false}, {"NaN", 0, false},
	}
	for _, tc := range cases {
		if id, ok := ParseID(tc.in); id != tc.id || ok != tc.ok {
			t.Errorf("ParseID(%q) = %d, %t; want %d, %t", tc.in, id, ok, tc.id, tc.ok)
		}
	}
}

func TestValueJSON(t *testing.T) {
	big70 := new(big.Int).Lsh(big.NewInt(1), 70)
	cases := []struct {
		v    engine.Value
		want string
	}{
		{engine.Int(0), `0`}, {engine.Int(-7), `-7`}, {engine.Int(math.MaxInt64), `9223372036854775807`},
		{engine.Value{Kind: engine.KindInt, Big: big70}, `1180591620717411303424`},
		{engine.Float(4), `4.0`}, {engine.Float(0), `0.0`}, {engine.Float(-2.5), `-2.5`}, {engine.Float(0.1), `0.1`},
		{engine.Float(1e21), `1e+21`}, {engine.Float(1e-7), `1e-07`}, {engine.Float(123456789), `1.23456789e+08`},
		{engine.Bool(true), `true`}, {engine.Bool(false), `false`},
		{engine.String(`a"b\c`), `"a\"b\\c"`}, {engine.None(), `null`},
	}
	for _, tc := range cases {
		got := ValueJSON(tc.v)
		if string(got) != tc.want {
			t.Errorf("ValueJSON(%#v) = %s; want %s", tc.v, got, tc.want)
		}
		back, ok := ValueFromJSON(got)
		if !ok || !reflect.DeepEqual(back, tc.v) {
			t.Errorf("ValueFromJSON(%s) = %#v, %t; want %#v", got, back, ok, tc.v)
		}
		// Appending after other bytes (an exponent or a point among them)
		// gives the same encoding.
		const prefix = `{"e":1.5e3,"v":`
		if got := AppendValueJSON([]byte(prefix), tc.v); string(got) != prefix+tc.want {
			t.Errorf("AppendValueJSON(%q, %#v) = %s; want %s", prefix, tc.v, got, prefix+tc.want)
		}
	}
}

func TestCoerce(t *testing.T) {
	bigV := func(s string) engine.Value {
		b, _ := new(big.Int).SetString(s, 10)
		return engine.Value{Kind: engine.KindInt, Big: b}
	}
	digits := func(n int) string { return strings.Repeat("9", n) }
	cases := []struct {
		in   engine.Value
		want engine.Value
	}{
		{engine.String("007"), engine.Int(7)},
		{engine.String("-0"), engine.Int(0)},
		{engine.String("42"), engine.Int(42)},
		{engine.String("-12"), engine.Int(-12)},
		{engine.String("1.50"), engine.Float(1.5)},
		{engine.String("-0.5"), engine.Float(-0.5)},
		{engine.String("4.0"), engine.Float(4)},
		{engine.String("9223372036854775808"), bigV("9223372036854775808")},
		{engine.String(digits(38)), bigV(digits(38))},
		{engine.String(" 1"), engine.String(" 1")},
		{engine.String("1 "), engine.String("1 ")},
		{engine.String("+5"), engine.String("+5")},
		{engine.String("1e5"), engine.String("1e5")},
		{engine.String("1_000"), engine.String("1_000")},
		{engine.String("1."), engine.String("1.")},
		{engine.String(".5"), engine.String(".5")},
		{engine.String("0x10"), engine.String("0x10")},
		{engine.String("١٢"), engine.String("١٢")},
		{engine.String(""), engine.String("")},
		{engine.String("-"), engine.String("-")},
		{engine.String(digits(40)), engine.String(digits(40))}, // DynamoDB holds 38 digits
		{engine.Int(5), engine.Int(5)},
		{engine.Float(5), engine.Float(5)},
		{engine.Bool(true), engine.Bool(true)},
	}
	for _, tc := range cases {
		if got := Coerce(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Coerce(%#v) = %#v; want %#v", tc.in, got, tc.want)
		}
	}
}
