package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/engine"
)

var testTime = time.Date(2024, 3, 19, 9, 41, 22, 974595000, time.FixedZone("CET", 3600))

func TestValidate(t *testing.T) {
	valid := func() *Identity {
		return &Identity{EnvironmentAPIKey: "env", Identifier: "u", Traits: []Trait{{"a", engine.Int(1)}}}
	}
	cases := []struct {
		name   string
		mutate func(*Identity)
		want   error
	}{
		{"valid", func(*Identity) {}, nil},
		{"1024 byte identifier", func(id *Identity) { id.Identifier = strings.Repeat("a", 1024) }, nil},
		{"1025 byte identifier", func(id *Identity) { id.Identifier = strings.Repeat("a", 1025) }, ErrInvalid},
		{"600 CJK characters", func(id *Identity) { id.Identifier = strings.Repeat("名", 600) }, ErrInvalid},
		{"341 CJK characters", func(id *Identity) { id.Identifier = strings.Repeat("名", 341) }, nil},
		{"empty identifier", func(id *Identity) { id.Identifier = "" }, ErrInvalid},
		{"invalid UTF-8", func(id *Identity) { id.Identifier = "\xff" }, ErrInvalid},
		{"no environment", func(id *Identity) { id.EnvironmentAPIKey = "" }, ErrInvalid},
		{"100 character alias", func(id *Identity) { id.DashboardAlias = strings.Repeat("é", 100) }, nil},
		{"101 character alias", func(id *Identity) { id.DashboardAlias = strings.Repeat("é", 101) }, ErrInvalid},
		{"empty trait key", func(id *Identity) { id.Traits[0].Key = "" }, ErrInvalid},
		{"200 character key", func(id *Identity) { id.Traits[0].Key = strings.Repeat("名", 200) }, nil},
		{"201 character key", func(id *Identity) { id.Traits[0].Key = strings.Repeat("名", 201) }, ErrInvalid},
		{"2000 character value", func(id *Identity) { id.Traits[0].Value = engine.String(strings.Repeat("名", 2000)) }, nil},
		{"2001 character value", func(id *Identity) { id.Traits[0].Value = engine.String(strings.Repeat("名", 2001)) }, ErrInvalid},
		{"null value", func(id *Identity) { id.Traits[0].Value = engine.None() }, ErrInvalid},
		{"NaN", func(id *Identity) { id.Traits[0].Value = engine.Float(math.NaN()) }, ErrInvalid},
		{"infinity", func(id *Identity) { id.Traits[0].Value = engine.Float(math.Inf(-1)) }, ErrInvalid},
		{"two overrides of a feature", func(id *Identity) {
			id.Overrides = []Override{{Feature: FeatureRef{ID: 1, Name: "f"}}, {Feature: FeatureRef{ID: 1, Name: "f"}}}
		}, ErrInvalid},
		{"overrides of two features", func(id *Identity) {
			id.Overrides = []Override{{Feature: FeatureRef{ID: 1, Name: "f"}}, {Feature: FeatureRef{ID: 2, Name: "g"}}}
		}, nil},
		{"over 400 KB", func(id *Identity) {
			for i := range 210 {
				id.Traits = append(id.Traits, Trait{fmt.Sprint(i), engine.String(strings.Repeat("x", 2000))})
			}
		}, ErrTooLarge},
	}
	for _, tc := range cases {
		id := valid()
		tc.mutate(id)
		err := Validate(id)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: Validate = %v; want %v", tc.name, err, tc.want)
		}
	}
}

func TestNewUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		u := NewUUID()
		if !re.MatchString(u) {
			t.Fatalf("NewUUID() = %q; not a version 4 UUID", u)
		}
		if seen[u] {
			t.Fatalf("NewUUID() repeated %q", u)
		}
		seen[u] = true
	}
}

func TestNow(t *testing.T) {
	if got, want := Now(testTime), "2024-03-19T08:41:22.974595+00:00"; got != want {
		t.Errorf("Now = %q; want %q", got, want)
	}
}

func TestKeys(t *testing.T) {
	if got := CompositeKey("env", "a_b"); got != "env_a_b" {
		t.Errorf("CompositeKey = %q", got)
	}
	if got := OverrideDocumentKey(67, "u-1"); got != "identity_override:67:u-1" {
		t.Errorf("OverrideDocumentKey = %q", got)
	}
}

func TestCloneIsDeep(t *testing.T) {
	d := int64(1)
	orig := &Identity{
		EnvironmentAPIKey: "env", Identifier: "u", DjangoID: &d,
		Traits:       []Trait{{"big", engine.Value{Kind: engine.KindInt, Big: big.NewInt(5)}}},
		Overrides:    []Override{{Feature: FeatureRef{ID: 1}, Value: json.RawMessage(`"v"`), MultivariateValues: json.RawMessage(`[1]`), DjangoID: &d}},
		SystemTraits: []Trait{{"c", engine.Bool(true)}},
	}
	before, _ := MarshalItem(orig)
	c := orig.Clone()
	*c.DjangoID = 2
	c.Traits[0].Value.Big.SetInt64(6)
	c.Traits = append(c.Traits[:0], Trait{"x", engine.Int(1)})
	c.Overrides[0].Value[1] = 'X'
	c.Overrides[0].MultivariateValues[1] = '2'
	*c.Overrides[0].DjangoID = 3
	c.SystemTraits[0].Key = "d"
	if after, _ := MarshalItem(orig); string(after) != string(before) {
		t.Errorf("changing a clone changed the original:\n%s\n%s", before, after)
	}
	if (*Identity)(nil).Clone() != nil {
		t.Error("Clone of nil")
	}
}
