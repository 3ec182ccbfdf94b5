package dynamo

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	smithyendpoints "github.com/aws/smithy-go/endpoints"
)

// countingResolver resolves to a URL naming the region and counts calls;
// region "bad" fails.
type countingResolver struct{ calls atomic.Int64 }

func (r *countingResolver) ResolveEndpoint(_ context.Context, p dynamodb.EndpointParameters) (smithyendpoints.Endpoint, error) {
	r.calls.Add(1)
	if aws.ToString(p.Region) == "bad" {
		return smithyendpoints.Endpoint{}, errors.New("no such region")
	}
	return smithyendpoints.Endpoint{URI: url.URL{Scheme: "https", Host: aws.ToString(p.Region) + ".example"}}, nil
}

func TestEndpointCache(t *testing.T) {
	inner := &countingResolver{}
	c := newEndpointCache(inner)
	ctx := t.Context()
	params := func(region string, fips *bool, arns ...string) dynamodb.EndpointParameters {
		return dynamodb.EndpointParameters{Region: aws.String(region), UseFIPS: fips, ResourceArnList: arns}
	}
	tests := []struct {
		name      string
		p         dynamodb.EndpointParameters
		wantHost  string
		wantErr   bool
		wantCalls int64 // inner resolutions so far
	}{
		{"first", params("eu-west-1", nil), "eu-west-1.example", false, 1},
		{"same again: cached", params("eu-west-1", nil), "eu-west-1.example", false, 1},
		{"other region", params("us-east-1", nil), "us-east-1.example", false, 2},
		{"FIPS false is not unset", params("eu-west-1", aws.Bool(false)), "eu-west-1.example", false, 3},
		{"FIPS true", params("eu-west-1", aws.Bool(true)), "eu-west-1.example", false, 4},
		{"ARN list", params("eu-west-1", nil, "a", "b"), "eu-west-1.example", false, 5},
		{"ARN list split differently", params("eu-west-1", nil, "a|b"), "eu-west-1.example", false, 6},
		{"error", params("bad", nil), "", true, 7},
		{"errors are not cached", params("bad", nil), "", true, 8},
	}
	for _, tt := range tests {
		ep, err := c.ResolveEndpoint(ctx, tt.p)
		if (err != nil) != tt.wantErr {
			t.Fatalf("%s: err = %v", tt.name, err)
		}
		if ep.URI.Host != tt.wantHost {
			t.Errorf("%s: host %q; want %q", tt.name, ep.URI.Host, tt.wantHost)
		}
		if got := inner.calls.Load(); got != tt.wantCalls {
			t.Errorf("%s: %d resolutions; want %d", tt.name, got, tt.wantCalls)
		}
	}
	// Bounded: parameters that vary per call are resolved every time.
	for i := range 2 * maxCachedEndpoints {
		if _, err := c.ResolveEndpoint(ctx, params("r", nil, string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.resolved); n > maxCachedEndpoints {
		t.Errorf("%d cached endpoints; want at most %d", n, maxCachedEndpoints)
	}
}

// TestConfigureClient: a client set up like the store's resolves its
// endpoint once over many calls, still reaches the configured endpoint,
// and sends no per-call invocation ID.
func TestConfigureClient(t *testing.T) {
	var requests, invocationIDs atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("Amz-Sdk-Invocation-Id") != "" {
			invocationIDs.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{"Item":{"composite_key":{"S":"k_u"}}}`))
	}))
	defer srv.Close()
	inner := &countingResolver{}
	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("a", "b", ""),
	}, func(o *dynamodb.Options) {
		ConfigureClient(o)
		// Counts what the cache asks of the SDK's default resolver.
		cache := o.EndpointResolverV2.(*endpointCache)
		cache.next = resolverFunc(func(ctx context.Context, p dynamodb.EndpointParameters) (smithyendpoints.Endpoint, error) {
			inner.calls.Add(1)
			return dynamodb.NewDefaultEndpointResolverV2().ResolveEndpoint(ctx, p)
		})
	})
	for range 5 {
		out, err := client.GetItem(t.Context(), &dynamodb.GetItemInput{
			TableName: aws.String("t"),
			Key:       map[string]types.AttributeValue{"composite_key": &types.AttributeValueMemberS{Value: "k_u"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if out.Item == nil {
			t.Fatal("no item")
		}
	}
	if got := requests.Load(); got != 5 {
		t.Errorf("%d requests reached the endpoint; want 5", got)
	}
	if got := inner.calls.Load(); got != 1 {
		t.Errorf("the endpoint was resolved %d times for 5 calls; want once", got)
	}
	if got := invocationIDs.Load(); got != 0 {
		t.Errorf("%d requests carried an invocation ID", got)
	}
}

type resolverFunc func(context.Context, dynamodb.EndpointParameters) (smithyendpoints.Endpoint, error)

func (f resolverFunc) ResolveEndpoint(ctx context.Context, p dynamodb.EndpointParameters) (smithyendpoints.Endpoint, error) {
	return f(ctx, p)
}
