package main

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"
)

func TestMeasure(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(options{dir: dir, duration: 200 * time.Millisecond, size: 512, sync: "fdatasync"}, &out); err != nil {
		t.Fatal(err)
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != "fsync" || r.Flushes < 1 || r.Rate <= 0 || r.P50ms <= 0 || r.P99ms < r.P50ms || r.Size != 512 {
		t.Errorf("result %+v", r)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left %d files behind", len(entries))
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []options{
		{duration: time.Second, size: 1, sync: "fsync"},
		{dir: ".", duration: 0, size: 1, sync: "fsync"},
		{dir: ".", duration: time.Second, size: 0, sync: "fsync"},
		{dir: ".", duration: time.Second, size: 1, sync: "sync"},
	} {
		if err := run(o, &bytes.Buffer{}); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
