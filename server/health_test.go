package server

import (
	"encoding/json"
	"testing"
)

// TestReadinessStoreStatus: the store's state is added to the readiness
// answer as "store", beside the edge proxy's fields, and only when a
// store reports one.
func TestReadinessStoreStatus(t *testing.T) {
	tests := []struct {
		name   string
		status func() any
		want   string // the "store" field as JSON; "" for absent
	}{
		{"no store status", nil, ""},
		{"region in use", func() any { return map[string]string{"type": "dynamodb", "region": "eu-west-2"} }, `{"region":"eu-west-2","type":"dynamodb"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newTestHandler(t, func(o *Options) { o.StoreStatus = tc.status })
			rec := do(h, "GET", "/proxy/health/readiness", "")
			var body map[string]json.RawMessage
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if rec.Code != 200 || string(body["status"]) != `"ok"` {
				t.Fatalf("readiness %d %s", rec.Code, rec.Body)
			}
			for _, k := range []string{"reason", "last_successful_update"} {
				if _, ok := body[k]; !ok {
					t.Errorf("field %s missing: %s", k, rec.Body)
				}
			}
			if got := string(body["store"]); got != tc.want {
				t.Errorf("store = %s; want %s", got, tc.want)
			}
		})
	}
}
