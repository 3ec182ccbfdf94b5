package avjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// tokenJSONToAV is the token-by-token converter FromJSON replaced (in the
// identity store and in the tests' core writer), kept as the oracle it must
// agree with.
func tokenJSONToAV(data []byte) (types.AttributeValue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	av, err := tokenDecodeAV(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return av, nil
}

func tokenDecodeAV(dec *json.Decoder) (types.AttributeValue, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := make(map[string]types.AttributeValue)
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := tokenDecodeAV(dec)
				if err != nil {
					return nil, err
				}
				m[k] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return &types.AttributeValueMemberM{Value: m}, nil
		case '[':
			l := []types.AttributeValue{}
			for dec.More() {
				v, err := tokenDecodeAV(dec)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return &types.AttributeValueMemberL{Value: l}, nil
		}
		return nil, fmt.Errorf("unexpected %v in JSON", t)
	case string:
		return &types.AttributeValueMemberS{Value: t}, nil
	case json.Number:
		return &types.AttributeValueMemberN{Value: t.String()}, nil
	case bool:
		return &types.AttributeValueMemberBOOL{Value: t}, nil
	case nil:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// benchItem is the item JSON of an identity with n traits of every kind
// and an override.
func benchItem(t testing.TB, n int) []byte {
	id := &identity.Identity{EnvironmentAPIKey: "env", Identifier: "user-1", UUID: "0f6c3f2e-1111-2222-3333-444455556666"}
	for i := range n {
		var v engine.Value
		switch i % 4 {
		case 0:
			v = engine.String(fmt.Sprintf("value-%d \u00e9\"", i))
		case 1:
			v = engine.Int(int64(i) * 1000003)
		case 2:
			v = engine.Float(float64(i) + 0.25)
		default:
			v = engine.Bool(i%2 == 0)
		}
		id.Traits = append(id.Traits, identity.Trait{Key: fmt.Sprintf("trait_%02d", i), Value: v})
	}
	id.Overrides = []identity.Override{{Feature: identity.FeatureRef{ID: 7, Name: "f"}, Enabled: true, Value: []byte(`{"a":[1,2.5,"x",null,true]}`)}}
	data, err := identity.MarshalItem(id)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestFromJSONMatchesTokenDecoder(t *testing.T) {
	cases := []string{
		`null`, `true`, `false`, `0`, `-1.5e300`, `123456789012345678901234567890`, `""`, `"\u00e9\ud83d\ude00"`,
		`"bad \xff utf-8"`, `[]`, `{}`, `[[],{},[null]]`, `{"a":1,"a":2}`, `{"a":{"b":[1,{"c":"d"}]}}`,
		` {"x" : [ 1 , 2 ] } `, `{"k":"v"} `,
		string(benchItem(t, 0)), string(benchItem(t, 15)),
	}
	for _, c := range cases {
		got, gotErr := FromJSON([]byte(c))
		want, wantErr := tokenJSONToAV([]byte(c))
		if (gotErr != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%.60q: FromJSON = %#v, %v; token decoder = %#v, %v", c, got, gotErr, want, wantErr)
		}
	}
	for _, bad := range []string{``, `{`, `[1,]`, `{"a":1} {"b":2}`, `nul`, `{"a" 1}`} {
		if _, err := FromJSON([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		} else if _, err := tokenJSONToAV([]byte(bad)); err == nil {
			t.Errorf("%q: the oracle accepts it", bad)
		}
	}
}

func FuzzFromJSON(f *testing.F) {
	for _, s := range []string{`null`, `{"a":[1,"x",true,null,{}]}`, string(benchItem(f, 3))} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gotErr := FromJSON(data)
		want, wantErr := tokenJSONToAV(data)
		if (gotErr != nil) != (wantErr != nil) {
			if strings.TrimSpace(string(data)) == "" {
				return
			}
			t.Fatalf("%q: errors differ: %v / %v", data, gotErr, wantErr)
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %#v / %#v", data, got, want)
		}
	})
}

func BenchmarkFromJSON(b *testing.B) {
	data := benchItem(b, 15)
	for _, c := range []struct {
		name string
		fn   func([]byte) (types.AttributeValue, error)
	}{{"token", tokenJSONToAV}, {"decode", FromJSON}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.fn(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
