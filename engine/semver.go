package engine

import "strings"

// semver is a parsed SemVer 2.0.0 version. The parts are substrings of the
// parsed text, so parsing a trait value per evaluation allocates nothing.
// Build metadata is dropped because it never affects precedence.
type semver struct {
	major, minor, patch string // decimal text without leading zeros
	pre                 string // dot-separated prerelease identifiers, "" if none
}

const semverSuffix = ":semver"

// parseSemver parses s strictly (no "v" prefix, no leading zeros, exactly
// three numeric parts). Python's semver library also accepts one trailing
// newline, and so do we.
func parseSemver(s string) (semver, bool) {
	s = strings.TrimSuffix(s, "\n")
	var v semver
	if i := strings.IndexByte(s, '+'); i >= 0 {
		if !validIdentifiers(s[i+1:], false) {
			return v, false
		}
		s = s[:i]
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		v.pre = s[i+1:]
		if !validIdentifiers(v.pre, true) {
			return v, false
		}
		s = s[:i]
	}
	var ok bool
	if v.major, s, ok = numericPart(s, true); !ok {
		return v, false
	}
	if v.minor, s, ok = numericPart(s, true); !ok {
		return v, false
	}
	if v.patch, s, ok = numericPart(s, false); !ok || s != "" {
		return v, false
	}
	return v, true
}

// numericPart takes a version number (and the dot after it when dot is set)
// from the front of s.
func numericPart(s string, dot bool) (part, rest string, ok bool) {
	end := len(s)
	if dot {
		end = strings.IndexByte(s, '.')
		if end < 0 {
			return "", "", false
		}
	}
	part = s[:end]
	if !isDigits(part) || (len(part) > 1 && part[0] == '0') {
		return "", "", false
	}
	if dot {
		return part, s[end+1:], true
	}
	return part, "", true
}

// validIdentifiers checks dot-separated [0-9A-Za-z-]+ identifiers; numeric
// prerelease identifiers may not have leading zeros.
func validIdentifiers(s string, prerelease bool) bool {
	if s == "" {
		return false
	}
	for s != "" {
		id := s
		if i := strings.IndexByte(s, '.'); i >= 0 {
			id, s = s[:i], s[i+1:]
			if s == "" {
				return false // trailing dot
			}
		} else {
			s = ""
		}
		if id == "" || !isAlnumHyphen(id) {
			return false
		}
		if prerelease && len(id) > 1 && id[0] == '0' && isDigits(id) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isAlnumHyphen(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}

// compareNumeric compares decimal strings without leading zeros.
func compareNumeric(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

func compareSemver(a, b semver) int {
	if c := compareNumeric(a.major, b.major); c != 0 {
		return c
	}
	if c := compareNumeric(a.minor, b.minor); c != 0 {
		return c
	}
	if c := compareNumeric(a.patch, b.patch); c != 0 {
		return c
	}
	switch {
	case a.pre == "" && b.pre == "":
		return 0
	case a.pre == "":
		return 1
	case b.pre == "":
		return -1
	}
	x, y := a.pre, b.pre
	for x != "" && y != "" {
		var xi, yi string
		xi, x = nextIdentifier(x)
		yi, y = nextIdentifier(y)
		xn, yn := isDigits(xi), isDigits(yi)
		var c int
		switch {
		case xn && yn:
			c = compareNumeric(xi, yi)
		case xn:
			c = -1
		case yn:
			c = 1
		default:
			c = strings.Compare(xi, yi)
		}
		if c != 0 {
			return c
		}
	}
	switch {
	case x == "" && y == "":
		return 0
	case x == "":
		return -1 // fewer identifiers
	}
	return 1
}

func nextIdentifier(s string) (id, rest string) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}
