package registry

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fledge-flags/fledge/environment"
)

func active(keys ...string) []ServerKey {
	out := make([]ServerKey, len(keys))
	for i, k := range keys {
		out[i] = ServerKey{Key: k, Active: true}
	}
	return out
}

// resolves lists, for each key, the client key it resolves to ("-" when
// it does not).
func resolves(r *Registry, keys ...string) string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "→-"
		if env, _, ok := r.Lookup(k); ok {
			out[i] = k + "→" + env.ClientKey
		}
	}
	return strings.Join(out, " ")
}

func TestReconcile(t *testing.T) {
	now := time.Now()
	static := []Pair{{ClientKey: "staticC", ServerKey: "ser.static"}}
	probe := []string{"staticC", "ser.static", "envA", "ser.a1", "ser.a2", "envB", "ser.b1"}
	tests := []struct {
		name  string
		steps [][]Discovered // applied in turn
		want  string         // resolves(probe...) after the last step
		envs  []string       // Envs() client keys after the last step
		last  Reconciled     // what the last step reports (Skipped: reasons only)
	}{
		{
			name:  "added",
			steps: [][]Discovered{{{ClientKey: "envA", ServerKeys: active("ser.a1")}, {ClientKey: "envB", ServerKeys: active("ser.b1")}}},
			want:  "staticC→staticC ser.static→staticC envA→envA ser.a1→envA ser.a2→- envB→envB ser.b1→envB",
			envs:  []string{"staticC", "envA", "envB"},
			last:  Reconciled{Added: []string{"envA", "envB"}},
		},
		{
			name: "omitted environment removed, static kept",
			steps: [][]Discovered{
				{{ClientKey: "envA", ServerKeys: active("ser.a1")}, {ClientKey: "envB", ServerKeys: active("ser.b1")}},
				{{ClientKey: "envB", ServerKeys: active("ser.b1")}},
			},
			want: "staticC→staticC ser.static→staticC envA→- ser.a1→- ser.a2→- envB→envB ser.b1→envB",
			envs: []string{"staticC", "envB"},
			last: Reconciled{Removed: []string{"envA"}},
		},
		{
			name: "empty list removes every discovered environment, never a static one",
			steps: [][]Discovered{
				{{ClientKey: "envA", ServerKeys: active("ser.a1")}},
				{},
			},
			want: "staticC→staticC ser.static→staticC envA→- ser.a1→- ser.a2→- envB→- ser.b1→-",
			envs: []string{"staticC"},
			last: Reconciled{Removed: []string{"envA"}},
		},
		{
			name: "rotation: new key added, then old key dropped",
			steps: [][]Discovered{
				{{ClientKey: "envA", ServerKeys: active("ser.a1")}},
				{{ClientKey: "envA", ServerKeys: active("ser.a2", "ser.a1")}},
				{{ClientKey: "envA", ServerKeys: active("ser.a2")}},
			},
			want: "staticC→staticC ser.static→staticC envA→envA ser.a1→- ser.a2→envA envB→- ser.b1→-",
			envs: []string{"staticC", "envA"},
			last: Reconciled{Rekeyed: []string{"envA"}},
		},
		{
			name: "deactivated key stops resolving, the client key still does",
			steps: [][]Discovered{
				{{ClientKey: "envA", ServerKeys: active("ser.a1", "ser.a2")}},
				{{ClientKey: "envA", ServerKeys: []ServerKey{{Key: "ser.a1", Active: false}, {Key: "ser.a2", Active: true}}}},
			},
			want: "staticC→staticC ser.static→staticC envA→envA ser.a1→- ser.a2→envA envB→- ser.b1→-",
			envs: []string{"staticC", "envA"},
			last: Reconciled{Rekeyed: []string{"envA"}},
		},
		{
			name: "only key deactivated: environment removed",
			steps: [][]Discovered{
				{{ClientKey: "envA", ServerKeys: active("ser.a1")}},
				{{ClientKey: "envA", ServerKeys: []ServerKey{{Key: "ser.a1"}}}},
			},
			want: "staticC→staticC ser.static→staticC envA→- ser.a1→- ser.a2→- envB→- ser.b1→-",
			envs: []string{"staticC"},
			last: Reconciled{Removed: []string{"envA"}, Skipped: []Skip{{Reason: SkipNoValidKey}}},
		},
		{
			name: "key-less and expired entries skipped",
			steps: [][]Discovered{{
				{ClientKey: "envA"},
				{ClientKey: "envB", ServerKeys: []ServerKey{{Key: "ser.b1", Active: true, ExpiresAt: now.Add(-time.Second)}}},
			}},
			want: "staticC→staticC ser.static→staticC envA→- ser.a1→- ser.a2→- envB→- ser.b1→-",
			envs: []string{"staticC"},
			last: Reconciled{Skipped: []Skip{{Reason: SkipNoValidKey}, {Reason: SkipNoValidKey}}},
		},
		{
			name: "key optional: kept with no valid key, its client key served",
			steps: [][]Discovered{
				{{ClientKey: "envA", ServerKeys: active("ser.a1"), KeyOptional: true}},
				{
					{ClientKey: "envA", ServerKeys: []ServerKey{{Key: "ser.a1"}}, KeyOptional: true},
					{ClientKey: "envB", KeyOptional: true},
				},
			},
			want: "staticC→staticC ser.static→staticC envA→envA ser.a1→- ser.a2→- envB→envB ser.b1→-",
			envs: []string{"staticC", "envA", "envB"},
			last: Reconciled{Added: []string{"envB"}, Rekeyed: []string{"envA"}},
		},
		{
			name: "static wins: its client key or server key listed again",
			steps: [][]Discovered{{
				{ClientKey: "staticC", ServerKeys: active("ser.a1")},
				{ClientKey: "envB", ServerKeys: active("ser.static", "ser.b1")},
			}},
			want: "staticC→staticC ser.static→staticC envA→- ser.a1→- ser.a2→- envB→- ser.b1→-",
			envs: []string{"staticC"},
			last: Reconciled{Skipped: []Skip{{Reason: SkipStaticKey}, {Reason: SkipStaticKey}}},
		},
		{
			name: "duplicates: the first entry wins",
			steps: [][]Discovered{{
				{ClientKey: "envA", ServerKeys: active("ser.a1")},
				{ClientKey: "envA", ServerKeys: active("ser.a2")},
				{ClientKey: "envB", ServerKeys: active("ser.a1", "ser.b1")},
				{ClientKey: "", ServerKeys: active("ser.x")},
			}},
			want: "staticC→staticC ser.static→staticC envA→envA ser.a1→envA ser.a2→- envB→- ser.b1→-",
			envs: []string{"staticC", "envA"},
			last: Reconciled{Added: []string{"envA"}, Skipped: []Skip{{Reason: SkipDuplicate}, {Reason: SkipClaimedKey}, {Reason: SkipEmptyKey}}},
		},
		{
			name: "unchanged, reordered keys: no change",
			steps: [][]Discovered{
				{{ClientKey: "envA", ServerKeys: active("ser.a1", "ser.a2")}},
				{{ClientKey: "envA", ServerKeys: active("ser.a2", "ser.a1")}},
			},
			want: "staticC→staticC ser.static→staticC envA→envA ser.a1→envA ser.a2→envA envB→- ser.b1→-",
			envs: []string{"staticC", "envA"},
			last: Reconciled{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(static)
			var got Reconciled
			for _, step := range tt.steps {
				got = r.Reconcile(step, now)
			}
			if s := resolves(r, probe...); s != tt.want {
				t.Errorf("keys:\n got %s\nwant %s", s, tt.want)
			}
			var envs []string
			for _, e := range r.Envs() {
				envs = append(envs, e.ClientKey)
			}
			if !slices.Equal(envs, tt.envs) {
				t.Errorf("Envs() = %v, want %v", envs, tt.envs)
			}
			if !slices.Equal(got.Added, tt.last.Added) || !slices.Equal(got.Rekeyed, tt.last.Rekeyed) || !slices.Equal(got.Removed, tt.last.Removed) {
				t.Errorf("last step reported %+v, want %+v", got, tt.last)
			}
			reasons := func(ss []Skip) (out []string) {
				for _, s := range ss {
					out = append(out, s.Reason)
				}
				return out
			}
			if !slices.Equal(reasons(got.Skipped), reasons(tt.last.Skipped)) {
				t.Errorf("skipped %q, want %q", reasons(got.Skipped), reasons(tt.last.Skipped))
			}
		})
	}
}

