package main

import "testing"

func TestDefaultGCPercent(t *testing.T) {
	for _, tt := range []struct {
		gogc string
		want int
		set  bool
	}{
		{"", gcPercent, true},
		{"100", 0, false},
		{"off", 0, false},
	} {
		pct, set := defaultGCPercent(func(k string) string {
			if k == "GOGC" {
				return tt.gogc
			}
			return ""
		})
		if pct != tt.want || set != tt.set {
			t.Errorf("GOGC=%q: got (%d, %v), want (%d, %v)", tt.gogc, pct, set, tt.want, tt.set)
		}
	}
}
