package dynamo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/fledge-flags/fledge/identity"
)

// classify wraps an SDK error with what was being done, and with
// identity.ErrUnavailable when DynamoDB could not serve the call:
// throttling, a server error, a timeout, cancellation, a network failure, a
// missing table, or an SDK retry budget spent. An item DynamoDB finds too
// large wraps identity.ErrTooLarge. Anything else (a request DynamoDB
// rejects as malformed) is wrapped as it is.
func classify(doing string, err error) error {
	switch {
	case unavailable(err):
		return fmt.Errorf("dynamo: %s: %w: %w", doing, identity.ErrUnavailable, err)
	case tooLarge(err):
		return fmt.Errorf("dynamo: %s: %w: %w", doing, identity.ErrTooLarge, err)
	}
	return fmt.Errorf("dynamo: %s: %w", doing, err)
}

func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var (
		maxAttempts *retry.MaxAttemptsError
		netErr      net.Error
		notFound    *types.ResourceNotFoundException
		throughput  *types.ProvisionedThroughputExceededException
		limit       *types.RequestLimitExceeded
		internal    *types.InternalServerError
	)
	if errors.As(err, &maxAttempts) || errors.As(err, &netErr) || errors.As(err, &notFound) ||
		errors.As(err, &throughput) || errors.As(err, &limit) || errors.As(err, &internal) {
		return true
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ThrottlingException", "Throttling", "ServiceUnavailable", "InternalFailure", "TransactionConflictException":
			return true
		}
		return api.ErrorFault() == smithy.FaultServer
	}
	// Failures before any response (connection refused, DNS).
	var sendErr *smithyhttp.RequestSendError
	return errors.As(err, &sendErr)
}

func tooLarge(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "ValidationException" {
		msg := strings.ToLower(api.ErrorMessage())
		return strings.Contains(msg, "item size") || strings.Contains(msg, "maximum allowed size")
	}
	return false
}
