// Package tokens checks bearer-style tokens (admin API tokens, Flagsmith's
// queue-change token) without leaking them through timing.
package tokens

import (
	"crypto/sha256"
	"crypto/subtle"
)

// Set is a set of accepted tokens, kept as SHA-256 digests: comparing
// fixed-size digests in constant time leaks neither a token's content nor
// its length. The zero Set accepts nothing.
type Set struct{ sums [][sha256.Size]byte }

// NewSet accepts the non-empty tokens given.
func NewSet(tokens ...string) Set {
	var s Set
	for _, t := range tokens {
		if t != "" {
			s.sums = append(s.sums, sha256.Sum256([]byte(t)))
		}
	}
	return s
}

// Empty reports whether the set accepts no token.
func (s Set) Empty() bool { return len(s.sums) == 0 }

// Match reports whether tok is one of the tokens. Every token is compared,
// whichever matches, so the time taken tells nothing either.
func (s Set) Match(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	match := 0
	for i := range s.sums {
		match |= subtle.ConstantTimeCompare(sum[:], s.sums[i][:])
	}
	return match == 1
}
