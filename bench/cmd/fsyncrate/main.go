// Command fsyncrate measures how many durable small writes one writer gets
// from a disk: a loop of one write (-size bytes, at offset 0 of a file in
// -dir, rewritten in place) followed by fdatasync, for -d. bench/api-run
// runs it in the identity store's directory, so that the Edge API's rate of
// durable identity writes can be compared with the rate at which the same
// disk completes flushes one after the other: far more writes than flushes
// per second means the writes share flushes (group commit).
//
//	fsyncrate -dir DIR -d 10s [-size 4096] [-sync fsync]
//
// It prints one JSON line: flushes, rate, latency percentiles.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

type options struct {
	dir      string
	duration time.Duration
	size     int
	sync     string
}

func main() {
	var o options
	flag.StringVar(&o.dir, "dir", "", "directory to write in (the file is removed afterwards)")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "how long to measure")
	flag.IntVar(&o.size, "size", 4096, "bytes per write (bbolt writes whole 4 KiB pages)")
	flag.StringVar(&o.sync, "sync", "fdatasync", "flush call: fdatasync (what bbolt uses on Linux) or fsync")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fsyncrate:", err)
		os.Exit(1)
	}
}

// Result is the JSON line printed.
type Result struct {
	Kind    string  `json:"kind"`
	Sync    string  `json:"sync"`
	Size    int     `json:"size"`
	Flushes int     `json:"flushes"`
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rate"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
	Dir     string  `json:"dir"`
}

func run(o options, out io.Writer) error {
	switch {
	case o.dir == "":
		return errors.New("-dir is required")
	case o.duration <= 0 || o.duration > 10*time.Minute:
		return errors.New("-d must be between 0 and 10m")
	case o.size < 1 || o.size > 1<<20:
		return errors.New("-size must be between 1 and 1 MiB")
	}
	var flush func(fd int) error
	switch o.sync {
	case "fdatasync":
		flush = unix.Fdatasync
	case "fsync":
		flush = unix.Fsync
	default:
		return fmt.Errorf("-sync %q: want fdatasync or fsync", o.sync)
	}
	f, err := os.CreateTemp(o.dir, ".fsyncrate-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	res, err := measure(f, flush, o)
	if err != nil {
		return err
	}
	res.Dir, _ = filepath.Abs(o.dir)
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

// measure writes and flushes in a loop. The file is allocated and flushed
// first, so the loop measures overwrites, as a database's page writes are,
// not the growth of the file.
func measure(f *os.File, flush func(fd int) error, o options) (Result, error) {
	buf := make([]byte, o.size)
	fd := int(f.Fd())
	if _, err := f.WriteAt(buf, 0); err != nil {
		return Result{}, err
	}
	if err := unix.Fsync(fd); err != nil {
		return Result{}, err
	}
	var lat []time.Duration
	start := time.Now()
	end := start.Add(o.duration)
	for i := 0; ; i++ {
		t0 := time.Now()
		if !t0.Before(end) {
			break
		}
		buf[i%len(buf)]++ // new content every time
		if _, err := f.WriteAt(buf, 0); err != nil {
			return Result{}, err
		}
		if err := flush(fd); err != nil {
			return Result{}, err
		}
		lat = append(lat, time.Since(t0))
	}
	secs := time.Since(start).Seconds()
	res := Result{Kind: "fsync", Sync: o.sync, Size: o.size, Flushes: len(lat), Seconds: secs, Rate: float64(len(lat)) / secs}
	if len(lat) > 0 {
		slices.Sort(lat)
		q := func(p float64) float64 { return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
		res.P50ms, res.P99ms, res.MaxMs = q(0.50), q(0.99), ms(lat[len(lat)-1])
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
