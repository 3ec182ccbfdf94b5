package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

var testEnv = identity.Env{APIKey: "envkey", ID: "1"}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func withTrait(key string, v engine.Value) identity.UpdateFunc {
	return func(cur *identity.Identity) (*identity.Identity, error) {
		if cur == nil {
			cur = &identity.Identity{}
		}
		cur.Traits = append(cur.Traits, identity.Trait{Key: key, Value: v})
		return cur, nil
	}
}

// TestBatchOutcomesStayPrivate: callers that skip, fail or break a limit
// share group commits with writers, and nobody's function runs twice,
// because an ordinary outcome never fails the batch.
func TestBatchOutcomesStayPrivate(t *testing.T) {
	s := openTest(t, Options{})
	release := holdCommits(t, s)
	boom := errors.New("boom")
	const n = 24
	calls := make([]atomic.Int32, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Update(t.Context(), testEnv, fmt.Sprintf("u%02d", i), func(cur *identity.Identity) (*identity.Identity, error) {
				calls[i].Add(1)
				id := &identity.Identity{Traits: []identity.Trait{{Key: "i", Value: engine.Int(int64(i))}}}
				switch i % 4 {
				case 1:
					return nil, identity.ErrSkip
				case 2:
					return nil, boom
				case 3:
					id.Traits[0].Key = "" // invalid
				}
				return id, nil
			})
		})
	}
	waitQueued(t, s, n)
	release()
	wg.Wait()
	for i := range n {
		if c := calls[i].Load(); c != 1 {
			t.Errorf("u%02d: function ran %d times; want once", i, c)
		}
		want := []error{nil, nil, boom, identity.ErrInvalid}[i%4]
		if want == nil && errs[i] != nil || want != nil && !errors.Is(errs[i], want) {
			t.Errorf("u%02d: Update = %v; want %v", i, errs[i], want)
		}
		_, err := s.Get(t.Context(), testEnv.APIKey, fmt.Sprintf("u%02d", i))
		if stored := err == nil; stored != (i%4 == 0) {
			t.Errorf("u%02d: stored = %t (%v)", i, stored, err)
		}
	}
}

// TestBatchRetry: when another member of a group commit fails, bbolt rolls
// the whole batch back and runs it again. Each Update must then report the
// outcome of the run that committed, and its change must land once.
func TestBatchRetry(t *testing.T) {
	s := openTest(t, Options{})
	if _, err := s.Update(t.Context(), testEnv, "shared", withTrait("base", engine.Int(0))); err != nil {
		t.Fatal(err)
	}
	release := holdCommits(t, s)
	boom := errors.New("boom")
	var calls [4]atomic.Int32
	results := make([]*identity.Identity, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			results[i], errs[i] = s.Update(t.Context(), testEnv, "shared", func(cur *identity.Identity) (*identity.Identity, error) {
				calls[i].Add(1)
				switch i {
				case 2:
					return nil, identity.ErrSkip
				case 3:
					return nil, boom
				}
				// Appends a trait numbered by how many there are: a change
				// applied twice would show as an extra trait.
				cur.Traits = append(cur.Traits, identity.Trait{Key: fmt.Sprintf("w%d", i), Value: engine.Int(int64(len(cur.Traits)))})
				return cur, nil
			})
		})
	}
	// Joins the same batch after the Updates, then fails it.
	waitQueued(t, s, 4)
	foreign := errors.New("foreign failure")
	foreignErr := make(chan error, 1)
	go func() { foreignErr <- s.write(func(*bbolt.Tx) error { return foreign }) }()
	waitQueued(t, s, 5)
	release()
	if err := <-foreignErr; !errors.Is(err, foreign) {
		t.Fatalf("foreign batch member = %v", err)
	}
	wg.Wait()
	for i := range 2 {
		if c := calls[i].Load(); c < 2 {
			t.Fatalf("update %d ran %d times: the batch was not retried, so this test proves nothing", i, c)
		}
		if errs[i] != nil {
			t.Fatalf("update %d: %v", i, errs[i])
		}
	}
	if errs[2] != nil || results[2] == nil {
		t.Errorf("skipping update = %v, %v; want the current identity", results[2], errs[2])
	}
	if !errors.Is(errs[3], boom) {
		t.Errorf("failing update = %v; want boom", errs[3])
	}
	got, err := s.Get(t.Context(), testEnv.APIKey, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Traits) != 3 {
		t.Fatalf("traits %v; want base and one trait per writing update", got.Traits)
	}
	for i := range 2 {
		v, ok := got.Trait(fmt.Sprintf("w%d", i))
		if !ok {
			t.Fatalf("update %d lost: %v", i, got.Traits)
		}
		// Its result is what was stored, from the run that committed.
		if rv, _ := results[i].Trait(fmt.Sprintf("w%d", i)); rv != v {
			t.Errorf("update %d returned w%d=%v; stored %v", i, i, rv, v)
		}
	}
}

