package sdk

import (
	"context"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/environment"
)

// Identified is the outcome of the identify stage of an /identities/
// request: whom to evaluate (identifier, hash key, traits, the identity's
// own overrides) and which traits the response lists.
type Identified struct {
	Identity engine.Identity
	Traits   []RawTrait
}

// Identifier is the identify stage of /identities/ requests, which differs
// by role: the proxy's is transient (Transient); the api role's loads the
// stored identity, merges and saves traits. The request path is decode →
// identify → evaluate → encode.
//
// Identify fills out. A *FieldError is a bad request; errors wrapping
// identity.ErrUnavailable mean the store could not answer (503).
type Identifier interface {
	Identify(ctx context.Context, snap *environment.Snapshot, kind environment.KeyKind, req *IdentityRequest, out *Identified) error
}

// Forbidden refuses a request (403) with Flagsmith's wording, such as an
// organisation barred from serving flags.
type Forbidden struct{ Detail string }

func (f *Forbidden) Error() string { return f.Detail }

// Flagsmith's refusals, worded as core words them.
var (
	ErrStopServingFlags = &Forbidden{Detail: "Organisation is disabled from serving flags."}
	ErrTraitsNotStored  = &Forbidden{Detail: "Organisation is not authorised to store traits."}
)

// Transient is the proxy's identify stage: the request's identifier and
// traits are evaluated and echoed, and nothing is stored.
type Transient struct{}

// Identify implements Identifier.
func (t Transient) Identify(_ context.Context, _ *environment.Snapshot, _ environment.KeyKind, req *IdentityRequest, out *Identified) error {
	t.identify(req, out)
	return nil
}

func (Transient) identify(req *IdentityRequest, out *Identified) {
	*out = Identified{Identity: req.Identity, Traits: req.RawTraits}
}
