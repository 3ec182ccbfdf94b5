package dynamo_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/dynamo"
)

func TestTablesFromEnv(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want dynamo.Tables
	}{
		{"defaults", nil, dynamo.Tables{
			Identities: "flagsmith_identities", Environments: "flagsmith_environments",
			EnvironmentsV2: "flagsmith_environments_v2", APIKeys: "flagsmith_environment_api_key",
		}},
		{"all set", map[string]string{
			"IDENTITIES_TABLE_NAME_DYNAMO":           "ids",
			"ENVIRONMENTS_TABLE_NAME_DYNAMO":         "envs",
			"ENVIRONMENTS_V2_TABLE_NAME_DYNAMO":      "envs2",
			"ENVIRONMENTS_API_KEY_TABLE_NAME_DYNAMO": "keys",
		}, dynamo.Tables{Identities: "ids", Environments: "envs", EnvironmentsV2: "envs2", APIKeys: "keys"}},
		{"empty keeps the default", map[string]string{"IDENTITIES_TABLE_NAME_DYNAMO": "", "ENVIRONMENTS_TABLE_NAME_DYNAMO": "e"},
			dynamo.Tables{
				Identities: "flagsmith_identities", Environments: "e",
				EnvironmentsV2: "flagsmith_environments_v2", APIKeys: "flagsmith_environment_api_key",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := dynamo.TablesFromEnv(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestCreateTables(t *testing.T) {
	srv := startServer(t)
	st := srv.store(t) // creates them once
	ctx := ctxT(t)
	if err := st.CreateTables(ctx); err != nil {
		t.Fatalf("CreateTables on existing tables: %v", err)
	}
	type index struct{ keys, projection string }
	want := []struct {
		table   string
		keys    string
		indexes map[string]index
	}{
		{st.Tables().Identities, "composite_key HASH", map[string]index{
			"environment_api_key-identifier-index":         {"environment_api_key HASH, identifier RANGE", "ALL"},
			"identity_uuid-index":                          {"identity_uuid HASH", "ALL"},
			"environment_api_key-dashboard_alias-index-v2": {"environment_api_key HASH, dashboard_alias RANGE", "ALL"},
		}},
		{st.Tables().EnvironmentsV2, "environment_id HASH, document_key RANGE", map[string]index{
			"environment_api_key-index": {"environment_api_key HASH", "ALL"},
		}},
		{st.Tables().Environments, "api_key HASH", nil},
		{st.Tables().APIKeys, "key HASH", nil},
	}
	keyText := func(ks []types.KeySchemaElement) string {
		var parts []string
		for _, k := range ks {
			parts = append(parts, *k.AttributeName+" "+string(k.KeyType))
		}
		return strings.Join(parts, ", ")
	}
	for _, w := range want {
		out, err := st.Client().DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(w.table)})
		if err != nil {
			t.Fatalf("DescribeTable %s: %v", w.table, err)
		}
		d := out.Table
		if got := keyText(d.KeySchema); got != w.keys {
			t.Errorf("%s: key %q; want %q", w.table, got, w.keys)
		}
		if d.BillingModeSummary == nil || d.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
			t.Errorf("%s: billing %+v; want PAY_PER_REQUEST", w.table, d.BillingModeSummary)
		}
		got := map[string]index{}
		for _, g := range d.GlobalSecondaryIndexes {
			got[*g.IndexName] = index{keyText(g.KeySchema), string(g.Projection.ProjectionType)}
		}
		if len(got) != len(w.indexes) {
			t.Errorf("%s: indexes %v; want %v", w.table, got, w.indexes)
		}
		for name, wi := range w.indexes {
			if got[name] != wi {
				t.Errorf("%s: index %s = %+v; want %+v", w.table, name, got[name], wi)
			}
		}
	}
}

// coreItem is api.md §4.5's example as core writes it, with django_id set,
// system_traits NULL (as some writer leaves it, edge-api.md item 20), and a
// trait without trait_value (flagsmith#2806).
func coreItem(envKey, identifier string) types.AttributeValue {
	return M(
		"composite_key", S(envKey+"_"+identifier),
		"environment_api_key", S(envKey),
		"identifier", S(identifier),
		"identity_uuid", S("118ecfc9-5234-4218-8af8-dd994dbfedc0"),
		"created_date", S("2024-03-19T09:41:22.974595+00:00"),
		"django_id", N("4242"),
		"identity_traits", L(
			M("trait_key", S("test_trait"), "trait_value", N("42")),
			M("trait_key", S("ratio"), "trait_value", N("0.25")),
			M("trait_key", S("whole"), "trait_value", N("4")),
			M("trait_key", S("flag"), "trait_value", B(true)),
			M("trait_key", S("name"), "trait_value", S("x")),
			M("trait_key", S("repaired")),
		),
		"identity_features", L(M(
			"feature", M("id", N("67"), "name", S("test_feature"), "type", S("STANDARD")),
			"enabled", B(true),
			"feature_state_value", NULL(),
			"django_id", NULL(),
			"featurestate_uuid", S("20988957-d345-424e-9abc-1dc5a814da48"),
			"feature_segment", NULL(),
			"multivariate_feature_state_values", L(),
		)),
		"dashboard_alias", S("qa account"),
		"system_traits", NULL(),
	)
}

func TestReadsCoreItems(t *testing.T) {
	srv := startServer(t)
	st := srv.store(t)
	ctx := ctxT(t)
	putRaw(t, st, st.Tables().Identities, coreItem("envCore", "57c6edf1"))

	got, err := st.Get(ctx, "envCore", "57c6edf1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	djangoID := int64(4242)
	want := &identity.Identity{
		EnvironmentAPIKey: "envCore", Identifier: "57c6edf1",
		UUID: "118ecfc9-5234-4218-8af8-dd994dbfedc0", CreatedDate: "2024-03-19T09:41:22.974595+00:00",
		DjangoID: &djangoID,
		Traits: []identity.Trait{
			{Key: "test_trait", Value: engine.Int(42)},
			{Key: "ratio", Value: engine.Float(0.25)},
			{Key: "whole", Value: engine.Int(4)}, // a number core wrote: 4 is an int
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
	if g, w := describe(got), describe(want); g != w {
		t.Fatalf("core item read as\n%s\nwant\n%s", g, w)
	}
	// The same through the indexes.
	byUUID, err := st.GetByUUID(ctx, want.UUID)
	if err != nil || describe(byUUID) != describe(want) {
		t.Fatalf("GetByUUID = %s, %v", describe(byUUID), err)
	}
	for _, q := range []identity.ListQuery{{Limit: 10}, {Limit: 10, ByAlias: true, Search: "qa"}} {
		page, err := st.List(ctx, "envCore", q)
		if err != nil || len(page.Identities) != 1 || describe(page.Identities[0]) != describe(want) {
			t.Fatalf("List(%+v) = %+v, %v", q, page, err)
		}
	}

	// A Fledge update of the core item changes only Fledge's attributes:
	// the NULL system_traits stays NULL (never dropped, never rewritten).
	_, err = st.Update(ctx, identity.Env{APIKey: "envCore"}, "57c6edf1", func(cur *identity.Identity) (*identity.Identity, error) {
		cur.Traits = append(cur.Traits, identity.Trait{Key: "new", Value: engine.Int(1)})
		return cur, nil
	})
	if err != nil {
		t.Fatalf("Update of a core item: %v", err)
	}
	raw := rawItem(t, st, "envCore_57c6edf1")
	if g := avText(raw["system_traits"]); g != "NULL" {
		t.Errorf("system_traits after a Fledge update = %s; want NULL kept", g)
	}
	if g := avText(raw["django_id"]); g != "N:4242" {
		t.Errorf("django_id = %s", g)
	}
	if g := avText(raw["fledge_version"]); g != "N:1" {
		t.Errorf("fledge_version = %s; want N:1 (absent counts as 0)", g)
	}
}

// describe is a stable text of an identity for comparisons.
func describe(id *identity.Identity) string {
	if id == nil {
		return "<nil>"
	}
	var b strings.Builder
	dj := "nil"
	if id.DjangoID != nil {
		dj = fmt.Sprint(*id.DjangoID)
	}
	fmt.Fprintf(&b, "env=%q identifier=%q uuid=%q created=%q django=%s alias=%q\n",
		id.EnvironmentAPIKey, id.Identifier, id.UUID, id.CreatedDate, dj, id.DashboardAlias)
	for _, tr := range id.Traits {
		fmt.Fprintf(&b, "trait %q = %s\n", tr.Key, valueText(tr.Value))
	}
	for _, tr := range id.SystemTraits {
		fmt.Fprintf(&b, "system %q = %s\n", tr.Key, valueText(tr.Value))
	}
	for _, o := range id.Overrides {
		mo, _ := identity.MarshalOverride(o)
		fmt.Fprintf(&b, "override %s\n", mo)
	}
	return b.String()
}

func valueText(v engine.Value) string {
	return fmt.Sprintf("kind%d:%s", v.Kind, identity.ValueJSON(v))
}

// TestItemShape checks each attribute of an item Fledge writes against
// api.md §4.5, as DynamoDB holds it.
func TestItemShape(t *testing.T) {
	srv := startServer(t)
	st := srv.store(t)
	ctx := ctxT(t)
	env := identity.Env{APIKey: "envShape", ID: "65061"}
	djangoID := int64(7)
	cases := []struct {
		name   string
		mutate func(*identity.Identity)
		want   string // the item less composite_key, identity_uuid and created_date
	}{
		{"plain", func(id *identity.Identity) {
			id.Traits = []identity.Trait{
				{Key: "int", Value: engine.Int(42)},
				{Key: "float", Value: engine.Float(0.5)},
				{Key: "whole float", Value: engine.Float(4)},
				{Key: "bool", Value: engine.Bool(false)},
				{Key: "str", Value: engine.String("007")},
				{Key: "empty", Value: engine.String("")},
			}
		}, `M{django_id: NULL, environment_api_key: S:"envShape", fledge_float_traits: SS:["whole float"], fledge_version: N:1, ` +
			`identifier: S:"u", identity_features: L[], identity_traits: L[` +
			`M{trait_key: S:"int", trait_value: N:42}, M{trait_key: S:"float", trait_value: N:0.5}, ` +
			`M{trait_key: S:"whole float", trait_value: N:4}, M{trait_key: S:"bool", trait_value: BOOL:false}, ` +
			`M{trait_key: S:"str", trait_value: S:"007"}, M{trait_key: S:"empty", trait_value: S:""}]}`},
		{"alias, django id and an override", func(id *identity.Identity) {
			id.Traits = nil
			id.DjangoID = &djangoID
			id.DashboardAlias = "qa"
			id.Overrides = []identity.Override{{
				Feature: identity.FeatureRef{ID: 136660, Name: "test1", Type: "STANDARD"}, Enabled: true,
				Value: json.RawMessage(`"v"`), FeatureStateUUID: "652d8931-37d9-438e-9825-f525b9e83077",
			}}
		}, `M{dashboard_alias: S:"qa", django_id: N:7, environment_api_key: S:"envShape", fledge_version: N:2, ` +
			`identifier: S:"u", identity_features: L[M{django_id: NULL, enabled: BOOL:true, ` +
			`feature: M{id: N:136660, name: S:"test1", type: S:"STANDARD"}, feature_segment: NULL, ` +
			`feature_state_value: S:"v", featurestate_uuid: S:"652d8931-37d9-438e-9825-f525b9e83077", ` +
			`multivariate_feature_state_values: L[]}], identity_traits: L[]}`},
		{"alias removed", func(id *identity.Identity) { id.DashboardAlias = ""; id.Overrides = nil },
			`M{django_id: N:7, environment_api_key: S:"envShape", fledge_version: N:3, identifier: S:"u", ` +
				`identity_features: L[], identity_traits: L[]}`},
	}
	var uuid, created string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.Update(ctx, env, "u", func(cur *identity.Identity) (*identity.Identity, error) {
				if cur == nil {
					cur = &identity.Identity{}
				}
				tc.mutate(cur)
				return cur, nil
			})
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			raw := rawItem(t, st, "envShape_u")
			if g := avText(raw["composite_key"]); g != `S:"envShape_u"` {
				t.Errorf("composite_key = %s", g)
			}
			if g := avText(raw["identity_uuid"]); g != fmt.Sprintf("S:%q", got.UUID) || (uuid != "" && got.UUID != uuid) {
				t.Errorf("identity_uuid = %s (first %s)", g, uuid)
			}
			if g := avText(raw["created_date"]); g != fmt.Sprintf("S:%q", got.CreatedDate) || (created != "" && got.CreatedDate != created) {
				t.Errorf("created_date = %s (first %s)", g, created)
			}
			uuid, created = got.UUID, got.CreatedDate
			for _, k := range []string{"composite_key", "identity_uuid", "created_date"} {
				delete(raw, k)
			}
			if g := "M{" + mapText(raw) + "}"; g != tc.want {
				t.Errorf("item\n got %s\nwant %s", g, tc.want)
			}
		})
	}
}

// TestFloats: a float with an integral value reads back as a float when
// Fledge wrote it (fledge_float_traits), and as an int once another writer
// re-puts the item without Fledge's attributes, as Flagsmith reads it.
func TestFloats(t *testing.T) {
	srv := startServer(t)
	st := srv.store(t)
	ctx := ctxT(t)
	env := identity.Env{APIKey: "envF"}
	vals := []identity.Trait{
		{Key: "4.0", Value: engine.Float(4)}, {Key: "1e21", Value: engine.Float(1e21)},
		{Key: "-2.0", Value: engine.Float(-2)}, {Key: "2.5", Value: engine.Float(2.5)}, {Key: "4", Value: engine.Int(4)},
	}
	_, err := st.Update(ctx, env, "u", func(*identity.Identity) (*identity.Identity, error) {
		return &identity.Identity{Traits: vals}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, "envF", "u")
	if err != nil {
		t.Fatal(err)
	}
	if g, w := describe(&identity.Identity{Traits: got.Traits}), describe(&identity.Identity{Traits: vals}); g != w {
		t.Fatalf("Fledge's floats read back as\n%s\nwant\n%s", g, w)
	}
	// Core re-puts the whole item: its copy has no fledge_ attributes.
	raw := rawItem(t, st, "envF_u")
	delete(raw, "fledge_float_traits")
	delete(raw, "fledge_version")
	putRaw(t, st, st.Tables().Identities, &types.AttributeValueMemberM{Value: raw})
	got, err = st.Get(ctx, "envF", "u")
	if err != nil {
		t.Fatal(err)
	}
	want := []identity.Trait{
		{Key: "4.0", Value: engine.Int(4)}, {Key: "1e21", Value: engine.Value{Kind: engine.KindInt, Big: mustBig("1000000000000000000000")}},
		{Key: "-2.0", Value: engine.Int(-2)}, {Key: "2.5", Value: engine.Float(2.5)}, {Key: "4", Value: engine.Int(4)},
	}
	if g, w := describe(&identity.Identity{Traits: got.Traits}), describe(&identity.Identity{Traits: want}); g != w {
		t.Fatalf("after a core re-put\n%s\nwant\n%s", g, w)
	}
}

// TestOverrideItems checks the flagsmith_environments_v2 items an Update
// writes and a Delete removes, attribute by attribute (api.md §4.4), and
// the Env.ID fallback.
func TestOverrideItems(t *testing.T) {
	srv := startServer(t)
	st := srv.store(t)
	ctx := ctxT(t)
	env := identity.Env{APIKey: "pQuz", ID: "65061"}
	ov := func(id int64, value string) identity.Override {
		return identity.Override{Feature: identity.FeatureRef{ID: id, Name: fmt.Sprint("f", id), Type: "STANDARD"},
			Enabled: true, Value: json.RawMessage(value), FeatureStateUUID: fmt.Sprintf("fs-%d", id)}
	}
	set := func(ovs ...identity.Override) *identity.Identity {
		t.Helper()
		got, err := st.Update(ctx, env, "user_1", func(cur *identity.Identity) (*identity.Identity, error) {
			if cur == nil {
				cur = &identity.Identity{}
			}
			cur.Overrides = ovs
			return cur, nil
		})
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		return got
	}
	v2 := func() map[string]map[string]types.AttributeValue {
		t.Helper()
		out, err := st.Client().Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(st.Tables().EnvironmentsV2),
			KeyConditionExpression:    aws.String("environment_id = :e"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":e": S("65061")},
			ConsistentRead:            aws.Bool(true),
		})
		if err != nil {
			t.Fatalf("Query v2: %v", err)
		}
		items := map[string]map[string]types.AttributeValue{}
		for _, it := range out.Items {
			items[it["document_key"].(*types.AttributeValueMemberS).Value] = it
		}
		return items
	}
	id := set(ov(1, `"a"`), ov(2, `7`))
	items := v2()
	if len(items) != 2 {
		t.Fatalf("%d v2 items; want 2", len(items))
	}
	key1 := "identity_override:1:" + id.UUID
	it := items[key1]
	if it == nil {
		t.Fatalf("no item %s among %v", key1, items)
	}
	created := avText(it["created_date"])
	if !strings.HasPrefix(created, `S:"20`) || !strings.HasSuffix(created, `+00:00"`) {
		t.Errorf("created_date = %s", created)
	}
	delete(it, "created_date")
	want := `M{document_key: S:"` + key1 + `", environment_api_key: S:"pQuz", environment_id: S:"65061", ` +
		`feature_state: M{django_id: NULL, enabled: BOOL:true, feature: M{id: N:1, name: S:"f1", type: S:"STANDARD"}, ` +
		`feature_segment: NULL, feature_state_value: S:"a", featurestate_uuid: S:"fs-1", multivariate_feature_state_values: L[]}, ` +
		`identifier: S:"user_1", identity_uuid: S:"` + id.UUID + `"}`
	if g := "M{" + mapText(it) + "}"; g != want {
		t.Errorf("v2 item\n got %s\nwant %s", g, want)
	}

	// Change 2, drop 1, add 3; an unchanged override is not rewritten.
	before := avText(v2()["identity_override:2:"+id.UUID]["created_date"])
	set(ov(2, `7`), ov(3, `true`))
	items = v2()
	if _, ok := items[key1]; ok || len(items) != 2 {
		t.Errorf("after removing feature 1: %d items, %s present %t", len(items), key1, ok)
	}
	if g := avText(items["identity_override:2:"+id.UUID]["created_date"]); g != before {
		t.Errorf("unchanged override rewritten (created_date %s, was %s)", g, before)
	}
	set(ov(2, `8`), ov(3, `true`))
	if g := avText(v2()["identity_override:2:"+id.UUID]["feature_state"].(*types.AttributeValueMemberM).Value["feature_state_value"]); g != "N:8" {
		t.Errorf("changed override's value = %s; want N:8", g)
	}
	if err := st.Delete(ctx, env, "user_1"); err != nil {
		t.Fatal(err)
	}
	if items := v2(); len(items) != 0 {
		t.Errorf("%d v2 items left after Delete", len(items))
	}

	// Without Env.ID: no v2 items, Overrides served from the identities.
	noID := identity.Env{APIKey: "pQuz"}
	for _, u := range []string{"b", "a"} {
		if _, err := st.Update(ctx, noID, u, func(*identity.Identity) (*identity.Identity, error) {
			return &identity.Identity{Overrides: []identity.Override{ov(5, `"x"`), ov(4, `"y"`)}}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if items := v2(); len(items) != 0 {
		t.Errorf("%d v2 items written without an environment id", len(items))
	}
	got, err := st.Overrides(ctx, noID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range got {
		keys = append(keys, o.DocumentKey())
	}
	if len(keys) != 4 || !sortedStrings(keys) {
		t.Errorf("fallback Overrides keys %q; want 4, sorted", keys)
	}
	if one, err := st.Overrides(ctx, noID, 5); err != nil || len(one) != 2 || one[0].Override.Feature.ID != 5 {
		t.Errorf("fallback Overrides(5) = %+v, %v", one, err)
	}
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i] < s[i-1] {
			return false
		}
	}
	return true
}

// TestCoreSystemTraitWriter runs core's cohort write (UpdateItem SET
// system_traits.#k, conditional, as identity_wrapper does) against Fledge
// updates of the same identity: neither side loses anything.
func TestCoreSystemTraitWriter(t *testing.T) {
	srv := startServer(t)
	st := srv.store(t)
	ctx := ctxT(t)
	env := identity.Env{APIKey: "envSys", ID: "1"}
	// Core's bare identity with an empty system_traits map.
	putRaw(t, st, st.Tables().Identities, M(
		"composite_key", S("envSys_u"), "environment_api_key", S("envSys"), "identifier", S("u"),
		"identity_uuid", S(identity.NewUUID()), "created_date", S("2024-01-01T00:00:00.000000+00:00"),
		"django_id", NULL(), "identity_traits", L(), "identity_features", L(), "system_traits", M(),
	))
	const n = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			_, err := st.Update(ctx, env, "u", func(cur *identity.Identity) (*identity.Identity, error) {
				cur.Traits = append(cur.Traits, identity.Trait{Key: fmt.Sprint("t", i), Value: engine.Int(int64(i))})
				return cur, nil
			})
			if err != nil {
				errs <- err
			}
		})
		wg.Go(func() {
			_, err := st.Client().UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName:                 aws.String(st.Tables().Identities),
				Key:                       map[string]types.AttributeValue{"composite_key": S("envSys_u")},
				UpdateExpression:          aws.String("SET system_traits.#tk = :value"),
				ConditionExpression:       aws.String("attribute_exists(system_traits)"),
				ExpressionAttributeNames:  map[string]string{"#tk": fmt.Sprint("cohort_", i)},
				ExpressionAttributeValues: map[string]types.AttributeValue{":value": B(true)},
			})
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, "envSys", "u")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Traits) != n || len(got.SystemTraits) != n {
		t.Fatalf("%d traits, %d system traits; want %d each", len(got.Traits), len(got.SystemTraits), n)
	}
	if g := avText(rawItem(t, st, "envSys_u")["fledge_version"]); g != fmt.Sprint("N:", n) {
		t.Errorf("fledge_version = %s; want N:%d (one per update)", g, n)
	}
}

