package sdk

import (
	"testing"

	"github.com/fledge-flags/fledge/bench/workload"
)

func BenchmarkDecodeIdentityRequest(b *testing.B) {
	for _, p := range workload.Profiles() {
		body := workload.IdentityBody(p, "bench-user-42")
		b.Run(p.Name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeIdentityRequest(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
