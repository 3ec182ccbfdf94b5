package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/dynamo"
)

func clientFor(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("x", "x", ""),
		RetryMaxAttempts: 1, // classify each answer, not the SDK's retries
	})
}

// TestErrors classifies DynamoDB's failures, served by a fake endpoint on
// loopback: throttling, server errors and unreachable endpoints are
// ErrUnavailable; DynamoDB's item-size refusal is ErrTooLarge; a request
// DynamoDB rejects as malformed is neither.
func TestErrors(t *testing.T) {
	cases := []struct {
		name   string
		status int
		typ    string
		msg    string
		want   error
	}{
		{"throttled", 400, "ThrottlingException", "Rate of requests exceeds the allowed throughput.", identity.ErrUnavailable},
		{"provisioned throughput", 400, "ProvisionedThroughputExceededException", "exceeded", identity.ErrUnavailable},
		{"request limit", 400, "RequestLimitExceeded", "limit", identity.ErrUnavailable},
		{"internal error", 500, "InternalServerError", "oops", identity.ErrUnavailable},
		{"unavailable", 503, "ServiceUnavailable", "down", identity.ErrUnavailable},
		{"missing table", 400, "ResourceNotFoundException", "Requested resource not found", identity.ErrUnavailable},
		{"item too large", 400, "ValidationException", "Item size has exceeded the maximum allowed size", identity.ErrTooLarge},
		{"malformed", 400, "ValidationException", "One or more parameter values were invalid", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, tc.typ, tc.msg)
			}))
			defer srv.Close()
			st := dynamo.New(clientFor(srv.URL), dynamo.Options{})
			_, err := st.Get(ctxT(t), "env", "u")
			if err == nil {
				t.Fatal("Get succeeded")
			}
			for _, e := range []error{identity.ErrUnavailable, identity.ErrTooLarge, identity.ErrNotFound} {
				if got, want := errors.Is(err, e), e == tc.want; got != want {
					t.Errorf("errors.Is(%v, %v) = %t; want %t", err, e, got, want)
				}
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		st := dynamo.New(clientFor("http://"+addr), dynamo.Options{})
		if _, err := st.Get(ctxT(t), "env", "u"); !errors.Is(err, identity.ErrUnavailable) {
			t.Fatalf("Get = %v; want ErrUnavailable", err)
		}
	})
	t.Run("closed store", func(t *testing.T) {
		st := dynamo.New(clientFor("http://127.0.0.1:1"), dynamo.Options{})
		_ = st.Close()
		if _, err := st.Update(ctxT(t), identity.Env{APIKey: "e"}, "u", nil); !errors.Is(err, identity.ErrUnavailable) {
			t.Fatalf("Update on a closed store = %v; want ErrUnavailable", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		block := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
		defer srv.Close()
		defer close(block)
		st := dynamo.New(clientFor(srv.URL), dynamo.Options{})
		ctx, cancel := context.WithTimeout(ctxT(t), 50*time.Millisecond)
		defer cancel()
		_, err := st.Get(ctx, "env", "u")
		if !errors.Is(err, identity.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Get past its deadline = %v; want ErrUnavailable and DeadlineExceeded", err)
		}
	})
}