// TestVersionCondition: an Update whose item changes between its read and
// its write loses the conditional write, reads again and retries, instead
// of overwriting what was written in between.
func TestVersionCondition(t *testing.T) {
	srv := startServer(t)
	st := srv.store(t)
	ctx := ctxT(t)
	env := identity.Env{APIKey: "envV"}
	addTrait := func(k string) identity.UpdateFunc {
		return func(cur *identity.Identity) (*identity.Identity, error) {
			if cur == nil {
				cur = &identity.Identity{}
			}
			cur.Traits = append(cur.Traits, identity.Trait{Key: k, Value: engine.Int(1)})
			return cur, nil
		}
	}
	corePut := func(identifier string, traits types.AttributeValue) {
		putRaw(t, st, st.Tables().Identities, M(
			"composite_key", S("envV_"+identifier), "environment_api_key", S("envV"), "identifier", S(identifier),
			"identity_uuid", S(identity.NewUUID()), "created_date", S("2024-01-01T00:00:00.000000+00:00"),
			"django_id", NULL(), "identity_traits", traits, "identity_features", L(),
		))
	}
	coreTrait := L(M("trait_key", S("core"), "trait_value", S("wrote")))
	cases := []struct {
		name        string
		setup       func(identifier string) // the item before the Update
		between     func(identifier string) // a write between its read and write
		wantTraits  []string
		wantVersion string
	}{
		{"Fledge's item, core re-puts it", func(id string) {
			for _, k := range []string{"a", "b"} {
				if _, err := st.Update(ctx, env, id, addTrait(k)); err != nil {
					t.Fatal(err)
				}
			}
		}, func(id string) { corePut(id, coreTrait) }, []string{"core", "d"}, "N:1"},
		{"core's item, another Fledge update", func(id string) { corePut(id, coreTrait) }, func(id string) {
			if _, err := st.Update(ctx, env, id, addTrait("other")); err != nil {
				t.Fatal(err)
			}
		}, []string{"core", "other", "d"}, "N:2"},
		{"core's item, deleted", func(id string) { corePut(id, coreTrait) }, func(id string) {
			if err := st.Delete(ctx, env, id); err != nil {
				t.Fatal(err)
			}
		}, []string{"d"}, "N:1"},
		{"new identity, created meanwhile", func(string) {}, func(id string) { corePut(id, coreTrait) }, []string{"core", "d"}, "N:1"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			identifier := fmt.Sprint("u", i)
			tc.setup(identifier)
			calls := 0
			got, err := st.Update(ctx, env, identifier, func(cur *identity.Identity) (*identity.Identity, error) {
				calls++
				if calls == 1 {
					tc.between(identifier)
				}
				return addTrait("d")(cur)
			})
			if err != nil {
				t.Fatal(err)
			}
			if calls != 2 {
				t.Errorf("fn called %d times; want 2 (one conflict)", calls)
			}
			var keys []string
			for _, tr := range got.Traits {
				keys = append(keys, tr.Key)
			}
			if strings.Join(keys, ",") != strings.Join(tc.wantTraits, ",") {
				t.Errorf("traits %q; want %q", keys, tc.wantTraits)
			}
			if g := avText(rawItem(t, st, "envV_"+identifier)["fledge_version"]); g != tc.wantVersion {
				t.Errorf("fledge_version = %s; want %s", g, tc.wantVersion)
			}
		})
	}
}

