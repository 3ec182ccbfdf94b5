package dynamo

import (
	"fmt"
	"math"
	"strings"

	"github.com/fledge-flags/fledge/engine"
	"github.com/fledge-flags/fledge/identity"
)

// DynamoDB numbers hold 38 significant digits, with magnitudes from 1e-130
// to below 1e126 (and zero).
const (
	maxNumberDigits = 38
	minMagnitude    = 1e-130
	maxMagnitude    = 1e126
)

// NumberInRange reports whether v can be stored as a DynamoDB number
// (strings and booleans always can). Update refuses an identity with a
// trait outside the range with identity.ErrInvalid: such a trait (1e300,
// a 40-digit integer) cannot be written to DynamoDB at all.
func (s *Store) NumberInRange(v engine.Value) bool { return numberInRange(v) }

func numberInRange(v engine.Value) bool {
	switch v.Kind {
	case engine.KindFloat:
		a := math.Abs(v.Float)
		return a == 0 || a >= minMagnitude && a < maxMagnitude
	case engine.KindInt:
		if v.Big == nil {
			return true
		}
		d := strings.TrimLeft(v.Big.String(), "-")
		return len(d) <= 126 && len(strings.TrimRight(d, "0")) <= maxNumberDigits
	}
	return true
}

func validateNumbers(id *identity.Identity) error {
	for _, t := range id.Traits {
		if !numberInRange(t.Value) {
			return fmt.Errorf("%w: trait %q: %s is outside DynamoDB's number range (38 digits, magnitude 1e-130 to 1e126)",
				identity.ErrInvalid, t.Key, identity.ValueJSON(t.Value))
		}
	}
	return nil
}
