// Package identitytest is the contract every identity.Store must meet: one
// suite, run by each store's own tests against a fresh store, so that the
// embedded store and the DynamoDB store cannot drift apart.
//
//	func TestContract(t *testing.T) {
//		identitytest.Run(t, func(t *testing.T) identity.Store { return openTestStore(t) })
//	}
//
// The suite never closes a store: open registers Close with t.Cleanup when
// the store is the test's own. Every subtest works in environments with
// fresh random keys, so open may also hand back one shared store (one
// DynamoDB table for the whole run).
//
// Reads through secondary indexes (GetByUUID, List, Overrides) are retried
// for a short while before a check fails, because DynamoDB's GSIs are
// eventually consistent (edge-api.md item 23); Get must be consistent at
// once.
package identitytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// SystemTraitSetter is implemented by stores that can seed system_traits the
// way their other writer (core's cohorts) does, outside Update: for
// DynamoDB an UpdateItem on system_traits.<key>. The suite uses it to check
// that Update keeps stored system traits; a store without it skips those
// subtests.
type SystemTraitSetter interface {
	// SetSystemTrait sets system_traits[key] on an existing identity (a
	// KindNone value removes the key), or returns identity.ErrNotFound.
	SetSystemTrait(ctx context.Context, envKey, identifier, key string, v engine.Value) error
}

// NumberRanger is implemented by stores whose numbers cannot hold every
// float64 or integer: DynamoDB's span 38 significant digits and magnitudes
// from 1e-130 to below 1e126, so 1e-300 or 1.5e300 cannot be written there
// at all. For such a store the suite round-trips only the trait values in
// range, and expects Update to refuse each value outside it with
// identity.ErrInvalid, writing nothing.
type NumberRanger interface {
	NumberInRange(v engine.Value) bool
}

// AliasTiesUnordered is implemented by stores that cannot order identities
// sharing one dashboard_alias by identifier: DynamoDB's alias index sorts
// by alias alone and returns ties in its own order. For such a store the
// suite checks alias listings for order by alias only (and, as for every
// store, that pages join up to each identity exactly once).
type AliasTiesUnordered interface {
	AliasTiesUnordered()
}

// indexWait bounds the retries of index reads (see the package comment).
const indexWait = 5 * time.Second

type contractTest struct {
	name string
	run  func(t *testing.T, s identity.Store)
}

