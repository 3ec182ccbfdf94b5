package analytics

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/source"
)

const (
	exampleClientKey = "exampleClientKey0000001"
	otherClientKey   = "otherClientKey000000001"
)

// snapshot compiles the repository's example environment (features
// new_checkout, banner_colour, max_upload_mb, internal_debug_panel) under
// clientKey.
func snapshot(t testing.TB, clientKey string) *environment.Snapshot {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "examples", "environment.json"))
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.Replace(raw, []byte(exampleClientKey), []byte(clientKey), 1)
	snap, err := source.Build(raw, nil, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// takeCounts empties the aggregator and returns its counts by client key.
func takeCounts(a *Aggregator) map[string]Counts {
	out := map[string]Counts{}
	for k, t := range a.take() {
		if len(t.counts) > 0 {
			out[k] = t.counts
		}
	}
	return out
}

func TestRecordV1Sums(t *testing.T) {
	a := NewAggregator(0)
	ex, other := snapshot(t, exampleClientKey), snapshot(t, otherClientKey)
	a.RecordV1(ex, []byte(`{"new_checkout":3,"banner_colour":1}`))
	a.RecordV1(ex, []byte(`{"new_checkout":4}`))
	a.RecordV1(other, []byte(`{"max_upload_mb":7}`))
	want := map[string]Counts{
		exampleClientKey: {"new_checkout": 7, "banner_colour": 1},
		otherClientKey:   {"max_upload_mb": 7},
	}
	if got := takeCounts(a); !reflect.DeepEqual(got, want) {
		t.Fatalf("took %v, want %v", got, want)
	}
	if got := takeCounts(a); len(got) != 0 {
		t.Errorf("second take = %v, want nothing: a take empties the windows", got)
	}
	a.RecordV1(ex, []byte(`{"new_checkout":1}`))
	if got := takeCounts(a); !reflect.DeepEqual(got, map[string]Counts{exampleClientKey: {"new_checkout": 1}}) {
		t.Errorf("after a take, took %v, want new_checkout:1", got)
	}
}

// TestRecordV1DropsBadInput: only non-negative JSON integers count, each
// bad entry is dropped alone, and names the environment lacks are dropped.
func TestRecordV1DropsBadInput(t *testing.T) {
	ex := snapshot(t, exampleClientKey)
	for _, bad := range []string{`1.5`, `1.0`, `1e2`, `"3"`, `true`, `null`, `-2`, `{}`, `[1]`} {
		t.Run(bad, func(t *testing.T) {
			a := NewAggregator(0)
			a.RecordV1(ex, []byte(`{"banner_colour":`+bad+`,"new_checkout":2}`))
			if got := takeCounts(a)[exampleClientKey]; !reflect.DeepEqual(got, Counts{"new_checkout": 2}) {
				t.Errorf("took %v, want only new_checkout:2", got)
			}
			if s := a.Stats(); s != (Stats{Invalid: 1}) {
				t.Errorf("stats = %+v, want one invalid entry", s)
			}
		})
	}
	t.Run("zero", func(t *testing.T) {
		a := NewAggregator(1)
		a.RecordV1(ex, []byte(`{"banner_colour":0,"max_upload_mb":-0}`))
		a.RecordV1(ex, []byte(`{"new_checkout":5}`))
		// Zero counts take no slot of the cap of 1.
		if got := takeCounts(a)[exampleClientKey]; !reflect.DeepEqual(got, Counts{"new_checkout": 5}) {
			t.Errorf("took %v, want new_checkout:5", got)
		}
		if s := a.Stats(); s != (Stats{}) {
			t.Errorf("stats = %+v, want nothing dropped", s)
		}
	})
	t.Run("unknown feature", func(t *testing.T) {
		a := NewAggregator(0)
		a.RecordV1(ex, []byte(`{"no_such_feature":5,"New_Checkout":1,"new_checkout":2}`))
		if got := takeCounts(a)[exampleClientKey]; !reflect.DeepEqual(got, Counts{"new_checkout": 2}) {
			t.Errorf("took %v, want only new_checkout:2", got)
		}
		if s := a.Stats(); s != (Stats{Unknown: 2}) {
			t.Errorf("stats = %+v, want two unknown names", s)
		}
	})
	for _, body := range []string{`[]`, `null`, `"x"`, `{"new_checkout":`, ``, `{"new_checkout":1}x`, `{"new_checkout":01}`} {
		t.Run("body "+body, func(t *testing.T) {
			a := NewAggregator(0)
			a.RecordV1(ex, []byte(body))
			if got := takeCounts(a); len(got) != 0 {
				t.Errorf("took %v from a malformed body", got)
			}
			if s := a.Stats(); s != (Stats{Invalid: 1}) {
				t.Errorf("stats = %+v, want the body counted invalid", s)
			}
		})
	}
}

func TestSaturation(t *testing.T) {
	ex := snapshot(t, exampleClientKey)
	a := NewAggregator(0)
	max := fmt.Sprint(int64(math.MaxInt64))
	a.RecordV1(ex, []byte(`{"new_checkout":`+max+`,"banner_colour":99999999999999999999999}`))
	a.RecordV1(ex, []byte(`{"new_checkout":1,"banner_colour":1}`))
	a.RecordV2(ex, []byte(`{"evaluations":[{"feature_name":"max_upload_mb","count":`+max+`},{"feature_name":"max_upload_mb","count":`+max+`}]}`))
	want := Counts{"new_checkout": math.MaxInt64, "banner_colour": math.MaxInt64, "max_upload_mb": math.MaxInt64}
	got := takeCounts(a)[exampleClientKey]
	if !reflect.DeepEqual(got, want) {
		t.Errorf("took %v, want every count at MaxInt64", got)
	}
	if total := got.Total(); total != math.MaxInt64 {
		t.Errorf("Total = %d, want MaxInt64", total)
	}
	if m := merge(Counts{"a": math.MaxInt64 - 1}, Counts{"a": 5, "b": 2}); !reflect.DeepEqual(m, Counts{"a": math.MaxInt64, "b": 2}) {
		t.Errorf("merge = %v", m)
	}
}

// TestFeatureCap: at most maxNames distinct names per environment per
// window; more are dropped and counted, names already in keep counting,
// other environments have their own cap, and a take frees the window.
func TestFeatureCap(t *testing.T) {
	ex, other := snapshot(t, exampleClientKey), snapshot(t, otherClientKey)
	a := NewAggregator(2)
	a.RecordV1(ex, []byte(`{"new_checkout":1}`))
	a.RecordV1(ex, []byte(`{"banner_colour":1}`))
	a.RecordV1(ex, []byte(`{"max_upload_mb":1,"new_checkout":1}`))
	a.RecordV2(ex, []byte(`{"evaluations":[{"feature_name":"internal_debug_panel","count":3}]}`))
	a.RecordV1(other, []byte(`{"max_upload_mb":1,"internal_debug_panel":1}`))
	if s := a.Stats(); s.OverLimit != 2 {
		t.Errorf("OverLimit = %d, want 2", s.OverLimit)
	}
	took := a.take()
	if got := took[exampleClientKey]; !reflect.DeepEqual(got, taken{counts: Counts{"new_checkout": 2, "banner_colour": 1}, overflow: 2}) {
		t.Errorf("example window = %+v", got)
	}
	if got := took[otherClientKey]; !reflect.DeepEqual(got, taken{counts: Counts{"max_upload_mb": 1, "internal_debug_panel": 1}}) {
		t.Errorf("other window = %+v", got)
	}
	a.RecordV1(ex, []byte(`{"max_upload_mb":1}`))
	if got := takeCounts(a)[exampleClientKey]; !reflect.DeepEqual(got, Counts{"max_upload_mb": 1}) {
		t.Errorf("after a take, took %v, want the new name", got)
	}
}

// TestRecordV2: counts are summed per feature name; identity and enabled
// state are not kept; bad entries are dropped alone.
func TestRecordV2(t *testing.T) {
	ex := snapshot(t, exampleClientKey)
	a := NewAggregator(0)
	a.RecordV2(ex, []byte(`{"evaluations":[
		{"feature_name":"new_checkout","identity_identifier":"u1","enabled_when_evaluated":true,"count":2},
		{"feature_name":"new_checkout","identity_identifier":"u2","enabled_when_evaluated":false,"count":3},
		{"feature_name":"banner_colour","enabled_when_evaluated":true,"count":1},
		{"feature_name":"banner_colour","count":1.5},
		{"feature_name":7,"count":1},
		{"count":1},
		{"feature_name":"max_upload_mb"},
		{"feature_name":"nope","count":1},
		"junk"
	]}`))
	if got := takeCounts(a)[exampleClientKey]; !reflect.DeepEqual(got, Counts{"new_checkout": 5, "banner_colour": 1}) {
		t.Errorf("took %v, want new_checkout:5 banner_colour:1", got)
	}
	if s := a.Stats(); s != (Stats{Invalid: 5, Unknown: 1}) {
		t.Errorf("stats = %+v, want 5 invalid entries and 1 unknown name", s)
	}
	for _, body := range []string{`{}`, `{"evaluations":{}}`, `[]`, `{"new_checkout":1}`} {
		b := NewAggregator(0)
		b.RecordV2(ex, []byte(body))
		if got := takeCounts(b); len(got) != 0 || b.Stats().Invalid != 1 {
			t.Errorf("%s: took %v, stats %+v; want nothing and one invalid body", body, got, b.Stats())
		}
	}
}

// TestConcurrentRecord: reports from many goroutines, for two
// environments, while windows are taken, add up exactly (run with -race).
func TestConcurrentRecord(t *testing.T) {
	ex, other := snapshot(t, exampleClientKey), snapshot(t, otherClientKey)
	a := NewAggregator(0)
	const workers, reports = 8, 500
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			snap := ex
			if i%2 == 1 {
				snap = other
			}
			for range reports {
				a.RecordV1(snap, []byte(`{"new_checkout":1,"banner_colour":2}`))
			}
		}()
	}
	total := map[string]Counts{}
	add := func() {
		for k, c := range takeCounts(a) {
			total[k] = merge(total[k], c)
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			add()
		}
	}
	add()
	per := int64(workers / 2 * reports)
	want := map[string]Counts{
		exampleClientKey: {"new_checkout": per, "banner_colour": 2 * per},
		otherClientKey:   {"new_checkout": per, "banner_colour": 2 * per},
	}
	if !reflect.DeepEqual(total, want) {
		t.Errorf("total %v, want %v", total, want)
	}
}
