package dynamo

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Tables names Flagsmith's edge tables.
type Tables struct {
	// Identities holds one item per identity, keyed by composite_key.
	Identities string
	// Environments is the v1 environment document table, keyed by api_key.
	Environments string
	// EnvironmentsV2 holds the _META documents and the identity-override
	// items, keyed by environment_id and document_key.
	EnvironmentsV2 string
	// APIKeys maps server-side keys to client keys, keyed by key.
	APIKeys string
}

// Flagsmith's default table names.
const (
	DefaultIdentitiesTable     = "flagsmith_identities"
	DefaultEnvironmentsTable   = "flagsmith_environments"
	DefaultEnvironmentsV2Table = "flagsmith_environments_v2"
	DefaultAPIKeysTable        = "flagsmith_environment_api_key"
)

// The variables Flagsmith's core reads its table names from.
const (
	EnvIdentitiesTable     = "IDENTITIES_TABLE_NAME_DYNAMO"
	EnvEnvironmentsTable   = "ENVIRONMENTS_TABLE_NAME_DYNAMO"
	EnvEnvironmentsV2Table = "ENVIRONMENTS_V2_TABLE_NAME_DYNAMO"
	EnvAPIKeysTable        = "ENVIRONMENTS_API_KEY_TABLE_NAME_DYNAMO"
)

// DefaultTables returns Flagsmith's default table names.
func DefaultTables() Tables {
	return Tables{
		Identities:     DefaultIdentitiesTable,
		Environments:   DefaultEnvironmentsTable,
		EnvironmentsV2: DefaultEnvironmentsV2Table,
		APIKeys:        DefaultAPIKeysTable,
	}
}

// TablesFromEnv resolves the table names from core's variables, looked up
// with lookup (os.LookupEnv in production); an unset or empty variable
// keeps the default name.
func TablesFromEnv(lookup func(string) (string, bool)) Tables {
	t := DefaultTables()
	for _, v := range []struct {
		name string
		dst  *string
	}{
		{EnvIdentitiesTable, &t.Identities},
		{EnvEnvironmentsTable, &t.Environments},
		{EnvEnvironmentsV2Table, &t.EnvironmentsV2},
		{EnvAPIKeysTable, &t.APIKeys},
	} {
		if s, ok := lookup(v.name); ok && s != "" {
			*v.dst = s
		}
	}
	return t
}

// WithPrefix returns the names with prefix prepended, which lets several
// independent sets of tables share one DynamoDB (tests, staging).
func (t Tables) WithPrefix(prefix string) Tables {
	return Tables{
		Identities:     prefix + t.Identities,
		Environments:   prefix + t.Environments,
		EnvironmentsV2: prefix + t.EnvironmentsV2,
		APIKeys:        prefix + t.APIKeys,
	}
}

// Options configure a Store. The zero value uses Flagsmith's table names,
// the standard AWS credential chain and AWS_REGION.
type Options struct {
	// Tables; empty names take Flagsmith's defaults.
	Tables Tables
	// Region overrides the region from the AWS configuration (AWS_REGION,
	// the shared config file).
	Region string
	// Endpoint overrides DynamoDB's endpoint, e.g. http://127.0.0.1:4567
	// for dynalite or DynamoDB Local. With an endpoint and no region
	// configured, the region is us-east-1.
	Endpoint string
	// MaxAttempts bounds the read-modify-write attempts of Update when
	// concurrent writers keep winning the conditional write (default 64:
	// with the default backoff, about ten seconds of a hot identity's
	// contention before Update gives up with ErrUnavailable).
	MaxAttempts int
	// RetryBase and RetryMax shape the jittered exponential backoff between
	// those attempts (defaults 10ms and 320ms).
	RetryBase, RetryMax time.Duration
	// Logger receives reports of unreadable stored data; slog.Default()
	// when nil.
	Logger *slog.Logger
	// Now stamps created_date; time.Now when nil.
	Now func() time.Time
}

func (o *Options) withDefaults() {
	d := DefaultTables()
	for _, p := range []struct {
		dst *string
		def string
	}{
		{&o.Tables.Identities, d.Identities},
		{&o.Tables.Environments, d.Environments},
		{&o.Tables.EnvironmentsV2, d.EnvironmentsV2},
		{&o.Tables.APIKeys, d.APIKeys},
	} {
		if *p.dst == "" {
			*p.dst = p.def
		}
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 64
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 10 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 320 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// NewClient builds a DynamoDB client from the standard AWS configuration
// (environment variables, shared files, the credential chain), with
// opts.Region and opts.Endpoint applied.
func NewClient(ctx context.Context, opts Options) (*dynamodb.Client, error) {
	var lo []func(*config.LoadOptions) error
	if opts.Region != "" {
		lo = append(lo, config.WithRegion(opts.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		if opts.Endpoint == "" {
			return nil, fmt.Errorf("no AWS region: set AWS_REGION or the DynamoDB region option")
		}
		cfg.Region = "us-east-1"
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		ConfigureClient(o)
	}), nil
}

// ConfigureClient sets up a DynamoDB client's options as the store's own
// client has them: an HTTP client with room for idle connections, the
// endpoint resolved once instead of on every call, and the per-call SDK
// work a server has no use for left out (endpoint.go).
func ConfigureClient(o *dynamodb.Options) {
	o.HTTPClient = NewHTTPClient()
	o.EndpointResolverV2 = newEndpointCache(o.EndpointResolverV2)
	o.APIOptions = append(o.APIOptions, trimStack)
}

// Open builds a client with NewClient and returns a Store on it.
func Open(ctx context.Context, opts Options) (*Store, error) {
	c, err := NewClient(ctx, opts)
	if err != nil {
		return nil, err
	}
	return New(c, opts), nil
}

// maxIdleConns is how many idle connections to DynamoDB a client keeps.
// The SDK's default keeps 10 per host, so a node serving more concurrent
// requests than that opens (and, on DynamoDB, TLS-handshakes) a new
// connection for every request beyond ten.
const maxIdleConns = 256

// NewHTTPClient is the SDK's HTTP client with room for maxIdleConns idle
// connections per host.
func NewHTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = maxIdleConns
		t.MaxIdleConnsPerHost = maxIdleConns
	})
}