// TestReconcileKeepsEnv: re-keying keeps the *Env and its document;
// removal drops the document and a return starts afresh.
func TestReconcileKeepsEnv(t *testing.T) {
	r := New(nil)
	now := time.Now()
	r.Reconcile([]Discovered{{ClientKey: "envA", ServerKeys: active("ser.a1")}}, now)
	env := r.Env("envA")
	snap := &environment.Snapshot{APIKey: "envA"}
	env.Store(snap)
	env.CountUse(Identities)

	r.Reconcile([]Discovered{{ClientKey: "envA", ServerKeys: active("ser.a2")}}, now)
	if r.Env("envA") != env || env.Snapshot() != snap || env.Removed() {
		t.Fatal("re-keying replaced the environment or dropped its document")
	}
	if key, _ := env.FetchKey(now); key != "ser.a2" {
		t.Fatalf("FetchKey = %q, want the new key", key)
	}
	r.Reconcile(nil, now)
	if !env.Removed() || env.Snapshot() != nil || r.Env("envA") != nil {
		t.Fatal("removal kept the environment or its document")
	}
	if uses := env.TakeUses(); uses[Identities] != 1 {
		t.Fatalf("a removed environment lost its unreported use counts: %v", uses)
	}
	r.Reconcile([]Discovered{{ClientKey: "envA", ServerKeys: active("ser.a2")}}, now)
	back := r.Env("envA")
	if back == nil || back == env || back.Snapshot() != nil || back.Static() {
		t.Fatal("a returning environment must start afresh, without a document")
	}
	if env.Snapshot() != nil {
		t.Fatal("the retired environment got a document back")
	}
}

