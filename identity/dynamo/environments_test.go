package dynamo_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/identity/dynamo"
	"github.com/fledge-flags/fledge/internal/coreitems"
)

const envDoc = `{"id": 42, "api_key": "envKey0000000001", "name": "E", "updated_at": "2026-01-02T10:00:00+00:00",
 "use_identity_overrides_in_local_eval": true, "segment_config": {"api_key": "secret"},
 "project": {"id": 7, "name": "P <&>", "segments": [], "organisation": {"id": 1}, "server_key_only_feature_ids": []},
 "feature_states": [{"feature": {"id": 1, "name": "f", "type": "STANDARD"}, "enabled": true, "feature_state_value": 1.5,
   "django_id": null, "featurestate_uuid": "u1", "feature_segment": null, "multivariate_feature_state_values": []}],
 "identity_overrides": []}`

func writer(st *dynamo.Store) *coreitems.Writer {
	t := st.Tables()
	return &coreitems.Writer{DB: st.Client(), Tables: coreitems.Tables{Environments: t.Environments, EnvironmentsV2: t.EnvironmentsV2, APIKeys: t.APIKeys}}
}

// TestEnvironmentDocument: every stored shape of a document reads back as
// the same document, and one item always as the same bytes: keys in order, compressed attributes decompressed,
// compressed dropped, a _META item's storage attributes replaced by
// api_key.
func TestEnvironmentDocument(t *testing.T) {
	srv := startServer(t)
	const key = "envKey0000000001"
	var want []byte
	for _, tt := range []struct {
		name     string
		meta     bool
		compress bool
	}{{"v1", false, false}, {"v1 compressed", false, true}, {"_META", true, false}, {"_META compressed", true, true}} {
		t.Run(tt.name, func(t *testing.T) {
			st := srv.store(t)
			ctx := ctxT(t)
			w := writer(st)
			var err error
			if tt.meta {
				err = w.PutMeta(ctx, []byte(envDoc), tt.compress)
			} else {
				err = w.PutEnvironment(ctx, []byte(envDoc), tt.compress)
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.compress && !tt.meta {
				out, err := st.Client().GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.Tables().Environments),
					Key: map[string]types.AttributeValue{"api_key": S(key)}})
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := out.Item["project"].(*types.AttributeValueMemberB); !ok {
					t.Fatalf("project stored as %T, want Binary", out.Item["project"])
				}
			}
			got, err := st.EnvironmentDocument(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(got, &m); err != nil {
				t.Fatalf("%s: %v", got, err)
			}
			keys := []string{}
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			wantKeys := []string{"api_key", "feature_states", "id", "identity_overrides", "name", "project", "segment_config", "updated_at", "use_identity_overrides_in_local_eval"}
			if !slices.Equal(keys, wantKeys) {
				t.Errorf("attributes %v, want %v", keys, wantKeys)
			}
			if !bytes.Contains(got, []byte(`"feature_state_value":1.5`)) || !strings.Contains(string(m["api_key"]), key) {
				t.Errorf("document %s", got)
			}
			if want == nil {
				want = got
			} else if !sameJSON(t, got, want) {
				t.Errorf("read\n%s\nwant the same document as the first shape\n%s", got, want)
			}
			again, err := st.EnvironmentDocument(ctx, key)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("a second read differs: %v", err)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		st := srv.store(t)
		if _, err := st.EnvironmentDocument(ctxT(t), key); !errors.Is(err, dynamo.ErrNoDocument) {
			t.Errorf("error %v, want ErrNoDocument", err)
		}
	})
	t.Run("binary that is not gzip", func(t *testing.T) {
		st := srv.store(t)
		ctx := ctxT(t)
		if _, err := st.Client().PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.Tables().Environments), Item: map[string]types.AttributeValue{
			"api_key": S(key), "project": &types.AttributeValueMemberB{Value: []byte("{}")}, "compressed": B(true),
		}}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.EnvironmentDocument(ctx, key); err == nil || !strings.Contains(err.Error(), "project") {
			t.Errorf("error %v", err)
		}
		items, err := st.EnvironmentDocuments(ctx)
		if err != nil || len(items) != 1 || items[0].ClientKey != key || items[0].Err == nil {
			t.Errorf("scan: %+v %v", items, err)
		}
	})
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

