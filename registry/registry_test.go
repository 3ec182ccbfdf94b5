package registry

import (
	"strings"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/environment"
)

func TestLookup(t *testing.T) {
	r := New([]Pair{{ClientKey: "clientA", ServerKey: "ser.serverA"}, {ClientKey: "clientB"}})
	tests := []struct {
		key      string
		ok       bool
		kind     environment.KeyKind
		clientOf string
	}{
		{"clientA", true, environment.ClientKey, "clientA"},
		{"ser.serverA", true, environment.ServerKey, "clientA"},
		{"clientB", true, environment.ClientKey, "clientB"},
		{"clientC", false, 0, ""},
		{"", false, 0, ""},
		{"clientA ", false, 0, ""},
		{"ser.", false, 0, ""},
	}
	for _, tt := range tests {
		env, kind, ok := r.Lookup(tt.key)
		if ok != tt.ok {
			t.Errorf("Lookup(%q) ok = %v, want %v", tt.key, ok, tt.ok)
			continue
		}
		if ok && (kind != tt.kind || env.ClientKey != tt.clientOf) {
			t.Errorf("Lookup(%q) = %s/%v, want %s/%v", tt.key, env.ClientKey, kind, tt.clientOf, tt.kind)
		}
	}
	if r.Env("ser.serverA") != nil {
		t.Error("Env accepted a server key")
	}
}

func TestRedact(t *testing.T) {
	tests := map[string]string{
		"abcdefghijklmnop":     "abcd…",
		"ser.abcdefghijklmnop": "ser.abcd…",
		"abc":                  "…",
		"ser.ab":               "ser.…",
		"":                     "…",
	}
	for in, want := range tests {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLookupCost: the lookup runs on every request, so it must not allocate,
// and its index must not be computable outside the process (a fresh seed
// per registry).
func TestLookupCost(t *testing.T) {
	pairs := []Pair{{ClientKey: "clientA", ServerKey: "ser.serverA"}}
	r := New(pairs)
	now := time.Now()
	r.Reconcile([]Discovered{{ClientKey: "clientB", ServerKeys: []ServerKey{
		{Key: "ser.b1", Active: true, ExpiresAt: now.Add(time.Hour)},
	}}}, now)
	for _, key := range []string{"ser.serverA", "clientA", "ser.b1", "clientB", "nope"} {
		if n := testing.AllocsPerRun(100, func() { r.Lookup(key) }); n != 0 {
			t.Errorf("Lookup(%q) allocates %v times per call", key, n)
		}
	}
	env := r.Env("clientB")
	if n := testing.AllocsPerRun(100, func() { env.CountUse(Flags) }); n != 0 {
		t.Errorf("CountUse allocates %v times per call", n)
	}
	if r2 := New(pairs); r2.idx.Load().seed == r.idx.Load().seed {
		t.Error("two registries share a hash seed")
	}
}

func TestChangeFeed(t *testing.T) {
	r := New([]Pair{{ClientKey: "clientA"}, {ClientKey: "clientB"}})
	var got []string
	unsubscribe := r.Subscribe(func(c Change) {
		old := "nil"
		if c.Old != nil {
			old = c.Old.APIKey
		}
		got = append(got, c.Env.ClientKey+":"+old+"->"+c.New.APIKey)
	})
	var second int
	r.Subscribe(func(Change) { second++ })
	a1 := &environment.Snapshot{APIKey: "v1"}
	a2 := &environment.Snapshot{APIKey: "v2"}
	r.Env("clientA").Store(a1)
	r.Env("clientA").Store(a1) // the same snapshot again: no change
	r.Env("clientA").Store(a2)
	r.Env("clientB").StoreWarm(a1)
	r.Env("clientB").StoreWarm(a2) // warm start only fills an empty slot
	want := []string{"clientA:nil->v1", "clientA:v1->v2", "clientB:nil->v1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("changes = %q, want %q", got, want)
	}
	unsubscribe()
	r.Env("clientB").Store(a2)
	if len(got) != len(want) {
		t.Errorf("an unsubscribed function was called: %q", got)
	}
	if second != 4 {
		t.Errorf("second subscriber saw %d changes, want 4", second)
	}
}