// TestKeyValidityAtRequestTime: a server key that expires between two
// discoveries stops resolving at once; the first valid key in key order
// is the one documents are fetched with.
func TestKeyValidityAtRequestTime(t *testing.T) {
	r := New(nil)
	past := time.Now().Add(-time.Hour)
	r.Reconcile([]Discovered{{ClientKey: "envA", ServerKeys: []ServerKey{
		{Key: "ser.c", Active: true},
		{Key: "ser.a", Active: true, ExpiresAt: past.Add(time.Minute)}, // valid at discovery, expired now
		{Key: "ser.b", Active: false},
	}}}, past)
	if got := resolves(r, "envA", "ser.a", "ser.b", "ser.c"); got != "envA→envA ser.a→- ser.b→- ser.c→envA" {
		t.Fatalf("keys: %s", got)
	}
	env := r.Env("envA")
	tests := []struct {
		at   time.Time
		want string
	}{
		{past, "ser.a"},       // lexicographic first, valid then
		{time.Now(), "ser.c"}, // ser.a expired, ser.b inactive
		{past.Add(2 * time.Minute), "ser.c"},
	}
	for _, tt := range tests {
		if got, ok := env.FetchKey(tt.at); !ok || got != tt.want {
			t.Errorf("FetchKey(%v) = %q, %v; want %q", tt.at, got, ok, tt.want)
		}
	}
	if _, ok := New([]Pair{{ClientKey: "offline"}}).Envs()[0].FetchKey(time.Now()); ok {
		t.Error("an environment without a server key has a fetch key")
	}
}

func TestChangeFeedAddRemove(t *testing.T) {
	r := New([]Pair{{ClientKey: "static", ServerKey: "ser.s"}})
	var got []string
	r.Subscribe(func(c Change) {
		got = append(got, fmt.Sprintf("%s:%d:%v->%v", c.Env.ClientKey, c.Kind, c.Old != nil, c.New != nil))
	})
	now := time.Now()
	r.Reconcile([]Discovered{{ClientKey: "envA", ServerKeys: active("ser.a")}}, now)
	r.Env("envA").Store(&environment.Snapshot{})
	r.Reconcile([]Discovered{{ClientKey: "envA", ServerKeys: active("ser.a")}}, now) // unchanged: nothing
	r.Reconcile(nil, now)
	want := []string{"envA:1:false->false", "envA:0:false->true", "envA:2:true->false"}
	if !slices.Equal(got, want) {
		t.Fatalf("changes = %q, want %q", got, want)
	}
}

func TestUses(t *testing.T) {
	e := New([]Pair{{ClientKey: "a"}}).Envs()[0]
	e.CountUse(Flags)
	e.CountUse(Flags)
	e.CountUse(EnvironmentDocument)
	e.CountUse(NumResources) // out of range: ignored
	if got := e.TakeUses(); got != [NumResources]int64{2, 0, 1} {
		t.Fatalf("TakeUses = %v", got)
	}
	if got := e.TakeUses(); got != [NumResources]int64{} {
		t.Fatalf("TakeUses after a take = %v", got)
	}
	for r, want := range map[Resource]string{Flags: "flags", Identities: "identities", EnvironmentDocument: "environment-document", NumResources: "unknown"} {
		if r.String() != want {
			t.Errorf("%d.String() = %q, want %q", r, r.String(), want)
		}
	}
}

// TestConcurrentLookupsDuringReconcile: lookups keep resolving the keys
// that stay while environments come and go (run with -race).
func TestConcurrentLookupsDuringReconcile(t *testing.T) {
	r := New([]Pair{{ClientKey: "static", ServerKey: "ser.static"}})
	now := time.Now()
	stay := Discovered{ClientKey: "stay", ServerKeys: active("ser.stay")}
	r.Reconcile([]Discovered{stay}, now)
	stayEnv := r.Env("stay")
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan string, 4)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				for _, k := range []string{"static", "ser.static", "stay", "ser.stay"} {
					if env, _, ok := r.Lookup(k); !ok || (k == "stay" || k == "ser.stay") && env != stayEnv {
						errs <- "lookup of a staying key failed: " + k
						return
					}
				}
				for _, e := range r.Envs() {
					_ = e.Snapshot()
				}
			}
		}()
	}
	for i := range 200 {
		list := []Discovered{stay}
		for j := range i % 7 {
			list = append(list, Discovered{ClientKey: fmt.Sprintf("c%d", j), ServerKeys: active(fmt.Sprintf("ser.k%d.%d", j, i%3))})
		}
		r.Reconcile(list, now)
	}
	close(done)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
