package jsonc

import (
	"encoding/json"
	"testing"
)

func TestStandardize(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "plain", in: `{"a":1}`, want: `{"a":1}`},
		{name: "line comment", in: "// hi\n{\"a\":1}", want: `{"a":1}`},
		{name: "comment after brace", in: "{ // note\n\"a\": \"x//y\"}", want: `{"a":"x//y"}`},
		{name: "block comment", in: `{/* c */"a":[1,2]}`, want: `{"a":[1,2]}`},
		{name: "trailing commas", in: `{"a":[1,2,],}`, want: `{"a":[1,2]}`},
		{name: "escaped quote", in: `{"a":"\"//"}`, want: `{"a":"\"//"}`},
		{name: "unterminated block", in: `{/* x`, wantErr: true},
		{name: "unterminated string", in: `{"a`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Standardize([]byte(tt.in))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("want error, got %q", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var a, b any
			if err := json.Unmarshal(got, &a); err != nil {
				t.Fatalf("output %q is not JSON: %v", got, err)
			}
			_ = json.Unmarshal([]byte(tt.want), &b)
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if string(ja) != string(jb) {
				t.Fatalf("got %s, want %s", ja, jb)
			}
		})
	}
}
