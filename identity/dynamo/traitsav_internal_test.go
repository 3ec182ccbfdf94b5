package dynamo

import (
	"math/big"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/internal/avjson"
)

// traitsOfBytes builds traits from fuzz or random bytes: keys and string
// values straight from them (invalid UTF-8 included), numbers, floats,
// big integers, booleans and null values.
func traitsOfBytes(data []byte) []identity.Trait {
	var traits []identity.Trait
	for i := 0; i+2 <= len(data); i += 2 {
		sel, n := data[i], int(data[i+1])
		end := min(len(data), i+2+n%9)
		raw := string(data[i+2 : end])
		var v engine.Value
		switch sel % 7 {
		case 0:
			v = engine.String(raw)
		case 1:
			v = engine.Int(int64(n) * -7919 * int64(sel))
		case 2:
			v = engine.Float(float64(n) / 8)
		case 3:
			v = engine.Float(float64(n) * 1e300)
		case 4:
			v = engine.Bool(n%2 == 1)
		case 5:
			b, _ := new(big.Int).SetString("9223372036854775808"+strconv.Itoa(n), 10)
			v = engine.Value{Kind: engine.KindInt, Big: b}
		default:
			v = engine.Value{} // KindNone
		}
		traits = append(traits, identity.Trait{Key: "k" + raw, Value: v})
		i = end - 2
	}
	return traits
}

func checkTraitsAV(t *testing.T, traits []identity.Trait) {
	t.Helper()
	data, err := identity.MarshalItem(&identity.Identity{EnvironmentAPIKey: "e", Identifier: "i", Traits: traits})
	if err != nil {
		return // not storable: updateInput never sees it
	}
	item, err := avjson.FromJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	want := item.(*types.AttributeValueMemberM).Value[attrTraits]
	if got := traitsAV(traits); !reflect.DeepEqual(got, want) {
		t.Fatalf("traits %#v:\ntraitsAV  %#v\nitem JSON %#v", traits, got, want)
	}
}

func TestTraitsAVMatchesItemJSON(t *testing.T) {
	checkTraitsAV(t, nil)
	checkTraitsAV(t, []identity.Trait{{Key: "bad \xff\xfe key", Value: engine.String("bad \xc3 value \u00e9 \"q\" <>&")}})
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		data := make([]byte, rng.IntN(64))
		for i := range data {
			data[i] = byte(rng.UintN(256))
		}
		checkTraitsAV(t, traitsOfBytes(data))
	}
}

func FuzzTraitsAV(f *testing.F) {
	f.Add([]byte("\x00\x05hello\x01\x03\x02\x04\x03\x01\x04\x01\x05\x02\x06\x00"))
	f.Add([]byte("\x00\x03\xff\xfe\xc3"))
	f.Fuzz(func(t *testing.T, data []byte) { checkTraitsAV(t, traitsOfBytes(data)) })
}
