package engine

import (
	"crypto/md5"
	"encoding/binary"
	"math/bits"
)

// percentage maps the ids "a,b" to a bucket in [0, 100) exactly as the
// reference engine does: MD5 as a big-endian integer, modulo 9999, scaled.
// The one value that would give 100 is re-hashed with the ids repeated.
func percentage(a, b string) float64 { return percentage3(a, b, "") }

// percentage3 hashes the ids a and b+c without building b+c as a string:
// the derived identity key is "envkey_" + identifier.
func percentage3(a, b, c string) float64 {
	var stack [256]byte
	buf := stack[:0]
	for iterations := 1; ; iterations++ {
		buf = buf[:0]
		for i := 0; i < iterations; i++ {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, a...)
			buf = append(buf, ',')
			buf = append(buf, b...)
			buf = append(buf, c...)
		}
		sum := md5.Sum(buf)
		hi := binary.BigEndian.Uint64(sum[:8])
		lo := binary.BigEndian.Uint64(sum[8:])
		m := bits.Rem64(hi, lo, 9999)
		p := (float64(m) / 9998.0) * 100.0
		if p != 100 {
			return p
		}
	}
}