func TestAPIKeys(t *testing.T) {
	srv := startServer(t)
	st := srv.store(t)
	ctx := ctxT(t)
	w := writer(st)
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, k := range []coreitems.APIKey{
		{Key: "ser.a", ClientKey: "A", ID: 1, Active: true},
		{Key: "ser.b", ClientKey: "A", ID: 2, Active: false, ExpiresAt: &exp},
	} {
		if err := w.PutAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	for _, item := range []map[string]types.AttributeValue{
		{"key": S("ser.c"), "client_api_key": S("B"), "active": B(true), "expires_at": S("next tuesday")},
		{"key": S("ser.d"), "client_api_key": S("B")},
		{"key": S("ser.e")},
	} {
		if _, err := st.Client().PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.Tables().APIKeys), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := st.APIKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(keys, func(a, b dynamo.APIKey) int { return strings.Compare(a.Key, b.Key) })
	want := []dynamo.APIKey{
		{Key: "ser.a", ClientKey: "A", Active: true},
		{Key: "ser.b", ClientKey: "A", ExpiresAt: exp},
		{Key: "ser.c", ClientKey: "B", Active: true, ExpiresAt: time.Unix(0, 0)}, // unreadable: expired
		{Key: "ser.d", ClientKey: "B"},                                           // no active: inactive
	}
	if len(keys) != len(want) {
		t.Fatalf("keys %+v, want %+v", keys, want)
	}
	for i := range want {
		if keys[i].Key != want[i].Key || keys[i].ClientKey != want[i].ClientKey || keys[i].Active != want[i].Active || !keys[i].ExpiresAt.Equal(want[i].ExpiresAt) {
			t.Errorf("key %d: %+v, want %+v", i, keys[i], want[i])
		}
	}
}

func TestOverrideEntries(t *testing.T) {
	srv := startServer(t)
	st := srv.store(t)
	ctx := ctxT(t)
	w := writer(st)
	fs := func(id int, v string) []byte {
		return []byte(`{"feature": {"id": ` + string(rune('0'+id)) + `, "name": "f` + string(rune('0'+id)) + `", "type": "STANDARD"}, "enabled": true, "feature_state_value": "` + v + `", "django_id": null, "featurestate_uuid": "x", "feature_segment": null, "multivariate_feature_state_values": []}`)
	}
	for _, o := range []coreitems.Override{
		{EnvironmentID: 42, ClientKey: "K", Identifier: "alice", IdentityUUID: "u-alice", FeatureState: fs(1, "a1")},
		{EnvironmentID: 42, ClientKey: "K", Identifier: "alice", IdentityUUID: "u-alice", FeatureState: fs(2, "a2")},
		{EnvironmentID: 42, ClientKey: "K", Identifier: "bob", IdentityUUID: "u-bob", FeatureState: fs(1, "b1")},
		{EnvironmentID: 43, ClientKey: "other", Identifier: "carol", IdentityUUID: "u-carol", FeatureState: fs(1, "c1")},
	} {
		if err := w.PutOverride(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.OverrideEntries(ctx, "42", "K")
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		Identifier        string `json:"identifier"`
		IdentityUUID      string `json:"identity_uuid"`
		EnvironmentAPIKey string `json:"environment_api_key"`
		IdentityFeatures  []struct {
			Value string `json:"feature_state_value"`
		} `json:"identity_features"`
	}
	var summary []string
	for _, raw := range got {
		var e entry
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		s := e.Identifier + "/" + e.IdentityUUID + "/" + e.EnvironmentAPIKey + ":"
		for _, f := range e.IdentityFeatures {
			s += " " + f.Value
		}
		summary = append(summary, s)
	}
	// Items come in document_key order: identity_override:1:u-alice,
	// identity_override:1:u-bob, identity_override:2:u-alice.
	want := []string{"alice/u-alice/K: a1 a2", "bob/u-bob/K: b1"}
	if !slices.Equal(summary, want) {
		t.Errorf("entries %q, want %q", summary, want)
	}
}