// TestCancelWhileQueued: a caller that gives up while its write waits for
// the group commit gets its context's error, and nothing is written.
func TestCancelWhileQueued(t *testing.T) {
	s := openTest(t, Options{})
	release := holdCommits(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		waitQueued(t, s, 1)
		cancel()
		release()
	}()
	var called atomic.Bool
	_, err := s.Update(ctx, testEnv, "u", func(cur *identity.Identity) (*identity.Identity, error) {
		called.Store(true)
		return withTrait("a", engine.Int(1))(cur)
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update = %v; want context.Canceled", err)
	}
	if called.Load() {
		t.Error("the function ran for a caller that had gone")
	}
	if _, err := s.Get(t.Context(), testEnv.APIKey, "u"); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("Get = %v; want ErrNotFound", err)
	}
}

// TestGroupCommit: writes that queue while a commit is in progress share
// the next one, and a lone write is committed without waiting for company.
func TestGroupCommit(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	s := openTest(t, Options{OnCommit: func(writes int, elapsed time.Duration) {
		if elapsed <= 0 {
			t.Errorf("commit of %d writes took %v", writes, elapsed)
		}
		mu.Lock()
		sizes = append(sizes, writes)
		mu.Unlock()
	}})
	start := time.Now()
	if _, err := s.Update(t.Context(), testEnv, "lone", withTrait("a", engine.Int(1))); err != nil {
		t.Fatal(err)
	}
	lone := time.Since(start)
	release := holdCommits(t, s)
	before := s.commit.commits.Load()
	const n = 30
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := s.Update(t.Context(), testEnv, fmt.Sprintf("g%02d", i), withTrait("i", engine.Int(int64(i)))); err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(t, s, n)
	release()
	wg.Wait()
	// The held write's commit, then one for all n.
	if got := s.commit.commits.Load() - before; got != 2 {
		t.Errorf("%d writers took %d commits after the held one; want 1", n, got-1)
	}
	mu.Lock()
	// The lone write, the held one, then all n together.
	if want := []int{1, 1, n}; !slices.Equal(sizes[len(sizes)-3:], want) {
		t.Errorf("OnCommit heard of commits of %v writes; want them to end with %v", sizes, want)
	}
	mu.Unlock()
	for i := range n {
		if _, err := s.Get(t.Context(), testEnv.APIKey, fmt.Sprintf("g%02d", i)); err != nil {
			t.Errorf("g%02d: %v", i, err)
		}
	}
	t.Logf("lone write: %v", lone)
}

// holdCommits blocks the store's committer inside a write until release is
// called, so that the writes started meanwhile queue up and share the next
// group commit.
func holdCommits(t *testing.T, s *Store) (release func()) {
	t.Helper()
	entered, gate, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.write(func(*bbolt.Tx) error {
			close(entered)
			<-gate
			return nil
		})
	}()
	<-entered
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(gate)
			if err := <-done; err != nil {
				t.Errorf("holding write: %v", err)
			}
		})
	}
	t.Cleanup(release)
	return release
}

