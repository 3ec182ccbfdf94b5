package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
)

var fixtures = filepath.Join("..", "testdata", "fixtures", "environment-documents")

func mustDecode(t *testing.T, body string) *IdentityRequest {
	t.Helper()
	req, err := DecodeIdentityRequest([]byte(body))
	if err != nil {
		t.Fatalf("DecodeIdentityRequest(%.200s): %v", body, err)
	}
	return req
}

func mustFieldError(t *testing.T, body []byte) *FieldError {
	t.Helper()
	req, err := DecodeIdentityRequest(body)
	if err == nil {
		t.Fatalf("DecodeIdentityRequest(%.200q) accepted: %+v", body, req)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %T is not a *FieldError: %v", err, err)
	}
	return fe
}

func traitsBody(traits string) string {
	return `{"identifier":"u1","traits":[` + traits + `]}`
}

func TestDecodeIdentityRequestValid(t *testing.T) {
	body := `{
	  "identifier": "user_123",
	  "transient": false,
	  "traits": [
	    {"trait_key": "plan", "trait_value": "premium"},
	    {"trait_key": "age", "trait_value": 42},
	    {"trait_key": "beta", "trait_value": true},
	    {"trait_key": "score", "trait_value": 4.5},
	    {"trait_key": "old_trait", "trait_value": null},
	    {"trait_key": "tenant", "trait_value": "acme", "transient": true}
	  ]
	}`
	req := mustDecode(t, body)
	if req.Identity.Identifier != "user_123" || req.Identity.Key != "" || req.Transient {
		t.Errorf("request = %+v", req)
	}
	wantTraits := []engine.Trait{
		{Name: "plan", Value: engine.String("premium")},
		{Name: "age", Value: engine.Int(42)},
		{Name: "beta", Value: engine.Bool(true)},
		{Name: "score", Value: engine.Float(4.5)},
		{Name: "old_trait", Value: engine.None()},
		{Name: "tenant", Value: engine.String("acme")},
	}
	if !reflect.DeepEqual(req.Identity.Traits, wantTraits) {
		t.Errorf("traits\n got: %+v\nwant: %+v", req.Identity.Traits, wantTraits)
	}
	wantRaw := []RawTrait{
		{Key: "plan", Value: json.RawMessage(`"premium"`)},
		{Key: "age", Value: json.RawMessage(`42`)},
		{Key: "beta", Value: json.RawMessage(`true`)},
		{Key: "score", Value: json.RawMessage(`4.5`)},
		{Key: "old_trait", Value: json.RawMessage(`null`)},
		{Key: "tenant", Value: json.RawMessage(`"acme"`), Transient: true},
	}
	if !reflect.DeepEqual(req.RawTraits, wantRaw) {
		t.Errorf("raw traits\n got: %+v\nwant: %+v", req.RawTraits, wantRaw)
	}
}

func TestDecodeIdentityRequestTraitsAbsentOrNull(t *testing.T) {
	for _, body := range []string{
		`{"identifier":"u1"}`,
		`{"identifier":"u1","traits":null}`,
		`{"identifier":"u1","traits":[]}`,
	} {
		req := mustDecode(t, body)
		if len(req.Identity.Traits) != 0 || len(req.RawTraits) != 0 || req.Identity.Identifier != "u1" {
			t.Errorf("%s: %+v", body, req)
		}
	}
}