func TestValidationBeforeWrite(t *testing.T) {
	srv := startServer(t)
	st := srv.store(t)
	ctx := ctxT(t)
	env := identity.Env{APIKey: "envX", ID: "3"}
	cases := []struct {
		name       string
		identifier string
		id         *identity.Identity
		want       error
	}{
		{"identifier over 1024 bytes", strings.Repeat("é", 513), &identity.Identity{}, identity.ErrInvalid},
		{"item over 400 KB", "big", &identity.Identity{Traits: bigTraits()}, identity.ErrTooLarge},
		{"number out of DynamoDB's range", "n", &identity.Identity{Traits: []identity.Trait{{Key: "x", Value: engine.Float(1e200)}}}, identity.ErrInvalid},
		{"40 significant digits", "n", &identity.Identity{Traits: []identity.Trait{{Key: "x",
			Value: engine.Value{Kind: engine.KindInt, Big: mustBig("1234567890123456789012345678901234567891")}}}}, identity.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.Update(ctx, env, tc.identifier, func(*identity.Identity) (*identity.Identity, error) { return tc.id, nil })
			if !errors.Is(err, tc.want) {
				t.Fatalf("Update = %v; want %v", err, tc.want)
			}
		})
	}
	out, err := st.Client().Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(st.Tables().Identities)})
	if err != nil || len(out.Items) != 0 {
		t.Fatalf("Scan after rejected writes: %d items, %v", len(out.Items), err)
	}
}

func bigTraits() []identity.Trait {
	var ts []identity.Trait
	for i := range 210 {
		ts = append(ts, identity.Trait{Key: fmt.Sprintf("t%03d", i), Value: engine.String(strings.Repeat("x", 2000))})
	}
	return ts
}
