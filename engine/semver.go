package engine

import "strings"

// semver is a parsed SemVer 2.0.0 version. Build metadata is dropped because
// it never affects precedence.
type semver struct {
	major, minor, patch string // canonical decimal text, compared by length then bytes
	pre                 []string
}

const semverSuffix = ":semver"

// parseSemver parses s strictly (no "v" prefix, no leading zeros, exactly
// three numeric parts). Python's semver library also accepts one trailing
// newline, and so do we.
func parseSemver(s string) (semver, bool) {
	s = strings.TrimSuffix(s, "\n")
	var v semver
	if i := strings.IndexByte(s, '+'); i >= 0 {
		build := s[i+1:]
		s = s[:i]
		if build == "" {
			return v, false
		}
		for _, id := range strings.Split(build, ".") {
			if id == "" || !isAlnumHyphen(id) {
				return v, false
			}
		}
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		pre := s[i+1:]
		s = s[:i]
		if pre == "" {
			return v, false
		}
		v.pre = strings.Split(pre, ".")
		for _, id := range v.pre {
			if id == "" || !isAlnumHyphen(id) {
				return v, false
			}
			if isDigits(id) && len(id) > 1 && id[0] == '0' {
				return v, false
			}
		}
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return v, false
	}
	for _, p := range parts {
		if !isDigits(p) || (len(p) > 1 && p[0] == '0') {
			return v, false
		}
	}
	v.major, v.minor, v.patch = parts[0], parts[1], parts[2]
	return v, true
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

// compareNumeric compares canonical decimal strings without leading zeros.
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
	case len(a.pre) == 0 && len(b.pre) == 0:
		return 0
	case len(a.pre) == 0:
		return 1
	case len(b.pre) == 0:
		return -1
	}
	for i := 0; i < len(a.pre) && i < len(b.pre); i++ {
		x, y := a.pre[i], b.pre[i]
		xn, yn := isDigits(x), isDigits(y)
		var c int
		switch {
		case xn && yn:
			c = compareNumeric(x, y)
		case xn:
			c = -1
		case yn:
			c = 1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	switch {
	case len(a.pre) < len(b.pre):
		return -1
	case len(a.pre) > len(b.pre):
		return 1
	}
	return 0
}
