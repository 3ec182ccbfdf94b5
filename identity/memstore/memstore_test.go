package memstore_test

import (
	"testing"

	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/identitytest"
	"github.com/fledge-flags/fledge/identity/memstore"
)

func TestContract(t *testing.T) {
	identitytest.Run(t, func(t *testing.T) identity.Store {
		s := memstore.New()
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
