package main

import (
	"math"
	"os"
	"strconv"
	"strings"
)

// cpuTimes is one "cpuN" line of /proc/stat: busy and total jiffies.
type cpuTimes struct{ busy, total uint64 }

// readCPUTimes returns per-CPU times, or nil where /proc/stat is missing.
func readCPUTimes() []cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	var out []cpuTimes
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		var t cpuTimes
		for i, v := range f[1:] {
			if i >= 8 { // guest and guest_nice are already in user and nice
				break
			}
			n, _ := strconv.ParseUint(v, 10, 64)
			t.total += n
			if i != 3 && i != 4 { // idle, iowait
				t.busy += n
			}
		}
		out = append(out, t)
	}
	return out
}

// addCPU accumulates the per-CPU differences b-a into acc.
func addCPU(acc []cpuTimes, a, b []cpuTimes) []cpuTimes {
	if len(a) == 0 || len(a) != len(b) {
		return acc
	}
	if acc == nil {
		acc = make([]cpuTimes, len(a))
	}
	if len(acc) != len(a) {
		return acc
	}
	for i := range a {
		acc[i].busy += b[i].busy - a[i].busy
		acc[i].total += b[i].total - a[i].total
	}
	return acc
}

func busyFractions(acc []cpuTimes) []float64 {
	if len(acc) == 0 {
		return nil
	}
	out := make([]float64, len(acc))
	for i, t := range acc {
		if t.total > 0 {
			out[i] = math.Round(1000*float64(t.busy)/float64(t.total)) / 1000
		}
	}
	return out
}

// clockTicks is USER_HZ, 100 on every Linux platform Go supports.
const clockTicks = 100

// procCPUSeconds is the user+system CPU time of a process so far, or -1.
func procCPUSeconds(pid int) float64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name, in parentheses, may contain spaces: fields are
	// counted from the last ')'. utime and stime are fields 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return float64(u+st) / clockTicks
}
