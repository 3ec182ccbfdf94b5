package server

import (
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/fledge-flags/fledge/sdk"
)

// queryIdentifier reads ?identifier= from a raw query string with the rule
// the request body follows: the value must decode, and be valid UTF-8, or
// the request gets 422 naming the field. url.Values would drop a pair that
// does not decode (so "%zz" read as "Field required") and let "%ff" through
// as bytes that later turn into U+FFFD. Other parameters are not looked at,
// so a malformed one does not spoil the request. The first identifier
// wins, as with url.Values.Get.
func queryIdentifier(rawQuery string) (string, *sdk.FieldError) {
	for rest := rawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		k, v, _ := strings.Cut(pair, "=")
		if key, err := url.QueryUnescape(k); err != nil || key != "identifier" {
			continue
		}
		id, err := url.QueryUnescape(v)
		switch {
		case err != nil:
			return "", &sdk.FieldError{Loc: []any{"query", "identifier"}, Type: "value_error", Msg: "malformed percent-encoding in the query string"}
		case !utf8.ValidString(id):
			return "", &sdk.FieldError{Loc: []any{"query", "identifier"}, Type: "value_error", Msg: "identifier is not valid UTF-8"}
		}
		return id, nil
	}
	return "", nil
}