// Run runs the contract suite: one subtest per promise of identity.Store,
// each against a store from open.
func Run(t *testing.T, open func(t *testing.T) identity.Store) {
	tests := []contractTest{
		{"Get/Missing", testGetMissing},
		{"Update/Creates", testUpdateCreates},
		{"Update/KeepsGivenUUIDAndCreatedDate", testUpdateKeepsGiven},
		{"Update/Updates", testUpdateUpdates},
		{"Update/FuncGetsPrivateCopy", testUpdatePrivateCopy},
		{"Update/SkipNew", testUpdateSkipNew},
		{"Update/SkipExisting", testUpdateSkipExisting},
		{"Update/FuncError", testUpdateFuncError},
		{"Update/KeepsSystemTraits", testUpdateKeepsSystemTraits},
		{"Update/NewDropsSystemTraits", testUpdateNewDropsSystemTraits},
		{"Update/Concurrent", testUpdateConcurrent},
		{"Update/ConcurrentWithSystemTraits", testUpdateConcurrentSystemTraits},
		{"Update/ConcurrentMixedOutcomes", testUpdateConcurrentMixed},
		{"Update/ReadYourWrites", testReadYourWrites},
		{"Values/TraitsRoundTrip", testTraitValues},
		{"Values/OverridesRoundTrip", testOverrideValues},
		{"Validate", testValidate},
		{"GetByUUID", testGetByUUID},
		{"Delete", testDelete},
		{"List/SearchAndOrder", testListSearch},
		{"List/Pages", testListPages},
		{"List/CursorSurvivesDelete", testListCursorSurvivesDelete},
		{"List/OtherEnvironments", testListOtherEnvironments},
		{"Overrides/OrderAndFilter", testOverridesOrder},
		{"Overrides/FollowUpdatesAndDeletes", testOverridesChanges},
		{"Context", testContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

// ---- helpers ----------------------------------------------------------------

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newEnv returns an environment no other test uses. ID is numeric, as
// Flagsmith's are.
func newEnv() identity.Env {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return identity.Env{APIKey: "ct" + randHex(10), ID: strconv.FormatUint(uint64(binary.BigEndian.Uint32(b[:])>>2)+1, 10)}
}

// put creates or replaces an identity with the given traits, overrides and
// alias, returning what the store returned.
func put(t *testing.T, s identity.Store, env identity.Env, identifier string, mutate func(*identity.Identity)) *identity.Identity {
	t.Helper()
	got, err := s.Update(t.Context(), env, identifier, func(cur *identity.Identity) (*identity.Identity, error) {
		if cur == nil {
			cur = &identity.Identity{EnvironmentAPIKey: env.APIKey, Identifier: identifier}
		}
		if mutate != nil {
			mutate(cur)
		}
		return cur, nil
	})
	if err != nil {
		t.Fatalf("Update(%q): %v", identifier, err)
	}
	if got == nil {
		t.Fatalf("Update(%q) returned nil identity", identifier)
	}
	return got
}

func mustGet(t *testing.T, s identity.Store, envKey, identifier string) *identity.Identity {
	t.Helper()
	got, err := s.Get(t.Context(), envKey, identifier)
	if err != nil {
		t.Fatalf("Get(%q): %v", identifier, err)
	}
	return got
}

func wantNotFound(t *testing.T, s identity.Store, envKey, identifier string) {
	t.Helper()
	got, err := s.Get(t.Context(), envKey, identifier)
	if !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("Get(%q) = %v, %v; want ErrNotFound", identifier, describe(got), err)
	}
}

// eventually retries check until it returns nil or indexWait passes.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(indexWait)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || t.Context().Err() != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func trait(k string, v engine.Value) identity.Trait { return identity.Trait{Key: k, Value: v} }

func override(id int64, name string, enabled bool, value string) identity.Override {
	o := identity.Override{
		Feature:          identity.FeatureRef{ID: id, Name: name, Type: "STANDARD"},
		Enabled:          enabled,
		FeatureStateUUID: identity.NewUUID(),
	}
	if value != "" {
		o.Value = json.RawMessage(value)
	}
	return o
}

// describeValue spells out a value with its kind, so that 4 and 4.0 or 7
// and "7" differ, and floats are compared bit for bit.
func describeValue(v engine.Value) string {
	switch v.Kind {
	case engine.KindNone:
		return "none"
	case engine.KindString:
		return "string:" + strconv.Quote(v.Str)
	case engine.KindBool:
		return fmt.Sprintf("bool:%t", v.Int != 0)
	case engine.KindInt:
		if v.Big != nil {
			return "int:" + v.Big.String()
		}
		return "int:" + strconv.FormatInt(v.Int, 10)
	case engine.KindFloat:
		return fmt.Sprintf("float:%s(%#x)", strconv.FormatFloat(v.Float, 'g', -1, 64), math.Float64bits(v.Float))
	}
	return fmt.Sprintf("kind%d", v.Kind)
}

// canonJSON reduces JSON to a canonical text that keeps number literals as
// written (4.0 is not 4) but ignores spacing, key order and escaping.
func canonJSON(raw json.RawMessage) string {
	if raw == nil {
		return "<nil>"
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return "invalid JSON " + strconv.Quote(string(raw))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(x)
	return strings.TrimSpace(b.String())
}

func describeInt(p *int64) string {
	if p == nil {
		return "nil"
	}
	return strconv.FormatInt(*p, 10)
}

func describeOverride(o identity.Override) string {
	return fmt.Sprintf("feature={%d %q %q} enabled=%t value=%s mv=%s featurestate_uuid=%q django_id=%s",
		o.Feature.ID, o.Feature.Name, o.Feature.Type, o.Enabled, canonJSON(o.Value),
		canonJSON(o.MultivariateValues), o.FeatureStateUUID, describeInt(o.DjangoID))
}

// describe is a complete, comparable text of an identity. System traits
// are sorted by key: stores keep them in a map.
func describe(id *identity.Identity) string {
	if id == nil {
		return "<nil identity>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "environment_api_key=%q\nidentifier=%q\nuuid=%q\ncreated_date=%q\ndjango_id=%s\ndashboard_alias=%q\n",
		id.EnvironmentAPIKey, id.Identifier, id.UUID, id.CreatedDate, describeInt(id.DjangoID), id.DashboardAlias)
	for _, tr := range id.Traits {
		fmt.Fprintf(&b, "trait %q = %s\n", tr.Key, describeValue(tr.Value))
	}
	for _, o := range id.Overrides {
		fmt.Fprintf(&b, "override %s\n", describeOverride(o))
	}
	sys := slices.Clone(id.SystemTraits)
	slices.SortFunc(sys, func(a, b identity.Trait) int { return strings.Compare(a.Key, b.Key) })
	for _, tr := range sys {
		fmt.Fprintf(&b, "system trait %q = %s\n", tr.Key, describeValue(tr.Value))
	}
	return b.String()
}

func sameIdentity(t *testing.T, what string, want, got *identity.Identity) {
	t.Helper()
	if w, g := describe(want), describe(got); w != g {
		t.Fatalf("%s:\n--- want\n%s--- got\n%s", what, w, g)
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// createdDateLayout parses ISO-8601 with an offset, fractional seconds
// optional.
const createdDateLayout = "2006-01-02T15:04:05.999999999-07:00"

func identifiers(ids []*identity.Identity) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.Identifier
	}
	return out
}

// ---- Get and Update ---------------------------------------------------------

func testGetMissing(t *testing.T, s identity.Store) {
	env, other := newEnv(), newEnv()
	put(t, s, other, "present", nil)
	wantNotFound(t, s, env.APIKey, "absent")
	wantNotFound(t, s, env.APIKey, "present") // exists only in another environment
	if got, err := s.GetByUUID(t.Context(), identity.NewUUID()); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("GetByUUID(random) = %s, %v; want ErrNotFound", describe(got), err)
	}
}

func testUpdateCreates(t *testing.T, s identity.Store) {
	env := newEnv()
	before := time.Now().Add(-time.Minute)
	var sawCur []*identity.Identity
	var mu sync.Mutex
	want := &identity.Identity{
		EnvironmentAPIKey: env.APIKey,
		Identifier:        "new-user",
		Traits:            []identity.Trait{trait("plan", engine.String("gold")), trait("age", engine.Int(42))},
		Overrides:         []identity.Override{override(7, "banner", true, `"blue"`)},
		DashboardAlias:    "qa user",
	}
	got, err := s.Update(t.Context(), env, "new-user", func(cur *identity.Identity) (*identity.Identity, error) {
		mu.Lock()
		sawCur = append(sawCur, cur)
		mu.Unlock()
		return want.Clone(), nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	for _, c := range sawCur {
		if c != nil {
			t.Fatalf("fn got %s for a new identity; want nil", describe(c))
		}
	}
	if len(sawCur) == 0 {
		t.Fatal("fn was never called")
	}
	if !uuidRE.MatchString(got.UUID) {
		t.Errorf("UUID %q is not a version 4 UUID", got.UUID)
	}
	created, err := time.Parse(createdDateLayout, got.CreatedDate)
	if err != nil {
		t.Errorf("CreatedDate %q is not ISO-8601 with an offset: %v", got.CreatedDate, err)
	} else if created.Before(before) || created.After(time.Now().Add(time.Minute)) {
		t.Errorf("CreatedDate %q is not now", got.CreatedDate)
	}
	want.UUID, want.CreatedDate = got.UUID, got.CreatedDate
	sameIdentity(t, "Update result", want, got)
	sameIdentity(t, "Get after Update", want, mustGet(t, s, env.APIKey, "new-user"))

	// A second identity gets a different UUID.
	if other := put(t, s, env, "new-user-2", nil); other.UUID == got.UUID || !uuidRE.MatchString(other.UUID) {
		t.Errorf("second identity's UUID %q (first %q)", other.UUID, got.UUID)
	}
}

func testUpdateKeepsGiven(t *testing.T, s identity.Store) {
	env := newEnv()
	uuid, created := identity.NewUUID(), "2024-03-19T09:41:22.974595+00:00"
	django := int64(12345)
	got := put(t, s, env, "migrated", func(id *identity.Identity) {
		id.UUID, id.CreatedDate, id.DjangoID = uuid, created, &django
	})
	if got.UUID != uuid || got.CreatedDate != created || got.DjangoID == nil || *got.DjangoID != django {
		t.Fatalf("Update replaced given fields: %s", describe(got))
	}
	stored := mustGet(t, s, env.APIKey, "migrated")
	if stored.UUID != uuid || stored.CreatedDate != created || describeInt(stored.DjangoID) != "12345" {
		t.Fatalf("stored: %s", describe(stored))
	}
}

func testUpdateUpdates(t *testing.T, s identity.Store) {
	env := newEnv()
	first := put(t, s, env, "u", func(id *identity.Identity) {
		id.Traits = []identity.Trait{trait("a", engine.Int(1)), trait("b", engine.String("x"))}
		id.Overrides = []identity.Override{override(1, "f1", true, `"v1"`)}
	})
	var seen *identity.Identity
	got, err := s.Update(t.Context(), env, "u", func(cur *identity.Identity) (*identity.Identity, error) {
		seen = cur.Clone()
		cur.Traits[0].Value = engine.Int(2)
		cur.Traits = append(cur.Traits[:1], trait("c", engine.Bool(true)))
		cur.Overrides[0].Enabled = false
		cur.DashboardAlias = "renamed"
		return cur, nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	sameIdentity(t, "fn's current identity", first, seen)
	want := first.Clone()
	want.Traits = []identity.Trait{trait("a", engine.Int(2)), trait("c", engine.Bool(true))}
	want.Overrides[0].Enabled = false
	want.DashboardAlias = "renamed"
	sameIdentity(t, "Update result (UUID and CreatedDate kept)", want, got)
	sameIdentity(t, "Get", want, mustGet(t, s, env.APIKey, "u"))

	// A function that builds a fresh identity, without UUID and created
	// date, still updates the same identity.
	got, err = s.Update(t.Context(), env, "u", func(cur *identity.Identity) (*identity.Identity, error) {
		return &identity.Identity{EnvironmentAPIKey: env.APIKey, Identifier: "u", Traits: cur.Traits}, nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want.Overrides, want.DashboardAlias = nil, ""
	sameIdentity(t, "after an update from a fresh identity", want, got)
	sameIdentity(t, "Get after an update from a fresh identity", want, mustGet(t, s, env.APIKey, "u"))
}

func testUpdatePrivateCopy(t *testing.T, s identity.Store) {
	env := newEnv()
	stored := put(t, s, env, "u", func(id *identity.Identity) {
		id.Traits = []identity.Trait{trait("a", engine.Int(1))}
		id.Overrides = []identity.Override{override(1, "f1", true, `"v"`)}
	})
	want := stored.Clone()
	// The returned identity is the caller's too: changing it must not
	// change the store.
	stored.Traits[0].Value = engine.Int(99)
	stored.Overrides[0].Value[1] = 'X'
	_, err := s.Update(t.Context(), env, "u", func(cur *identity.Identity) (*identity.Identity, error) {
		cur.Traits[0].Value = engine.Int(100)
		cur.Traits = append(cur.Traits, trait("b", engine.Int(2)))
		cur.Overrides[0].Enabled = false
		return nil, identity.ErrSkip
	})
	if err != nil {
		t.Fatalf("Update(skip): %v", err)
	}
	sameIdentity(t, "after changing copies", want, mustGet(t, s, env.APIKey, "u"))
	// And a Get's result is private as well.
	g := mustGet(t, s, env.APIKey, "u")
	g.Traits[0].Value = engine.Int(7)
	sameIdentity(t, "after changing a Get result", want, mustGet(t, s, env.APIKey, "u"))
}

func testUpdateSkipNew(t *testing.T, s identity.Store) {
	env := newEnv()
	got, err := s.Update(t.Context(), env, "ghost", func(cur *identity.Identity) (*identity.Identity, error) {
		return &identity.Identity{EnvironmentAPIKey: env.APIKey, Identifier: "ghost"}, fmt.Errorf("nothing to do: %w", identity.ErrSkip)
	})
	if err != nil || got != nil {
		t.Fatalf("Update(ErrSkip) on a new identity = %s, %v; want nil, nil", describe(got), err)
	}
	wantNotFound(t, s, env.APIKey, "ghost")
	page, err := s.List(t.Context(), env.APIKey, identity.ListQuery{Limit: 10})
	if err != nil || len(page.Identities) != 0 {
		t.Fatalf("List after a skipped create = %q, %v; want empty", identifiers(page.Identities), err)
	}
}

func testUpdateSkipExisting(t *testing.T, s identity.Store) {
	env := newEnv()
	stored := put(t, s, env, "u", func(id *identity.Identity) {
		id.Traits = []identity.Trait{trait("a", engine.Int(1))}
	})
	got, err := s.Update(t.Context(), env, "u", func(cur *identity.Identity) (*identity.Identity, error) {
		cur.Traits = nil
		return cur, identity.ErrSkip
	})
	if err != nil {
		t.Fatalf("Update(ErrSkip) = %v; want nil error", err)
	}
	sameIdentity(t, "Update(ErrSkip) result", stored, got)
	sameIdentity(t, "Get after ErrSkip", stored, mustGet(t, s, env.APIKey, "u"))
}

func testUpdateFuncError(t *testing.T, s identity.Store) {
	env := newEnv()
	boom := errors.New("boom")
	for _, existing := range []bool{false, true} {
		identifier := fmt.Sprintf("u-%t", existing)
		var before *identity.Identity
		if existing {
			before = put(t, s, env, identifier, func(id *identity.Identity) {
				id.Traits = []identity.Trait{trait("a", engine.Int(1))}
			})
		}
		_, err := s.Update(t.Context(), env, identifier, func(cur *identity.Identity) (*identity.Identity, error) {
			if cur == nil {
				cur = &identity.Identity{EnvironmentAPIKey: env.APIKey, Identifier: identifier}
			}
			cur.Traits = []identity.Trait{trait("b", engine.Int(2))}
			return cur, fmt.Errorf("computing: %w", boom)
		})
		if !errors.Is(err, boom) {
			t.Fatalf("existing=%t: Update = %v; want the function's error", existing, err)
		}
		if existing {
			sameIdentity(t, "after a failed update", before, mustGet(t, s, env.APIKey, identifier))
		} else {
			wantNotFound(t, s, env.APIKey, identifier)
		}
	}
}

func systemTraitSetter(t *testing.T, s identity.Store) SystemTraitSetter {
	t.Helper()
	st, ok := s.(SystemTraitSetter)
	if !ok {
		t.Skipf("%T does not implement identitytest.SystemTraitSetter", s)
	}
	return st
}

func testUpdateKeepsSystemTraits(t *testing.T, s identity.Store) {
	st := systemTraitSetter(t, s)
	env := newEnv()
	ctx := t.Context()
	if err := st.SetSystemTrait(ctx, env.APIKey, "absent", "cohort_1", engine.Bool(true)); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("SetSystemTrait on an absent identity = %v; want ErrNotFound", err)
	}
	put(t, s, env, "u", func(id *identity.Identity) { id.Traits = []identity.Trait{trait("a", engine.Int(1))} })
	for _, tr := range []identity.Trait{
		trait("cohort_1", engine.Bool(true)), trait("cohort_2", engine.Int(3)),
		trait("cohort_3", engine.String("x")), trait("cohort_4", engine.Float(0.5)),
	} {
		if err := st.SetSystemTrait(ctx, env.APIKey, "u", tr.Key, tr.Value); err != nil {
			t.Fatalf("SetSystemTrait(%s): %v", tr.Key, err)
		}
	}
	if err := st.SetSystemTrait(ctx, env.APIKey, "u", "cohort_3", engine.None()); err != nil {
		t.Fatalf("unsetting a system trait: %v", err)
	}
	wantSys := []identity.Trait{trait("cohort_1", engine.Bool(true)), trait("cohort_2", engine.Int(3)), trait("cohort_4", engine.Float(0.5))}
	stored := mustGet(t, s, env.APIKey, "u")
	if describe(&identity.Identity{SystemTraits: stored.SystemTraits}) != describe(&identity.Identity{SystemTraits: wantSys}) {
		t.Fatalf("system traits after SetSystemTrait: %s", describe(stored))
	}

	cases := []struct {
		name   string
		mutate func(cur *identity.Identity) *identity.Identity
	}{
		{"dropped", func(cur *identity.Identity) *identity.Identity { cur.SystemTraits = nil; return cur }},
		{"replaced", func(cur *identity.Identity) *identity.Identity {
			cur.SystemTraits = []identity.Trait{trait("cohort_1", engine.Bool(false)), trait("cohort_9", engine.Int(9))}
			return cur
		}},
		{"fresh identity returned", func(cur *identity.Identity) *identity.Identity {
			return &identity.Identity{EnvironmentAPIKey: cur.EnvironmentAPIKey, Identifier: cur.Identifier, UUID: cur.UUID,
				CreatedDate: cur.CreatedDate, Traits: cur.Traits}
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sawSys []identity.Trait
			got, err := s.Update(ctx, env, "u", func(cur *identity.Identity) (*identity.Identity, error) {
				sawSys = slices.Clone(cur.SystemTraits)
				cur.Traits = append(cur.Traits, trait(fmt.Sprintf("t%d", i), engine.Int(int64(i))))
				return tc.mutate(cur), nil
			})
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			wantDesc := describe(&identity.Identity{SystemTraits: wantSys})
			if d := describe(&identity.Identity{SystemTraits: sawSys}); d != wantDesc {
				t.Errorf("fn saw system traits:\n%s\nwant\n%s", d, wantDesc)
			}
			if d := describe(&identity.Identity{SystemTraits: got.SystemTraits}); d != wantDesc {
				t.Errorf("Update returned system traits:\n%s\nwant\n%s", d, wantDesc)
			}
			stored := mustGet(t, s, env.APIKey, "u")
			if d := describe(&identity.Identity{SystemTraits: stored.SystemTraits}); d != wantDesc {
				t.Errorf("stored system traits:\n%s\nwant\n%s", d, wantDesc)
			}
			if _, ok := stored.Trait(fmt.Sprintf("t%d", i)); !ok {
				t.Errorf("the update itself was lost: %s", describe(stored))
			}
		})
	}
}

func testUpdateNewDropsSystemTraits(t *testing.T, s identity.Store) {
	env := newEnv()
	got := put(t, s, env, "u", func(id *identity.Identity) {
		id.SystemTraits = []identity.Trait{trait("cohort_1", engine.Bool(true))}
	})
	if len(got.SystemTraits) != 0 {
		t.Errorf("Update returned system traits it must not write: %s", describe(got))
	}
	if stored := mustGet(t, s, env.APIKey, "u"); len(stored.SystemTraits) != 0 {
		t.Errorf("Update wrote system traits: %s", describe(stored))
	}
}

// addTrait is an UpdateFunc adding one trait, creating the identity if needed.
func addTrait(env identity.Env, identifier, key string, v engine.Value) identity.UpdateFunc {
	return func(cur *identity.Identity) (*identity.Identity, error) {
		if cur == nil {
			cur = &identity.Identity{EnvironmentAPIKey: env.APIKey, Identifier: identifier}
		}
		cur.Traits = append(cur.Traits, trait(key, v))
		return cur, nil
	}
}

func testUpdateConcurrent(t *testing.T, s identity.Store) {
	env := newEnv()
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			// The first writers race to create the identity as well.
			if _, err := s.Update(t.Context(), env, "shared", addTrait(env, "shared", fmt.Sprintf("t%02d", i), engine.Int(int64(i)))); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Update: %v", err)
	}
	stored := mustGet(t, s, env.APIKey, "shared")
	got := map[string]string{}
	for _, tr := range stored.Traits {
		if _, dup := got[tr.Key]; dup {
			t.Errorf("trait %q stored twice", tr.Key)
		}
		got[tr.Key] = describeValue(tr.Value)
	}
	for i := range n {
		k := fmt.Sprintf("t%02d", i)
		if got[k] != describeValue(engine.Int(int64(i))) {
			t.Errorf("trait %s = %q; lost update", k, got[k])
		}
	}
	if len(stored.Traits) != n {
		t.Errorf("%d traits stored; want %d", len(stored.Traits), n)
	}
}

func testUpdateConcurrentSystemTraits(t *testing.T, s identity.Store) {
	st := systemTraitSetter(t, s)
	env := newEnv()
	put(t, s, env, "u", nil)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			if _, err := s.Update(t.Context(), env, "u", addTrait(env, "u", fmt.Sprintf("t%d", i), engine.Int(int64(i)))); err != nil {
				errs <- err
			}
		})
		wg.Go(func() {
			if err := st.SetSystemTrait(t.Context(), env.APIKey, "u", fmt.Sprintf("cohort_%d", i), engine.Bool(true)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent write: %v", err)
	}
	stored := mustGet(t, s, env.APIKey, "u")
	if len(stored.Traits) != n || len(stored.SystemTraits) != n {
		t.Fatalf("%d traits and %d system traits; want %d of each (a writer overwrote another):\n%s",
			len(stored.Traits), len(stored.SystemTraits), n, describe(stored))
	}
}

// testUpdateConcurrentMixed runs updates that skip, fail and succeed at the
// same time: a store that commits writers in groups must not let one
// member's outcome leak into another's.
func testUpdateConcurrentMixed(t *testing.T, s identity.Store) {
	env := newEnv()
	boom := errors.New("boom")
	const n = 40
	type outcome struct {
		kind int // 0 writes, 1 ErrSkip, 2 error, 3 invalid
		got  *identity.Identity
		err  error
	}
	results := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		identifier := fmt.Sprintf("u%02d", i)
		kind := i % 4
		wg.Go(func() {
			got, err := s.Update(t.Context(), env, identifier, func(cur *identity.Identity) (*identity.Identity, error) {
				id := &identity.Identity{EnvironmentAPIKey: env.APIKey, Identifier: identifier,
					Traits: []identity.Trait{trait("i", engine.Int(int64(i)))}}
				switch kind {
				case 1:
					return id, identity.ErrSkip
				case 2:
					return id, boom
				case 3:
					id.Traits = append(id.Traits, trait("", engine.Int(1)))
				}
				return id, nil
			})
			results[i] = outcome{kind, got, err}
		})
	}
	wg.Wait()
	for i, r := range results {
		identifier := fmt.Sprintf("u%02d", i)
		switch r.kind {
		case 0:
			if r.err != nil || r.got == nil {
				t.Errorf("%s: write = %s, %v", identifier, describe(r.got), r.err)
				continue
			}
			if v, _ := mustGet(t, s, env.APIKey, identifier).Trait("i"); describeValue(v) != describeValue(engine.Int(int64(i))) {
				t.Errorf("%s: stored i = %s", identifier, describeValue(v))
			}
		case 1:
			if r.err != nil || r.got != nil {
				t.Errorf("%s: skip = %s, %v; want nil, nil", identifier, describe(r.got), r.err)
			}
			wantNotFound(t, s, env.APIKey, identifier)
		case 2:
			if !errors.Is(r.err, boom) {
				t.Errorf("%s: failing fn = %v; want boom", identifier, r.err)
			}
			wantNotFound(t, s, env.APIKey, identifier)
		case 3:
			if !errors.Is(r.err, identity.ErrInvalid) {
				t.Errorf("%s: invalid identity = %v; want ErrInvalid", identifier, r.err)
			}
			wantNotFound(t, s, env.APIKey, identifier)
		}
	}
}

func testReadYourWrites(t *testing.T, s identity.Store) {
	env := newEnv()
	for i := range 30 {
		got, err := s.Update(t.Context(), env, "u", func(cur *identity.Identity) (*identity.Identity, error) {
			if cur == nil {
				cur = &identity.Identity{EnvironmentAPIKey: env.APIKey, Identifier: "u"}
			}
			cur.Traits = []identity.Trait{trait("n", engine.Int(int64(i)))}
			return cur, nil
		})
		if err != nil {
			t.Fatalf("Update %d: %v", i, err)
		}
		sameIdentity(t, fmt.Sprintf("Get after update %d", i), got, mustGet(t, s, env.APIKey, "u"))
		if v, _ := got.Trait("n"); describeValue(v) != describeValue(engine.Int(int64(i))) {
			t.Fatalf("update %d returned n = %s", i, describeValue(v))
		}
	}
}

// ---- values -------------------------------------------------------------------

func testTraitValues(t *testing.T, s identity.Store) {
	env := newEnv()
	big70 := new(big.Int).Lsh(big.NewInt(1), 70)
	negBig, _ := new(big.Int).SetString("-123456789012345678901234567890", 10)
	traits := []identity.Trait{
		trait("zeta_first", engine.String("order is kept, not sorted")),
		trait("int", engine.Int(42)),
		trait("zero", engine.Int(0)),
		trait("negative", engine.Int(-7)),
		trait("int64 max", engine.Int(math.MaxInt64)),
		trait("int64 min", engine.Int(math.MinInt64)),
		trait("big", engine.Value{Kind: engine.KindInt, Big: big70}),
		trait("big negative", engine.Value{Kind: engine.KindInt, Big: negBig}),
		trait("float 4.0", engine.Float(4)),
		trait("float 0", engine.Float(0)),
		trait("float 1.5", engine.Float(1.5)),
		trait("float -0.25", engine.Float(-0.25)),
		trait("float 0.1", engine.Float(0.1)),
		trait("float 1e21", engine.Float(1e21)),
		trait("float tiny", engine.Float(1e-300)),
		trait("float huge", engine.Float(1.5e300)),
		trait("bool true", engine.Bool(true)),
		trait("bool false", engine.Bool(false)),
		trait("string", engine.String("gold")),
		trait("empty string", engine.String("")),
		trait("numeric-looking string", engine.String("007")),
		trait("float-looking string", engine.String("4.0")),
		trait("bool-looking string", engine.String("true")),
		trait("unicode", engine.String("名前 é 🚀")),
		trait("markup", engine.String(`<a href="x">&amp;</a> \ "`)),
		trait("control", engine.String("a\nb\tc\u0001")),
		trait("long string", engine.String(strings.Repeat("é", identity.MaxTraitValueChars))),
	}
	if nr, ok := s.(NumberRanger); ok {
		var in []identity.Trait
		for _, tr := range traits {
			if nr.NumberInRange(tr.Value) {
				in = append(in, tr)
				continue
			}
			identifier := "out of range " + tr.Key
			_, err := s.Update(t.Context(), env, identifier, addTrait(env, identifier, tr.Key, tr.Value))
			if !errors.Is(err, identity.ErrInvalid) {
				t.Errorf("Update with trait %q = %s out of the store's number range: %v; want ErrInvalid", tr.Key, describeValue(tr.Value), err)
			}
			wantNotFound(t, s, env.APIKey, identifier)
		}
		traits = in
	}
	djangoID := int64(987654321)
	want := &identity.Identity{
		EnvironmentAPIKey: env.APIKey, Identifier: "values", DjangoID: &djangoID,
		Traits: traits, DashboardAlias: "alias with spaces ü",
	}
	got := put(t, s, env, "values", func(id *identity.Identity) {
		id.DjangoID = &djangoID
		id.Traits = slices.Clone(traits)
		id.DashboardAlias = want.DashboardAlias
	})
	want.UUID, want.CreatedDate = got.UUID, got.CreatedDate
	sameIdentity(t, "Update result", want, got)
	sameIdentity(t, "Get", want, mustGet(t, s, env.APIKey, "values"))
	// An unchanged rewrite keeps every value too.
	sameIdentity(t, "after a rewrite", want, put(t, s, env, "values", nil))
}

func testOverrideValues(t *testing.T, s identity.Store) {
	env := newEnv()
	djangoID := int64(55)
	overrides := []identity.Override{
		override(1, "string", true, `"a <b> & \"c\" é"`),
		override(2, "int", false, `42`),
		override(3, "big int", true, `12345678901234567890`),
		override(4, "bool", true, `false`),
		override(5, "null", true, ``),
		override(6, "empty string", false, `""`),
		override(7, "multivariate", true, `"control"`),
	}
	overrides[6].Feature.Type = "MULTIVARIATE"
	overrides[6].MultivariateValues = json.RawMessage(
		`[{"id":11,"multivariate_feature_option":3,"percentage_allocation":30.5},{"id":12,"multivariate_feature_option":4,"percentage_allocation":69.5,"mv_fs_value_uuid":"x"}]`)
	overrides[2].DjangoID = &djangoID
	want := &identity.Identity{EnvironmentAPIKey: env.APIKey, Identifier: "o", Overrides: overrides}
	got := put(t, s, env, "o", func(id *identity.Identity) { id.Overrides = want.Clone().Overrides })
	want.UUID, want.CreatedDate = got.UUID, got.CreatedDate
	sameIdentity(t, "Update result", want, got)
	sameIdentity(t, "Get", want, mustGet(t, s, env.APIKey, "o"))
	if v := mustGet(t, s, env.APIKey, "o").Overrides[4].Value; v != nil {
		t.Errorf("a null value reads back as %q; want nil", v)
	}
}

// ---- validation -----------------------------------------------------------------

func testValidate(t *testing.T, s identity.Store) {
	cjk600 := strings.Repeat("名", 600) // 600 characters, 1800 bytes
	bigTraits := func(id *identity.Identity) {
		for i := range 210 { // 210 × 2000 characters > 400 KB
			id.Traits = append(id.Traits, trait(fmt.Sprintf("t%03d", i), engine.String(strings.Repeat("x", identity.MaxTraitValueChars))))
		}
	}
	cases := []struct {
		name       string
		identifier string
		mutate     func(*identity.Identity)
		want       error // nil: accepted
	}{
		{"600 CJK characters identifier", cjk600, nil, identity.ErrInvalid},
		{"1025 byte identifier", strings.Repeat("a", 1025), nil, identity.ErrInvalid},
		{"1024 byte identifier", strings.Repeat("a", 1024), nil, nil},
		{"341 CJK characters identifier (1023 bytes)", strings.Repeat("名", 341), nil, nil},
		{"empty identifier", "", nil, identity.ErrInvalid},
		{"invalid UTF-8 identifier", "a\xffb", nil, identity.ErrInvalid},
		{"empty trait key", "u", func(id *identity.Identity) { id.Traits = append(id.Traits, trait("", engine.Int(1))) }, identity.ErrInvalid},
		{"201 character trait key", "u", func(id *identity.Identity) {
			id.Traits = append(id.Traits, trait(strings.Repeat("k", identity.MaxTraitKeyChars+1), engine.Int(1)))
		}, identity.ErrInvalid},
		{"200 character trait key", "u", func(id *identity.Identity) {
			id.Traits = append(id.Traits, trait(strings.Repeat("k", identity.MaxTraitKeyChars), engine.Int(1)))
		}, nil},
		{"2001 character trait value", "u", func(id *identity.Identity) {
			id.Traits = append(id.Traits, trait("v", engine.String(strings.Repeat("é", identity.MaxTraitValueChars+1))))
		}, identity.ErrInvalid},
		{"trait without a value", "u", func(id *identity.Identity) { id.Traits = append(id.Traits, trait("v", engine.None())) }, identity.ErrInvalid},
		{"101 character alias", "u", func(id *identity.Identity) { id.DashboardAlias = strings.Repeat("a", identity.MaxAliasChars+1) }, identity.ErrInvalid},
		{"two overrides for one feature", "u", func(id *identity.Identity) {
			id.Overrides = append(id.Overrides, override(9, "f", true, "1"), override(9, "f", false, "2"))
		}, identity.ErrInvalid},
		{"item over 400 KB", "u", bigTraits, identity.ErrTooLarge},
	}
	for _, tc := range cases {
		for _, existing := range []bool{false, true} {
			// Only a valid identity can exist, and only a rejected update
			// needs checking against one.
			if existing && (tc.want == nil || identity.ValidateIdentifier(tc.identifier) != nil) {
				continue
			}
			name := tc.name + map[bool]string{false: "/new", true: "/existing"}[existing]
			t.Run(name, func(t *testing.T) {
				env := newEnv()
				var before *identity.Identity
				if existing {
					before = put(t, s, env, tc.identifier, func(id *identity.Identity) {
						id.Traits = []identity.Trait{trait("kept", engine.Int(1))}
					})
				}
				got, err := s.Update(t.Context(), env, tc.identifier, func(cur *identity.Identity) (*identity.Identity, error) {
					if cur == nil {
						cur = &identity.Identity{EnvironmentAPIKey: env.APIKey, Identifier: tc.identifier}
					}
					if tc.mutate != nil {
						tc.mutate(cur)
					}
					return cur, nil
				})
				if tc.want == nil {
					if err != nil {
						t.Fatalf("Update = %v; want it accepted", err)
					}
					sameIdentity(t, "Get", got, mustGet(t, s, env.APIKey, tc.identifier))
					return
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("Update = %s, %v; want %v", describe(got), err, tc.want)
				}
				if existing {
					sameIdentity(t, "stored identity after a rejected update", before, mustGet(t, s, env.APIKey, tc.identifier))
					return
				}
				if got, err := s.Get(t.Context(), env.APIKey, tc.identifier); err == nil {
					t.Fatalf("rejected identity was stored: %s", describe(got))
				}
				page, err := s.List(t.Context(), env.APIKey, identity.ListQuery{Limit: 10})
				if err != nil || len(page.Identities) != 0 {
					t.Fatalf("List after a rejected create = %q, %v; want empty", identifiers(page.Identities), err)
				}
			})
		}
	}
}

// ---- GetByUUID and Delete ----------------------------------------------------------

func testGetByUUID(t *testing.T, s identity.Store) {
	envA, envB := newEnv(), newEnv()
	a := put(t, s, envA, "same", func(id *identity.Identity) { id.Traits = []identity.Trait{trait("env", engine.String("a"))} })
	b := put(t, s, envB, "same", func(id *identity.Identity) { id.Traits = []identity.Trait{trait("env", engine.String("b"))} })
	if a.UUID == b.UUID {
		t.Fatalf("two identities share UUID %q", a.UUID)
	}
	for _, want := range []*identity.Identity{a, b} {
		eventually(t, "GetByUUID "+want.UUID, func() error {
			got, err := s.GetByUUID(t.Context(), want.UUID)
			if err != nil {
				return err
			}
			if describe(got) != describe(want) {
				return fmt.Errorf("got\n%s\nwant\n%s", describe(got), describe(want))
			}
			return nil
		})
	}
	// The index follows updates of the identity.
	put(t, s, envA, "same", func(id *identity.Identity) { id.Traits = append(id.Traits, trait("n", engine.Int(2))) })
	eventually(t, "GetByUUID after an update", func() error {
		got, err := s.GetByUUID(t.Context(), a.UUID)
		if err != nil {
			return err
		}
		if _, ok := got.Trait("n"); !ok {
			return fmt.Errorf("stale identity %s", describe(got))
		}
		return nil
	})
}

func testDelete(t *testing.T, s identity.Store) {
	env := newEnv()
	gone := put(t, s, env, "gone", func(id *identity.Identity) {
		id.Overrides = []identity.Override{override(1, "f1", true, `"x"`), override(2, "f2", false, "")}
		id.DashboardAlias = "gone alias"
	})
	kept := put(t, s, env, "kept", func(id *identity.Identity) {
		id.Overrides = []identity.Override{override(1, "f1", false, `"y"`)}
		id.DashboardAlias = "gone alias too"
	})
	eventually(t, "overrides before Delete", func() error {
		items, err := s.Overrides(t.Context(), env, 0)
		if err != nil || len(items) != 3 {
			return fmt.Errorf("%d items, %v; want 3", len(items), err)
		}
		return nil
	})
	if err := s.Delete(t.Context(), env, "gone"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, s, env.APIKey, "gone")
	sameIdentity(t, "the other identity", kept, mustGet(t, s, env.APIKey, "kept"))
	eventually(t, "GetByUUID after Delete", func() error {
		if got, err := s.GetByUUID(t.Context(), gone.UUID); !errors.Is(err, identity.ErrNotFound) {
			return fmt.Errorf("= %s, %v; want ErrNotFound", describe(got), err)
		}
		return nil
	})
	eventually(t, "List after Delete", func() error {
		for _, q := range []identity.ListQuery{{Limit: 10}, {Limit: 10, ByAlias: true, Search: "gone"}} {
			page, err := s.List(t.Context(), env.APIKey, q)
			if err != nil {
				return err
			}
			if ids := identifiers(page.Identities); !slices.Equal(ids, []string{"kept"}) {
				return fmt.Errorf("List(%+v) = %q; want [kept]", q, ids)
			}
		}
		return nil
	})
	eventually(t, "Overrides after Delete", func() error {
		items, err := s.Overrides(t.Context(), env, 0)
		if err != nil {
			return err
		}
		if len(items) != 1 || items[0].IdentityUUID != kept.UUID {
			return fmt.Errorf("%d items (%+v); want kept's one", len(items), items)
		}
		return nil
	})
	// Idempotent, and deleting what never existed is no error either.
	for _, identifier := range []string{"gone", "never"} {
		if err := s.Delete(t.Context(), env, identifier); err != nil {
			t.Fatalf("Delete(%q) of an absent identity: %v", identifier, err)
		}
	}
	// Recreated, it is a new identity.
	again := put(t, s, env, "gone", nil)
	if again.UUID == gone.UUID || len(again.Overrides) != 0 || again.DashboardAlias != "" {
		t.Fatalf("recreated identity carries the deleted one's data: %s", describe(again))
	}
}

// ---- List ------------------------------------------------------------------------

// listData is the identities testList* create: identifier → alias.
var listData = []struct{ identifier, alias string }{
	{"alice", "qa account"},
	{"Alice", "qa"},
	{"al", ""},
	{"alfred", "qa account"},
	{"albert", "dev"},
	{"alé", ""},
	{"a_b", ""},
	{"a%b", ""},
	{"b", "qa-2"},
	{"bob", ""},
	{"été", "été"},
	{"zed", "zz"},
	{"100", ""},
	{"2", "Q"}, // upper case only if the caller did not lower it; still searched as stored
	{"al\u0000x", ""},
}

func putListData(t *testing.T, s identity.Store, env identity.Env) map[string]*identity.Identity {
	out := map[string]*identity.Identity{}
	for _, d := range listData {
		out[d.identifier] = put(t, s, env, d.identifier, func(id *identity.Identity) { id.DashboardAlias = d.alias })
	}
	return out
}

// listFields are the fields a listed identity must carry: what the admin
// list serves. (A store may return whole identities, or only these.)
func listFields(id *identity.Identity) string {
	if id == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{env %q identifier %q uuid %q alias %q}", id.EnvironmentAPIKey, id.Identifier, id.UUID, id.DashboardAlias)
}

// expectedList computes the contract's answer from listData.
func expectedList(q identity.ListQuery) []string {
	type row struct{ identifier, alias string }
	var rows []row
	for _, d := range listData {
		field := d.identifier
		if q.ByAlias {
			if d.alias == "" {
				continue
			}
			field = d.alias
		}
		if q.Exact && field != q.Search || !q.Exact && !strings.HasPrefix(field, q.Search) {
			continue
		}
		rows = append(rows, row(d))
	}
	slices.SortFunc(rows, func(a, b row) int {
		if q.ByAlias {
			if c := strings.Compare(a.alias, b.alias); c != 0 {
				return c
			}
		}
		return strings.Compare(a.identifier, b.identifier)
	})
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.identifier
	}
	return out
}

// listAll follows cursors to the end, passing each cursor through JSON as
// the admin API does, and checks every page's size.
func listAll(ctx context.Context, s identity.Store, envKey string, q identity.ListQuery) ([]*identity.Identity, error) {
	var all []*identity.Identity
	for pages := 0; ; pages++ {
		if pages > 1000 {
			return nil, fmt.Errorf("more than 1000 pages: the cursor does not advance")
		}
		page, err := s.List(ctx, envKey, q)
		if err != nil {
			return nil, err
		}
		if len(page.Identities) > q.Limit {
			return nil, fmt.Errorf("page of %d identities; limit %d", len(page.Identities), q.Limit)
		}
		all = append(all, page.Identities...)
		if page.Next == nil {
			return all, nil
		}
		b, err := json.Marshal(page.Next)
		if err != nil {
			return nil, err
		}
		var next identity.Cursor
		if err := json.Unmarshal(b, &next); err != nil {
			return nil, err
		}
		q.After = &next
	}
}

// listedIdentifiers returns the identifiers of a listing. For an alias
// listing from an AliasTiesUnordered store it first checks that aliases do
// not decrease, then orders each run of equal aliases by identifier, so
// that only the order the store cannot promise is forgiven.
func listedIdentifiers(s identity.Store, q identity.ListQuery, got []*identity.Identity) ([]string, error) {
	if _, ok := s.(AliasTiesUnordered); !ok || !q.ByAlias {
		return identifiers(got), nil
	}
	for i := 1; i < len(got); i++ {
		if got[i].DashboardAlias < got[i-1].DashboardAlias {
			return nil, fmt.Errorf("alias %q listed after %q", got[i].DashboardAlias, got[i-1].DashboardAlias)
		}
	}
	sorted := slices.Clone(got)
	slices.SortStableFunc(sorted, func(a, b *identity.Identity) int {
		if c := strings.Compare(a.DashboardAlias, b.DashboardAlias); c != 0 {
			return c
		}
		return strings.Compare(a.Identifier, b.Identifier)
	})
	return identifiers(sorted), nil
}

var listQueries = []identity.ListQuery{
	{},
	{Search: "al"},
	{Search: "a"},
	{Search: "Al"},
	{Search: "alé"},
	{Search: "é"},
	{Search: "al", Exact: true},
	{Search: "alice", Exact: true},
	{Search: "ali", Exact: true},
	{Search: "nobody"},
	{ByAlias: true},
	{ByAlias: true, Search: "qa"},
	{ByAlias: true, Search: "qa account", Exact: true},
	{ByAlias: true, Search: "qa", Exact: true},
	{ByAlias: true, Search: "été"},
	{ByAlias: true, Search: "alice"},
}

func testListSearch(t *testing.T, s identity.Store) {
	env := newEnv()
	byIdentifier := putListData(t, s, env)
	for _, q := range listQueries {
		q.Limit = 100
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			want := expectedList(q)
			eventually(t, "List", func() error {
				got, err := listAll(t.Context(), s, env.APIKey, q)
				if err != nil {
					return err
				}
				ids, err := listedIdentifiers(s, q, got)
				if err != nil {
					return err
				}
				if !slices.Equal(ids, want) {
					return fmt.Errorf("got %q\nwant %q", ids, want)
				}
				for _, id := range got {
					if w := listFields(byIdentifier[id.Identifier]); listFields(id) != w {
						return fmt.Errorf("listed identity %s; want %s", listFields(id), w)
					}
				}
				return nil
			})
		})
	}
}

func testListPages(t *testing.T, s identity.Store) {
	env := newEnv()
	putListData(t, s, env)
	for _, q := range []identity.ListQuery{{}, {Search: "al"}, {ByAlias: true}, {ByAlias: true, Search: "qa"}} {
		for _, limit := range []int{1, 2, 3, 7, 100} {
			q.Limit = limit
			t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
				want := expectedList(q)
				eventually(t, "paging", func() error {
					got, err := listAll(t.Context(), s, env.APIKey, q)
					if err != nil {
						return err
					}
					ids, err := listedIdentifiers(s, q, got)
					if err != nil {
						return err
					}
					if !slices.Equal(ids, want) {
						return fmt.Errorf("pages joined = %q\nwant %q", ids, want)
					}
					return nil
				})
			})
		}
	}
}

