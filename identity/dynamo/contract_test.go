package dynamo_test

import (
	"testing"

	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/dynamo"
	"github.com/fledge-flags/fledge/identity/identitytest"
)

var (
	_ identitytest.SystemTraitSetter  = (*dynamo.Store)(nil)
	_ identitytest.NumberRanger       = (*dynamo.Store)(nil)
	_ identitytest.AliasTiesUnordered = (*dynamo.Store)(nil)
)

// TestContract runs the identity.Store contract against dynalite; each
// subtest gets its own tables.
func TestContract(t *testing.T) {
	srv := startServer(t)
	identitytest.Run(t, func(t *testing.T) identity.Store { return srv.store(t) })
}
