package config

import (
	"strconv"
	"strings"

	"github.com/fledge-flags/fledge/internal/redact"
)

// Settings of the api role (fledge api). The proxy ignores them.

// DefaultStorePath is where the embedded store keeps its database.
const DefaultStorePath = "fledge-data"

// minAdminTokenChars keeps guessable admin tokens out: a token is a
// credential for every identity's traits.
const minAdminTokenChars = 16

// Store selects and configures the identity store.
type Store struct {
	// Type is "embedded" (bbolt in Path, the default) or "dynamodb".
	Type string `json:"type"`
	// Path is the embedded store's directory.
	Path string `json:"path"`
	// DynamoDB configures the dynamodb store (config/dynamodb.go).
	DynamoDB DynamoDB `json:"dynamodb"`
}

// Admin configures the edge-identities admin API.
type Admin struct {
	// Tokens are accepted as "Authorization: Token T" or "Api-Key T".
	// None: the admin API is off (404).
	Tokens []string `json:"tokens"`
}

// API holds the api role's behaviour switches.
type API struct {
	// EvaluateDisallowedClientTraits is the SaaS Edge API's behaviour
	// (flagsmith#6822): with allow_client_traits off, traits sent with a
	// client key are evaluated though never stored. Off: core's behaviour,
	// such traits are dropped entirely.
	EvaluateDisallowedClientTraits bool `json:"evaluate_disallowed_client_traits"`
}

// Forwarding verifies writes a self-hosted Flagsmith forwards to the api
// role (EDGE_API_URL pointing at Fledge).
type Forwarding struct {
	// SigningKey is Flagsmith's EDGE_REQUEST_SIGNING_KEY. Forwarded
	// requests (those carrying X-Flagsmith-Signature) must verify against
	// it; empty: the header is ignored.
	SigningKey string `json:"signing_key"`
}

func (d *decoder) forwarding(dst *Forwarding) setter {
	return func(v any, key, shown string) {
		d.object(v, key, shown, []field{
			{names: []string{"signing_key"}, set: d.str(&dst.SigningKey)},
		})
	}
}

func defaultStore() Store {
	return Store{Type: "embedded", Path: DefaultStorePath, DynamoDB: defaultDynamoDB()}
}

func (d *decoder) store(dst *Store) setter {
	return func(v any, key, shown string) {
		d.object(v, key, shown, []field{
			{names: []string{"type"}, set: d.str(&dst.Type)},
			{names: []string{"path"}, set: d.str(&dst.Path)},
			{names: []string{"dynamodb"}, set: d.dynamodb(&dst.DynamoDB)},
		})
	}
}

func (d *decoder) admin(dst *Admin) setter {
	return func(v any, key, shown string) {
		d.object(v, key, shown, []field{
			{names: []string{"tokens"}, set: d.strList(&dst.Tokens)},
		})
	}
}

func (d *decoder) api(dst *API) setter {
	return func(v any, key, shown string) {
		d.object(v, key, shown, []field{
			{names: []string{"evaluate_disallowed_client_traits"}, set: d.boolean(&dst.EvaluateDisallowedClientTraits)},
		})
	}
}

func (c *Config) validateAPI() error {
	c.Store.Type = strings.ToLower(strings.TrimSpace(c.Store.Type))
	switch c.Store.Type {
	case "":
		c.Store.Type = "embedded"
	case "embedded", "dynamodb":
	default:
		return settingError("store.type", `must be "embedded" or "dynamodb", not `+strconv.Quote(c.Store.Type))
	}
	if c.Store.Type == "embedded" && strings.TrimSpace(c.Store.Path) == "" {
		return settingError("store.path", "must not be empty")
	}
	if k := c.Forwarding.SigningKey; k != "" && len(k) < minAdminTokenChars {
		return settingError("forwarding.signing_key", "must be at least "+strconv.Itoa(minAdminTokenChars)+" characters")
	}
	if err := c.validateDynamoDB(); err != nil {
		return err
	}
	for i, t := range c.Admin.Tokens {
		at := "admin.tokens[" + strconv.Itoa(i) + "]"
		if strings.TrimSpace(t) != t || strings.ContainsAny(t, " \t\r\n") {
			return settingError(at, "must not contain spaces")
		}
		if len(t) < minAdminTokenChars {
			return settingError(at, "must be at least "+strconv.Itoa(minAdminTokenChars)+" characters")
		}
	}
	return nil
}

func redactTokens(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = redact.Key(t)
	}
	return out
}