func TestDecodeTraitValueTypes(t *testing.T) {
	big, _ := engine.NumberValue("123456789012345678901234567890")
	tests := []struct {
		name, literal string
		want          engine.Value
		wantRaw       string
	}{
		{"string", `"premium"`, engine.String("premium"), `"premium"`},
		{"empty string", `""`, engine.String(""), `""`},
		{"numeric string stays a string here", `"42"`, engine.String("42"), `"42"`},
		{"escaped string", `"a\"b\u00e9"`, engine.String("a\"bé"), `"a\"b\u00e9"`},
		{"int", `42`, engine.Int(42), `42`},
		{"negative int", `-7`, engine.Int(-7), `-7`},
		{"big int", `123456789012345678901234567890`, big, `123456789012345678901234567890`},
		{"float", `4.5`, engine.Float(4.5), `4.5`},
		{"integral float keeps its kind", `30.0`, engine.Float(30), `30.0`},
		{"exponent float", `1e3`, engine.Float(1000), `1e3`},
		{"true", `true`, engine.Bool(true), `true`},
		{"false", `false`, engine.Bool(false), `false`},
		{"null", `null`, engine.None(), `null`},
		{"object stringified", `{"a":1}`, engine.String("{'a': 1}"), `{"a":1}`},
		{"list stringified", `[1,"x",true,null]`, engine.String("[1, 'x', True, None]"), `[1,"x",true,null]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := mustDecode(t, traitsBody(`{"trait_key":"k","trait_value":`+tc.literal+`}`))
			if got := req.Identity.Traits[0].Value; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("value = %+v, want %+v", got, tc.want)
			}
			if got := string(req.RawTraits[0].Value); got != tc.wantRaw {
				t.Errorf("raw = %s, want %s", got, tc.wantRaw)
			}
		})
	}
	t.Run("absent trait_value is null", func(t *testing.T) {
		req := mustDecode(t, traitsBody(`{"trait_key":"k"}`))
		if !req.Identity.Traits[0].Value.IsNone() || string(req.RawTraits[0].Value) != "null" {
			t.Errorf("got %+v / %s", req.Identity.Traits[0].Value, req.RawTraits[0].Value)
		}
	})
}

func TestDecodeIdentityRequestLimits(t *testing.T) {
	s := strings.Repeat
	str := func(x string) string { b, _ := json.Marshal(x); return string(b) }
	tests := []struct {
		name    string
		body    string
		wantLoc []any // nil: accepted
		wantTyp string
	}{
		{"trait value of 2000 chars", traitsBody(`{"trait_key":"k","trait_value":` + str(s("x", 2000)) + `}`), nil, ""},
		{"trait value of 2000 multibyte chars", traitsBody(`{"trait_key":"k","trait_value":` + str(s("é", 2000)) + `}`), nil, ""},
		{"trait value of 2000 astral chars", traitsBody(`{"trait_key":"k","trait_value":` + str(s("😀", 2000)) + `}`), nil, ""},
		{"trait value of 2001 chars", traitsBody(`{"trait_key":"k","trait_value":` + str(s("x", 2001)) + `}`),
			[]any{"body", "traits", 0, "trait_value"}, "string_too_long"},
		{"trait value of 2001 chars in the third trait", traitsBody(`{"trait_key":"a","trait_value":1},{"trait_key":"b","trait_value":"x"},` +
			`{"trait_key":"k","trait_value":` + str(s("é", 2001)) + `}`),
			[]any{"body", "traits", 2, "trait_value"}, "string_too_long"},
		{"trait key of 200 chars", traitsBody(`{"trait_key":` + str(s("k", 200)) + `,"trait_value":1}`), nil, ""},
		{"trait key of 200 multibyte chars", traitsBody(`{"trait_key":` + str(s("ü", 200)) + `,"trait_value":1}`), nil, ""},
		{"trait key of 201 chars", traitsBody(`{"trait_key":` + str(s("k", 201)) + `,"trait_value":1}`),
			[]any{"body", "traits", 0, "trait_key"}, "string_too_long"},
		{"missing trait key", traitsBody(`{"trait_value":1}`), []any{"body", "traits", 0, "trait_key"}, "missing"},
		{"empty trait key", traitsBody(`{"trait_key":"","trait_value":1}`), []any{"body", "traits", 0, "trait_key"}, "string_too_short"},
		{"null trait key", traitsBody(`{"trait_key":null,"trait_value":1}`), []any{"body", "traits", 0, "trait_key"}, "string_type"},
		{"numeric trait key", traitsBody(`{"trait_key":5,"trait_value":1}`), []any{"body", "traits", 0, "trait_key"}, "string_type"},
		{"trait is not an object", traitsBody(`{"trait_key":"a","trait_value":1},"x"`), []any{"body", "traits", 1}, "model_type"},
		{"traits is an object", `{"identifier":"u1","traits":{"a":1}}`, []any{"body", "traits"}, "list_type"},
		{"trait transient not a bool", traitsBody(`{"trait_key":"k","trait_value":1,"transient":"yes"}`),
			[]any{"body", "traits", 0, "transient"}, "bool_type"},
		{"identifier of 2000 chars", `{"identifier":` + str(s("i", 2000)) + `}`, nil, ""},
		{"identifier of 2000 multibyte chars", `{"identifier":` + str(s("ß", 2000)) + `}`, nil, ""},
		{"identifier of 2001 chars", `{"identifier":` + str(s("i", 2001)) + `}`, []any{"body", "identifier"}, "string_too_long"},
		{"missing identifier", `{"traits":[]}`, []any{"body", "identifier"}, "missing"},
		{"null identifier", `{"identifier":null}`, []any{"body", "identifier"}, "missing"},
		{"empty identifier", `{"identifier":""}`, []any{"body", "identifier"}, "string_too_short"},
		{"numeric identifier", `{"identifier":123}`, []any{"body", "identifier"}, "string_type"},
		{"object identifier", `{"identifier":{"a":1}}`, []any{"body", "identifier"}, "string_type"},
		{"transient not a bool", `{"identifier":"u1","transient":"true"}`, []any{"body", "transient"}, "bool_type"},
		{"malformed JSON", `{"identifier":"u1"`, []any{"body"}, "json_invalid"},
		{"trailing garbage", `{"identifier":"u1"} x`, []any{"body"}, "json_invalid"},
		{"trailing NUL byte", "{\"identifier\":\"u1\"}\x00", []any{"body"}, "json_invalid"},
		{"empty body", ``, []any{"body"}, "json_invalid"},
		{"a list body", `[{"identifier":"u1"}]`, []any{"body"}, "model_attributes_type"},
		{"a string body", `"u1"`, []any{"body"}, "model_attributes_type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantLoc == nil {
				mustDecode(t, tc.body)
				return
			}
			fe := mustFieldError(t, []byte(tc.body))
			if !reflect.DeepEqual(fe.Loc, tc.wantLoc) || fe.Type != tc.wantTyp || fe.Msg == "" {
				t.Errorf("error = %+v, want loc %v type %s", fe, tc.wantLoc, tc.wantTyp)
			}
		})
	}
}

func TestDecodeIdentityRequestInvalidUTF8(t *testing.T) {
	for _, body := range [][]byte{
		[]byte("\xff\xfe"),
		[]byte(`{"identifier":"u` + "\xff" + `"}`),
		[]byte(`{"identifier":"u1","traits":[{"trait_key":"k","trait_value":"` + "\xc3\x28" + `"}]}`),
	} {
		fe := mustFieldError(t, body)
		if fe.Type != "json_invalid" || !reflect.DeepEqual(fe.Loc, []any{"body"}) {
			t.Errorf("%q: %+v", body, fe)
		}
	}
}

func TestFieldErrorJSON(t *testing.T) {
	body := traitsBody(`{"trait_key":"k","trait_value":` + `"` + strings.Repeat("x", 2001) + `"}`)
	fe := mustFieldError(t, []byte(body))
	var got map[string][]map[string]any
	if err := json.Unmarshal(fe.JSON(), &got); err != nil {
		t.Fatalf("422 body %s: %v", fe.JSON(), err)
	}
	if len(got) != 1 || len(got["detail"]) != 1 {
		t.Fatalf("422 body = %s", fe.JSON())
	}
	d := got["detail"][0]
	if len(d) != 3 || d["type"] != "string_too_long" || d["msg"] != "Value string is too long. Must be less than 2000 character" ||
		!reflect.DeepEqual(d["loc"], []any{"body", "traits", float64(0), "trait_value"}) {
		t.Errorf("detail = %v", d)
	}
	if fe.Error() != "body.traits.0.trait_value: Value string is too long. Must be less than 2000 character" {
		t.Errorf("Error() = %q", fe.Error())
	}
}

func TestDecodeIdentityRequestManyTraits(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"identifier":"bulk","traits":[`)
	for i := 0; i < 10000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"trait_key":"k`)
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(`","trait_value":`)
		b.WriteString([]string{`1`, `"s"`, `true`, `null`, `2.5`}[i%5])
		b.WriteString(`}`)
	}
	b.WriteString(`]}`)
	req := mustDecode(t, b.String())
	if len(req.Identity.Traits) != 10000 || len(req.RawTraits) != 10000 {
		t.Errorf("decoded %d/%d traits", len(req.Identity.Traits), len(req.RawTraits))
	}
}

func TestDecodeIdentityRequestIgnoresUnknownKeys(t *testing.T) {
	req := mustDecode(t, `{"identifier":"u1","extra":{"a":[1]},"traits":[{"trait_key":"k","trait_value":1,"id":5,"other":null}],"$x":1}`)
	if req.Identity.Identifier != "u1" || len(req.RawTraits) != 1 || req.RawTraits[0].Key != "k" {
		t.Errorf("request = %+v", req)
	}
}

func TestDecodeIdentityRequestTransient(t *testing.T) {
	tests := []struct {
		body          string
		want          bool
		wantTraitFlag []bool
	}{
		{`{"identifier":"u"}`, false, nil},
		{`{"identifier":"u","transient":null}`, false, nil},
		{`{"identifier":"u","transient":false}`, false, nil},
		{`{"identifier":"u","transient":true}`, true, nil},
		{`{"identifier":"u","traits":[{"trait_key":"a","trait_value":1,"transient":true},{"trait_key":"b","trait_value":1,"transient":false},` +
			`{"trait_key":"c","trait_value":1,"transient":null},{"trait_key":"d","trait_value":1}]}`, false, []bool{true, false, false, false}},
	}
	for _, tc := range tests {
		req := mustDecode(t, tc.body)
		if req.Transient != tc.want {
			t.Errorf("%s: transient = %v", tc.body, req.Transient)
		}
		var flags []bool
		for _, rt := range req.RawTraits {
			flags = append(flags, rt.Transient)
		}
		if !reflect.DeepEqual(flags, tc.wantTraitFlag) {
			t.Errorf("%s: trait transient = %v, want %v", tc.body, flags, tc.wantTraitFlag)
		}
	}
}

// ---- AppendIdentityResponse ----

func snapshotFrom(t *testing.T, raw []byte) *environment.Snapshot {
	t.Helper()
	d, err := environment.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	s, err := environment.Compile(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func workedExample(t *testing.T, edit func(map[string]any)) *environment.Snapshot {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fixtures, "environment.json"))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		if raw, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
	}
	return snapshotFrom(t, raw)
}

