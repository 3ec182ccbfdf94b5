package dynamo

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	smithyendpoints "github.com/aws/smithy-go/endpoints"
	"github.com/aws/smithy-go/middleware"
)

// maxCachedEndpoints bounds endpointCache: a store uses one region and
// endpoint, so more distinct parameter sets than this means something
// varies per call, and those are resolved every time instead.
const maxCachedEndpoints = 64

// endpointCache resolves each distinct set of endpoint parameters once.
// The SDK runs DynamoDB's endpoint rule set on every call, about a tenth
// of a GetItem's CPU time here, for an answer that depends only on the
// parameters (region, endpoint, FIPS, dual-stack, account), which are the
// same on every call a store makes. Errors are not cached.
type endpointCache struct {
	next     dynamodb.EndpointResolverV2
	mu       sync.RWMutex
	resolved map[string]smithyendpoints.Endpoint
}

func newEndpointCache(next dynamodb.EndpointResolverV2) *endpointCache {
	if next == nil {
		next = dynamodb.NewDefaultEndpointResolverV2()
	}
	return &endpointCache{next: next, resolved: map[string]smithyendpoints.Endpoint{}}
}

// ResolveEndpoint implements dynamodb.EndpointResolverV2. The endpoint it
// returns is shared between calls; the SDK copies the URL out of it and
// only reads its headers and properties.
func (c *endpointCache) ResolveEndpoint(ctx context.Context, p dynamodb.EndpointParameters) (smithyendpoints.Endpoint, error) {
	key := endpointKey(p)
	c.mu.RLock()
	ep, ok := c.resolved[key]
	c.mu.RUnlock()
	if ok {
		return ep, nil
	}
	ep, err := c.next.ResolveEndpoint(ctx, p)
	if err != nil {
		return ep, err
	}
	c.mu.Lock()
	if len(c.resolved) < maxCachedEndpoints {
		c.resolved[key] = ep
	}
	c.mu.Unlock()
	return ep, nil
}

// endpointKey encodes every field of p, telling unset from empty.
func endpointKey(p dynamodb.EndpointParameters) string {
	var b strings.Builder
	str := func(s *string) {
		if s == nil {
			b.WriteString("-|")
			return
		}
		b.WriteString(strconv.Quote(*s))
		b.WriteByte('|')
	}
	boolean := func(v *bool) {
		switch {
		case v == nil:
			b.WriteString("-|")
		case *v:
			b.WriteString("t|")
		default:
			b.WriteString("f|")
		}
	}
	str(p.Region)
	boolean(p.UseDualStack)
	boolean(p.UseFIPS)
	str(p.Endpoint)
	str(p.AccountId)
	str(p.AccountIdEndpointMode)
	str(p.ResourceArn)
	b.WriteString(strconv.Itoa(len(p.ResourceArnList)))
	for _, arn := range p.ResourceArnList {
		b.WriteByte('|')
		b.WriteString(strconv.Quote(arn))
	}
	return b.String()
}

// trimStack removes per-call work that a long-running server has no use
// for: a fresh random invocation ID per call (amz-sdk-invocation-id, for
// correlating an SDK's retries in client-side logs, which Fledge does not
// keep) and AWS Lambda's recursion detection (an environment lookup per
// call; Fledge is not a Lambda function).
func trimStack(st *middleware.Stack) error {
	for _, id := range []string{"ClientRequestID", "RecursionDetection"} {
		if _, ok := st.Build.Get(id); ok { // absent in some SDK version: nothing to trim
			if _, err := st.Build.Remove(id); err != nil {
				return fmt.Errorf("removing the SDK's %s middleware: %w", id, err)
			}
		}
	}
	return nil
}
