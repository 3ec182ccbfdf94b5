package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fledge-flags/fledge/bench/workload"
	"github.com/fledge-flags/fledge/identity"
	"github.com/fledge-flags/fledge/identity/bolt"
)

func TestOrderIsAShuffle(t *testing.T) {
	for _, n := range []int{1, 2, 7, 1000, 100_000} {
		ids := order(n)
		seen := make([]bool, n)
		inOrder := 0
		for k, i := range ids {
			if i < 0 || int(i) >= n || seen[i] {
				t.Fatalf("n=%d: order[%d] = %d, out of range or repeated", n, k, i)
			}
			seen[i] = true
			if k > 0 && i == ids[k-1]+1 {
				inOrder++
			}
		}
		if n >= 1000 && inOrder > n/100 {
			t.Errorf("n=%d: %d successive identities in order; not shuffled", n, inOrder)
		}
		if again := order(n); !slices.Equal(ids, again) {
			t.Errorf("n=%d: the order differs from one run to the next", n)
		}
	}
}

func TestIdentifierWidthMatchesTheLoadTemplate(t *testing.T) {
	// bench/cmd/load -template -rand-max n writes {{rand}} with the width
	// of n-1, and bench/api-run formats with it too.
	for _, c := range []struct {
		i, n int
		want string
	}{{0, 1_000_000, "user-000000"}, {999_999, 1_000_000, "user-999999"}, {42, 250_000, "user-000042"}, {0, 1, "user-0"}, {5, 11, "user-05"}} {
		if got := identifierOf(c.i, len(strconv.Itoa(c.n-1))); got != c.want {
			t.Errorf("identifierOf(%d) for n=%d: %s, want %s", c.i, c.n, got, c.want)
		}
	}
}

func TestFillWritesValidIdentities(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "P2.json")
	if err := os.WriteFile(doc, workload.Document(workload.P2, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var out bytes.Buffer
	o := options{store: filepath.Join(dir, "store"), doc: doc, envKey: workload.ClientKey(workload.P2), n: n, workers: 16}
	if err := run(o, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"identities":200`) || !strings.Contains(out.String(), `"file_bytes":`) {
		t.Errorf("output %s", out.String())
	}
	s, err := bolt.Open(filepath.Join(o.store, dbFile), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	withOverrides := 0
	for i := range n {
		id, err := s.Get(context.Background(), o.envKey, identifierOf(i, 3))
		if err != nil {
			t.Fatalf("identity %d: %v", i, err)
		}
		if len(id.Traits) != 5 || id.UUID == "" || id.CreatedDate == "" {
			t.Fatalf("identity %d: %+v", i, id)
		}
		if err := identity.Validate(id); err != nil {
			t.Fatalf("identity %d: %v", i, err)
		}
		if len(id.Overrides) > 0 {
			withOverrides++
		}
	}
	if withOverrides != n/10 {
		t.Errorf("%d identities with overrides, want one in ten", withOverrides)
	}
	// filling again writes nothing new and keeps what is there
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := run(o, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(options{store: o.store, evict: true}, io.Discard, io.Discard); err != nil {
		t.Errorf("evict: %v", err)
	}
}
