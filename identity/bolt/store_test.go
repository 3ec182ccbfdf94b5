package bolt

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/identitytest"
)

func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := Open(filepath.Join(t.TempDir(), "data", "identities.db"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestContract(t *testing.T) {
	identitytest.Run(t, func(t *testing.T) identity.Store { return openTest(t, Options{}) })
}