// waitQueued waits until n writes are queued for the next group commit.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.commit.queue) < n {
		if time.Now().After(deadline) {
			t.Errorf("%d writes queued after 10s; want %d", len(s.commit.queue), n)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// putRaw stores an item as some other writer might have, with this
// store's index metadata.
func putRaw(t *testing.T, s *Store, identifier, item string, m meta) {
	t.Helper()
	ck := []byte(identity.CompositeKey(testEnv.APIKey, identifier))
	mdata, _ := json.Marshal(&m)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, e := range []struct{ b, k, v []byte }{
			{bucketIdentities, ck, []byte(item)},
			{bucketMeta, ck, mdata},
			{bucketByIdentifier, identifierKey(testEnv.APIKey, identifier), ck},
			{bucketByUUID, []byte(m.UUID), ck},
		} {
			if err := tx.Bucket(e.b).Put(e.k, e.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMalformedItems(t *testing.T) {
	var logs syncBuffer
	s := openTest(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	const uuid = "118ecfc9-5234-4218-8af8-dd994dbfedc0"
	putRaw(t, s, "partly", `{"composite_key":"envkey_partly","environment_api_key":"envkey","identifier":"partly",
		"identity_uuid":"`+uuid+`","created_date":"2024-03-19T09:41:22.974595+00:00","django_id":null,
		"identity_traits":[{"trait_key":"ok","trait_value":42},{"trait_key":"blank"},{"trait_key":"obj","trait_value":{"a":1}},{"trait_value":1}],
		"identity_features":[{"feature":{"id":1,"name":"f1","type":"STANDARD"},"enabled":true,"feature_state_value":"v"},
			{"feature":null,"enabled":true},{"feature":{"id":"x","name":"bad id"}}],
		"system_traits":null}`, meta{Env: testEnv.APIKey, Identifier: "partly", UUID: uuid})

	got, err := s.Get(t.Context(), testEnv.APIKey, "partly")
	if err != nil {
		t.Fatalf("Get of a partly readable item: %v", err)
	}
	if len(got.Traits) != 2 || len(got.Overrides) != 1 || got.UUID != uuid || got.SystemTraits != nil {
		t.Fatalf("read %+v", got)
	}
	if v, _ := got.Trait("blank"); v != engine.String("") {
		t.Errorf("a trait without a value reads as %v; want \"\"", v)
	}
	if !strings.Contains(logs.String(), "partly unreadable") {
		t.Errorf("problems not logged: %q", logs.String())
	}
	// Updating it writes back what could be read.
	if _, err := s.Update(t.Context(), testEnv, "partly", withTrait("new", engine.Bool(true))); err != nil {
		t.Fatalf("Update of a partly readable item: %v", err)
	}

	putRaw(t, s, "garbage", `{"identity_traits": 12`, meta{Env: testEnv.APIKey, Identifier: "garbage", UUID: uuid[:35] + "1", Alias: "old"})
	got, err = s.Get(t.Context(), testEnv.APIKey, "garbage")
	if err != nil {
		t.Fatalf("Get of an unreadable item: %v", err)
	}
	if got.Identifier != "garbage" || got.UUID != uuid[:35]+"1" || got.DashboardAlias != "old" {
		t.Errorf("unreadable item read as %+v; want its keys", got)
	}
	if !strings.Contains(logs.String(), "unreadable identity item") {
		t.Errorf("unreadable item not logged: %q", logs.String())
	}
	upd, err := s.Update(t.Context(), testEnv, "garbage", withTrait("a", engine.Int(1)))
	if err != nil || upd.UUID != uuid[:35]+"1" {
		t.Fatalf("Update repairing an unreadable item = %+v, %v", upd, err)
	}
	if got, err := s.GetByUUID(t.Context(), upd.UUID); err != nil || len(got.Traits) != 1 {
		t.Fatalf("GetByUUID after the repair = %+v, %v", got, err)
	}
}

// TestCompositeKeyCollision: "k" + "x_y" and "k_x" + "y" share the
// composite key k_x_y. Neither may read or clobber the other.
func TestCompositeKeyCollision(t *testing.T) {
	s := openTest(t, Options{})
	a, b := identity.Env{APIKey: "k"}, identity.Env{APIKey: "k_x"}
	if _, err := s.Update(t.Context(), a, "x_y", withTrait("owner", engine.String("a"))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(t.Context(), b, "y", withTrait("owner", engine.String("b"))); !errors.Is(err, identity.ErrInvalid) {
		t.Fatalf("Update of the colliding identity = %v; want ErrInvalid", err)
	}
	if _, err := s.Get(t.Context(), b.APIKey, "y"); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("Get of the colliding identity = %v; want ErrNotFound", err)
	}
	if err := s.Delete(t.Context(), b, "y"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(t.Context(), a.APIKey, "x_y")
	if v, _ := got.Trait("owner"); err != nil || v != engine.String("a") {
		t.Fatalf("the first identity after the collision = %+v, %v", got, err)
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "identities.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Update(t.Context(), testEnv, "u", withTrait("f", engine.Float(4)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed: calls fail as unavailable.
	if _, err := s.Get(t.Context(), testEnv.APIKey, "u"); !errors.Is(err, identity.ErrUnavailable) {
		t.Errorf("Get on a closed store = %v; want ErrUnavailable", err)
	}
	if _, err := s.Update(t.Context(), testEnv, "u", withTrait("g", engine.Int(1))); !errors.Is(err, identity.ErrUnavailable) {
		t.Errorf("Update on a closed store = %v; want ErrUnavailable", err)
	}
	if _, err := s.List(t.Context(), testEnv.APIKey, identity.ListQuery{}); !errors.Is(err, identity.ErrUnavailable) {
		t.Errorf("List on a closed store = %v; want ErrUnavailable", err)
	}

	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.Get(t.Context(), testEnv.APIKey, "u")
	if err != nil || got.UUID != want.UUID {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}
	if v, _ := got.Trait("f"); v != engine.Float(4) {
		t.Errorf("float trait after reopening = %#v", v)
	}
	// A second opener waits for the lock, then gives up.
	if s3, err := Open(path, Options{LockTimeout: 100 * time.Millisecond}); err == nil {
		s3.Close()
		t.Fatal("a second Open of a file in use succeeded")
	}
}

func TestKeyEncodingOrder(t *testing.T) {
	// Index keys must sort as their (alias, identifier) tuples do.
	tuples := [][2]string{{"", "z"}, {"q", "b"}, {"q\x00", "a"}, {"q\x00a", "a"}, {"qa", "a"}, {"qa account", "a"}, {"qa account", "b"}}
	for i := 1; i < len(tuples); i++ {
		a, b := tuples[i-1], tuples[i]
		if ka, kb := aliasKey("e", a[0], a[1]), aliasKey("e", b[0], b[1]); bytes.Compare(ka, kb) >= 0 {
			t.Errorf("aliasKey%q >= aliasKey%q", a, b)
		}
	}
	if bytes.HasPrefix(identifierKey("ab", "c"), appendPart(nil, "a")) {
		t.Error("environment a's prefix covers environment ab")
	}
}

// TestCloseCommitsQueuedWrites: writes queued when Close is called are
// committed before the file closes, and writes after Close fail as
// unavailable instead of hanging.
func TestCloseCommitsQueuedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ids.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	release := holdCommits(t, s)
	const n = 5
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Update(t.Context(), testEnv, fmt.Sprintf("q%d", i), withTrait("i", engine.Int(int64(i))))
		})
	}
	waitQueued(t, s, n)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	release()
	wg.Wait()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("queued write %d: %v", i, err)
		}
	}
	if _, err := s.Update(t.Context(), testEnv, "late", withTrait("a", engine.Int(1))); !errors.Is(err, identity.ErrUnavailable) {
		t.Errorf("Update after Close = %v; want ErrUnavailable", err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range n {
		if _, err := s.Get(t.Context(), testEnv.APIKey, fmt.Sprintf("q%d", i)); err != nil {
			t.Errorf("q%d after reopening: %v", i, err)
		}
	}
}

// TestPanickingWriteStaysPrivate: a write function that panics fails its
// own caller only; the writers sharing its group commit still land.
func TestPanickingWriteStaysPrivate(t *testing.T) {
	s := openTest(t, Options{})
	release := holdCommits(t, s)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Go(func() {
			_, errs[i] = s.Update(t.Context(), testEnv, fmt.Sprintf("p%d", i), func(cur *identity.Identity) (*identity.Identity, error) {
				if i == 1 {
					panic("boom")
				}
				return withTrait("i", engine.Int(int64(i)))(cur)
			})
		})
	}
	waitQueued(t, s, 3)
	release()
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 1) {
			t.Errorf("p%d: Update = %v", i, err)
		}
		_, err := s.Get(t.Context(), testEnv.APIKey, fmt.Sprintf("p%d", i))
		if stored := err == nil; stored != (i != 1) {
			t.Errorf("p%d: stored = %t (%v)", i, stored, err)
		}
	}
}