const (
	sfHead = `{"feature":{"id":1,"name":"some_feature","type":"STANDARD"},`
	mvBar  = `{"feature":{"id":2,"name":"mv_feature","type":"MULTIVARIATE"},"enabled":false,"feature_state_value":"bar"}`
)

func TestAppendIdentityResponse(t *testing.T) {
	snap := workedExample(t, nil)
	hidden := workedExample(t, func(m map[string]any) { m["hide_sensitive_data"] = true })
	tests := []struct {
		name string
		snap *environment.Snapshot
		kind environment.KeyKind
		body string
		want string
	}{
		{
			name: "identity override, traits echoed verbatim",
			snap: snap, kind: environment.ClientKey,
			body: `{"identifier":"overridden-id","traits":[{"trait_key":"plan","trait_value":"premium"},{"trait_key":"age","trait_value":42},` +
				`{"trait_key":"beta","trait_value":true},{"trait_key":"score","trait_value":4.50},{"trait_key":"old","trait_value":null},` +
				`{"trait_key":"tenant","trait_value":"acme","transient":true},{"trait_key":"nt","trait_value":"x","transient":false}]}`,
			want: `{"identifier":"overridden-id","flags":[` + sfHead + `"enabled":false,"feature_state_value":"some-overridden-value"},` + mvBar + `],` +
				`"traits":[{"trait_key":"plan","trait_value":"premium"},{"trait_key":"age","trait_value":42},{"trait_key":"beta","trait_value":true},` +
				`{"trait_key":"score","trait_value":4.50},{"trait_key":"old","trait_value":null},` +
				`{"trait_key":"tenant","trait_value":"acme","transient":true},{"trait_key":"nt","trait_value":"x"}]}`,
		},
		{
			name: "segment override from a trait",
			snap: snap, kind: environment.ServerKey,
			body: `{"identifier":"u1","traits":[{"trait_key":"age","trait_value":30}]}`,
			want: `{"identifier":"u1","flags":[` + sfHead + `"enabled":false,"feature_state_value":"segment_override"},` + mvBar + `],` +
				`"traits":[{"trait_key":"age","trait_value":30}]}`,
		},
		{
			name: "numeric string trait is normalised for evaluation, echoed as sent",
			snap: snap, kind: environment.ServerKey,
			body: `{"identifier":"u2","traits":[{"trait_key":"age","trait_value":"50"}]}`,
			want: `{"identifier":"u2","flags":[` + sfHead + `"enabled":true,"feature_state_value":"some-value"},` + mvBar + `],` +
				`"traits":[{"trait_key":"age","trait_value":"50"}]}`,
		},
		{
			name: "no traits",
			snap: snap, kind: environment.ServerKey,
			body: `{"identifier":"u3"}`,
			want: `{"identifier":"u3","flags":[` + sfHead + `"enabled":true,"feature_state_value":"some-value"},` + mvBar + `],"traits":[]}`,
		},
		{
			name: "hide_sensitive_data drops traits",
			snap: hidden, kind: environment.ServerKey,
			body: `{"identifier":"u1","traits":[{"trait_key":"age","trait_value":30},{"trait_key":"t","trait_value":"x","transient":true}]}`,
			want: `{"identifier":"u1","flags":[` + sfHead + `"enabled":false,"feature_state_value":"segment_override"},` + mvBar + `],"traits":[]}`,
		},
		{
			name: "object trait echoed",
			snap: snap, kind: environment.ServerKey,
			body: `{"identifier":"u4","traits":[{"trait_key":"obj","trait_value":{"a":[1,2]}}]}`,
			want: `{"identifier":"u4","flags":[` + sfHead + `"enabled":true,"feature_state_value":"some-value"},` + mvBar + `],` +
				`"traits":[{"trait_key":"obj","trait_value":{"a":[1,2]}}]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := mustDecode(t, tc.body)
			got := AppendIdentityResponse([]byte("prefix"), tc.snap, tc.kind, req)
			if string(got) != "prefix"+tc.want {
				t.Errorf("response\n got: %s\nwant: prefix%s", got, tc.want)
			}
		})
	}
}

func TestAppendIdentityResponseFiltering(t *testing.T) {
	hide := workedExample(t, func(m map[string]any) {
		m["hide_disabled_flags"] = true
		m["project"].(map[string]any)["server_key_only_feature_ids"] = []any{2}
	})
	req := mustDecode(t, `{"identifier":"u1","traits":[{"trait_key":"age","trait_value":30}]}`)
	if got, want := string(AppendIdentityResponse(nil, hide, environment.ClientKey, req)),
		`{"identifier":"u1","flags":[],"traits":[{"trait_key":"age","trait_value":30}]}`; got != want {
		t.Errorf("client\n got: %s\nwant: %s", got, want)
	}
	req = mustDecode(t, `{"identifier":"u2"}`)
	if got, want := string(AppendIdentityResponse(nil, hide, environment.ClientKey, req)),
		`{"identifier":"u2","flags":[`+sfHead+`"enabled":true,"feature_state_value":"some-value"}],"traits":[]}`; got != want {
		t.Errorf("client\n got: %s\nwant: %s", got, want)
	}
	if got, want := string(AppendIdentityResponse(nil, hide, environment.ServerKey, req)),
		`{"identifier":"u2","flags":[`+sfHead+`"enabled":true,"feature_state_value":"some-value"},`+mvBar+`],"traits":[]}`; got != want {
		t.Errorf("server\n got: %s\nwant: %s", got, want)
	}
}

func TestAppendIdentityResponseEscaping(t *testing.T) {
	snap := workedExample(t, nil)
	tests := []struct {
		identifier, wantJSON string
	}{
		{`plain`, `"plain"`},
		{`a"b\c`, `"a\"b\\c"`},
		{`<script>&`, `"\u003cscript\u003e\u0026"`},
		{"tab\tnl\n", `"tab\tnl\n"`},
		{"héllo ☃ 😀", `"héllo ☃ 😀"`},
		{"line\u2028sep", `"line\u2028sep"`},
		{"ctl\x01", `"ctl\u0001"`},
	}
	for _, tc := range tests {
		t.Run(tc.identifier, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"identifier": tc.identifier, "traits": []any{
				map[string]any{"trait_key": tc.identifier, "trait_value": tc.identifier}}})
			out := AppendIdentityResponse(nil, snap, environment.ServerKey, mustDecode(t, string(body)))
			if !bytes.HasPrefix(out, []byte(`{"identifier":`+tc.wantJSON+`,"flags":`)) {
				t.Errorf("response = %s, want identifier %s", out, tc.wantJSON)
			}
			var got struct {
				Identifier string `json:"identifier"`
				Traits     []struct {
					Key   string `json:"trait_key"`
					Value string `json:"trait_value"`
				} `json:"traits"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("invalid JSON %s: %v", out, err)
			}
			if got.Identifier != tc.identifier || len(got.Traits) != 1 || got.Traits[0].Key != tc.identifier || got.Traits[0].Value != tc.identifier {
				t.Errorf("round trip = %+v", got)
			}
		})
	}
}

func TestNonFiniteTraitValueRejected(t *testing.T) {
	for _, v := range []string{"1e400", "-1e400"} {
		_, err := DecodeIdentityRequest([]byte(`{"identifier":"u","traits":[{"trait_key":"k","trait_value":` + v + `}]}`))
		fe, ok := err.(*FieldError)
		if !ok || fe.Type != "finite_number" {
			t.Errorf("trait_value %s: got %v, want a finite_number field error", v, err)
		}
	}
}
