package main

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroupsMergeTargets: with -groups, each group's line counts exactly
// the requests its members answered, and a group never takes another's.
func TestGroupsMergeTargets(t *testing.T) {
	var served [4]atomic.Int64
	var urls []string
	for i := range served {
		body := strings.Repeat("a", 10*(i%2+1)) // group 0: 10 bytes, group 1: 20 bytes
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served[i].Add(1)
			w.Write([]byte(body))
		}))
		defer srv.Close()
		urls = append(urls, srv.URL+"/")
	}
	o := options{method: "GET", concurrency: 2, duration: 200 * time.Millisecond, rounds: 2,
		rewarmup: 10 * time.Millisecond, timeout: time.Second, maxRequests: 1e6, groups: 2}
	var targets []*target
	for _, u := range urls {
		tg, err := newTarget(u, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, tg)
	}
	res := loadTest(targets, o)
	if len(res) != 2 {
		t.Fatalf("%d results, want one per group (2)", len(res))
	}
	for g, r := range res {
		if r.URL != urls[g] {
			t.Errorf("group %d reported as %s, want its first member %s", g, r.URL, urls[g])
		}
		if want := float64(10 * (g + 1)); r.BodyBytes != want {
			t.Errorf("group %d: body %v bytes, want %v: it merged another group's target", g, r.BodyBytes, want)
		}
		if r.Requests == 0 || r.Requests > uint64(served[g].Load()+served[g+2].Load()) {
			t.Errorf("group %d: %d requests measured, its servers answered %d + %d", g, r.Requests, served[g].Load(), served[g+2].Load())
		}
		// Each member ran 2 slices of 100 ms: the group measured 400 ms.
		if r.DurationSeconds < 0.39 || r.DurationSeconds > 0.41 {
			t.Errorf("group %d: measured %.3f s, want 0.4", g, r.DurationSeconds)
		}
		if len(r.SliceRPS) != 4 {
			t.Errorf("group %d: %d slice rates, want 4 (2 members × 2 rounds)", g, len(r.SliceRPS))
		}
		var sum float64
		for _, v := range r.SliceRPS {
			sum += v * 0.1
		}
		if d := sum - float64(r.Requests); d < -1 || d > 1 {
			t.Errorf("group %d: slice rates add up to %.0f requests, measured %d", g, sum, r.Requests)
		}
	}
}

// TestMergedSlicesInRunOrder: a group's slices come out in the order they
// ran, whichever member ran them, so that slice i of one group can be paired
// with slice i of the other.
func TestMergedSlicesInRunOrder(t *testing.T) {
	a := &stats{slices: []sliceRPS{{0, 10}, {7, 11}}}
	b := &stats{slices: []sliceRPS{{2, 20}, {5, 21}}}
	a.mergeSlices(b)
	want := []sliceRPS{{0, 10}, {2, 20}, {5, 21}, {7, 11}}
	if !slices.Equal(a.slices, want) {
		t.Errorf("merged slices %v, want %v", a.slices, want)
	}
}