func testListCursorSurvivesDelete(t *testing.T, s identity.Store) {
	env := newEnv()
	putListData(t, s, env)
	q := identity.ListQuery{Limit: 3}
	want := expectedList(q)
	var first identity.Page
	eventually(t, "first page", func() error {
		var err error
		first, err = s.List(t.Context(), env.APIKey, q)
		if err != nil {
			return err
		}
		if ids := identifiers(first.Identities); len(ids) == 0 || first.Next == nil || !slices.Equal(ids, want[:len(ids)]) {
			return fmt.Errorf("first page %q (next %v); want a prefix of %q with a next cursor", ids, first.Next, want)
		}
		return nil
	})
	last := first.Identities[len(first.Identities)-1].Identifier
	if err := s.Delete(t.Context(), env, last); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	q.After = first.Next
	rest, err := listAll(t.Context(), s, env.APIKey, q)
	if err != nil {
		t.Fatalf("continuing after the deleted identity: %v", err)
	}
	if got, w := identifiers(rest), want[len(first.Identities):]; !slices.Equal(got, w) {
		t.Fatalf("continuing after the deleted identity = %q; want %q", got, w)
	}
}

func testListOtherEnvironments(t *testing.T, s identity.Store) {
	env := newEnv()
	// Environments whose keys extend, or are extended by, env's key.
	longer := identity.Env{APIKey: env.APIKey + "x", ID: env.ID + "1"}
	shorter := identity.Env{APIKey: env.APIKey[:len(env.APIKey)-1], ID: env.ID + "2"}
	underscore := identity.Env{APIKey: env.APIKey + "_al", ID: env.ID + "3"}
	put(t, s, env, "al", func(id *identity.Identity) { id.DashboardAlias = "qa" })
	for _, other := range []identity.Env{longer, shorter, underscore} {
		put(t, s, other, "alice", func(id *identity.Identity) { id.DashboardAlias = "qa" })
		put(t, s, other, "bob", func(id *identity.Identity) { id.DashboardAlias = "qb" })
	}
	for _, q := range []identity.ListQuery{{}, {Search: "al"}, {Search: "al", Exact: true}, {ByAlias: true}, {ByAlias: true, Search: "q"}} {
		for _, limit := range []int{1, 100} {
			q.Limit = limit
			eventually(t, fmt.Sprintf("List(%+v)", q), func() error {
				got, err := listAll(t.Context(), s, env.APIKey, q)
				if err != nil {
					return err
				}
				if ids := identifiers(got); !slices.Equal(ids, []string{"al"}) {
					return fmt.Errorf("= %q; want [al]", ids)
				}
				if got[0].EnvironmentAPIKey != env.APIKey {
					return fmt.Errorf("listed an identity of %q", got[0].EnvironmentAPIKey)
				}
				return nil
			})
		}
	}
	page, err := s.List(t.Context(), newEnv().APIKey, identity.ListQuery{Limit: 100})
	if err != nil || len(page.Identities) != 0 || page.Next != nil {
		t.Fatalf("List of an empty environment = %q (next %v), %v", identifiers(page.Identities), page.Next, err)
	}
}

