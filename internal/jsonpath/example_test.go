package jsonpath_test

import (
	"encoding/json"
	"fmt"

	"github.com/fledge-flags/fledge/internal/jsonpath"
)

func Example() {
	var ctx any
	_ = json.Unmarshal([]byte(`{"identity": {"traits": {"age": 42, "my-trait": "x", "tags": ["a", "b"]}}}`), &ctx)

	age := jsonpath.MustParse(`$.identity.traits.age`)
	v, ok := age.First(ctx)
	fmt.Println(v, ok)

	names, _ := jsonpath.MustParse(`$.identity.traits.my-trait`).Names()
	fmt.Println(names)

	fmt.Println(jsonpath.MustParse(`$.identity.traits.tags[?@ != 'a']`).All(ctx))

	_, err := jsonpath.Parse(`$.identity. traits`)
	fmt.Println(err)
	// Output:
	// 42 true
	// [identity traits my-trait]
	// [b]
	// jsonpath: expected member name or '*' after '.', found ' ' at offset 11 in "$.identity. traits"
}