// ---- Overrides -----------------------------------------------------------------------

// overridesOf derives the expected listing from identities.
func overridesOf(featureID int64, ids ...*identity.Identity) []string {
	var items []identity.OverrideItem
	for _, id := range ids {
		for _, o := range id.Overrides {
			if featureID == 0 || o.Feature.ID == featureID {
				items = append(items, identity.OverrideItem{Identifier: id.Identifier, IdentityUUID: id.UUID, Override: o})
			}
		}
	}
	slices.SortFunc(items, func(a, b identity.OverrideItem) int { return strings.Compare(a.DocumentKey(), b.DocumentKey()) })
	return describeItems(items)
}

func describeItems(items []identity.OverrideItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = fmt.Sprintf("%s identifier=%q uuid=%s %s", it.DocumentKey(), it.Identifier, it.IdentityUUID, describeOverride(it.Override))
	}
	return out
}

func checkOverrides(t *testing.T, s identity.Store, env identity.Env, featureID int64, want []string) {
	t.Helper()
	eventually(t, fmt.Sprintf("Overrides(feature %d)", featureID), func() error {
		items, err := s.Overrides(t.Context(), env, featureID)
		if err != nil {
			return err
		}
		if got := describeItems(items); !slices.Equal(got, want) {
			return fmt.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		return nil
	})
}

func testOverridesOrder(t *testing.T, s identity.Store) {
	env, other := newEnv(), newEnv()
	mv := json.RawMessage(`[{"id":1,"multivariate_feature_option":7,"percentage_allocation":100}]`)
	u1 := put(t, s, env, "u1", func(id *identity.Identity) {
		id.Overrides = []identity.Override{override(10, "f10", true, `"ten"`), override(1, "f1", true, `1`), override(2, "f2", false, `"<two>"`)}
		id.Overrides[0].MultivariateValues = mv
	})
	u2 := put(t, s, env, "u2", func(id *identity.Identity) {
		id.Overrides = []identity.Override{override(1, "f1", false, ``), override(10, "f10", true, `true`)}
	})
	put(t, s, env, "no-overrides", nil)
	put(t, s, other, "u1", func(id *identity.Identity) { id.Overrides = []identity.Override{override(1, "f1", true, `"other"`)} })
	for _, fid := range []int64{0, 1, 2, 10, 3} {
		checkOverrides(t, s, env, fid, overridesOf(fid, u1, u2))
	}
	if want := overridesOf(0, u1, u2); len(want) != 5 {
		t.Fatalf("test setup: %d expected items", len(want))
	}
}

func testOverridesChanges(t *testing.T, s identity.Store) {
	env := newEnv()
	u1 := put(t, s, env, "u1", func(id *identity.Identity) {
		id.Overrides = []identity.Override{override(1, "f1", true, `"a"`), override(2, "f2", true, `"b"`)}
	})
	u2 := put(t, s, env, "u2", func(id *identity.Identity) { id.Overrides = []identity.Override{override(1, "f1", true, `"c"`)} })
	checkOverrides(t, s, env, 0, overridesOf(0, u1, u2))

	// Change one, remove one, add one.
	u1 = put(t, s, env, "u1", func(id *identity.Identity) {
		id.Overrides[0].Value = json.RawMessage(`"changed"`)
		id.Overrides[0].Enabled = false
		id.Overrides = append(id.Overrides[:1], override(3, "f3", true, `3`))
	})
	checkOverrides(t, s, env, 0, overridesOf(0, u1, u2))
	checkOverrides(t, s, env, 2, nil)
	checkOverrides(t, s, env, 3, overridesOf(3, u1))

	// An update that changes only traits keeps the overrides listed.
	u2 = put(t, s, env, "u2", func(id *identity.Identity) { id.Traits = []identity.Trait{trait("t", engine.Int(1))} })
	checkOverrides(t, s, env, 0, overridesOf(0, u1, u2))

	// Removing all of an identity's overrides, and deleting one.
	u1 = put(t, s, env, "u1", func(id *identity.Identity) { id.Overrides = nil })
	checkOverrides(t, s, env, 0, overridesOf(0, u2))
	if err := s.Delete(t.Context(), env, "u2"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkOverrides(t, s, env, 0, nil)
	checkOverrides(t, s, env, 1, nil)
	_ = u1
}

// ---- context -----------------------------------------------------------------------------

func testContext(t *testing.T, s identity.Store) {
	env := newEnv()
	existing := put(t, s, env, "u", nil)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()
	ctxs := []struct {
		name string
		ctx  context.Context
		want error
	}{{"cancelled", cancelled, context.Canceled}, {"deadline passed", expired, context.DeadlineExceeded}}
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, env.APIKey, "u"); return err }},
		{"GetByUUID", func(ctx context.Context) error { _, err := s.GetByUUID(ctx, existing.UUID); return err }},
		{"Update", func(ctx context.Context) error {
			_, err := s.Update(ctx, env, "created-anyway", addTrait(env, "created-anyway", "a", engine.Int(1)))
			return err
		}},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, env, "u") }},
		{"List", func(ctx context.Context) error {
			_, err := s.List(ctx, env.APIKey, identity.ListQuery{Limit: 10})
			return err
		}},
		{"Overrides", func(ctx context.Context) error { _, err := s.Overrides(ctx, env, 0); return err }},
	}
	for _, c := range ctxs {
		for _, call := range calls {
			t.Run(c.name+"/"+call.name, func(t *testing.T) {
				if err := call.call(c.ctx); !errors.Is(err, c.want) {
					t.Fatalf("= %v; want an error wrapping %v", err, c.want)
				}
			})
		}
	}
	// Nothing happened through the dead contexts.
	wantNotFound(t, s, env.APIKey, "created-anyway")
	sameIdentity(t, "identity after a Delete with a dead context", existing, mustGet(t, s, env.APIKey, "u"))
}
