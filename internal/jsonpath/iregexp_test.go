package jsonpath

import "testing"

func TestIRegexp(t *testing.T) {
	for _, tc := range []struct {
		pattern, input string
		full, want     bool
	}{
		{`a.c`, "abc", true, true},
		{`a.c`, "a\nc", true, false},
		{`a.c`, "a\rc", true, false},
		{`a.c`, "a😀c", true, true},
		{`abc`, "xabcx", true, false},
		{`abc`, "xabcx", false, true},
		{`^a$`, "^a$", true, true},
		{`^a`, "a", false, false},
		{`a|b`, "b", true, true},
		{`a|b`, "ab", true, false},
		{`(ab)+`, "ababab", true, true},
		{`a{2,3}`, "aaa", true, true},
		{`a{2,3}`, "aaaa", true, false},
		{`a{2,}`, "aaaa", true, true},
		{`a{2}`, "aa", true, true},
		{`[^a]`, "b", true, true},
		{`[^a]`, "a", true, false},
		{`[a-c]+`, "abc", true, true},
		{`[-a]`, "-", true, true},
		{`[a-]`, "-", true, true},
		{`[\-\]\[\\]+`, `-][\`, true, true},
		{`\p{Lu}+`, "ÀB", true, true},
		{`\P{Lu}`, "a", true, true},
		{`[\p{Nd}x]+`, "1x2", true, true},
		{`\p{L}`, "ñ", true, true},
		{`\p{Cn}`, "\u0378", true, true},
		{`\p{Cn}`, "a", true, false},
		{`\P{Cn}`, "a", true, true},
		{`[\P{Cn}]`, "a", true, true},
		{`\.\*\n\t`, ".*\n\t", true, true},
		{`\^`, "^", true, true},
		{`$`, "$", true, true},
		{`Europe/.*`, "Europe/Paris", true, true},
	} {
		re := compilePattern(tc.pattern, tc.full)
		if re == nil {
			t.Errorf("compilePattern(%q) failed", tc.pattern)
			continue
		}
		if got := re.MatchString(tc.input); got != tc.want {
			t.Errorf("%q (full=%v) on %q = %v, want %v (translated %q)", tc.pattern, tc.full, tc.input, got, tc.want, re)
		}
	}
}

func TestIRegexpInvalid(t *testing.T) {
	for _, p := range []string{
		`\d`, `\w`, `\s`, `\b`, `(?:a)`, `(?i)a`, `a**`, `a*?`, `*a`, `+`, `a{`, `a{,3}`,
		`a{1,2`, `a{x}`, `[]`, `[^]`, `[a`, `[b-a]`, `[\d]`, `[a-\p{L}]`, `[[a]]`,
		`[--a]`, `[a-b-c]`, `(a`, `a)`, `a]`, `a}`, `\p{Xx}`, `\p{L`, `\pL`, `\p{Lx}`,
		`[\p{Cn}]`, `\$`, `a{1001}`, `\`, "\xff",
	} {
		if re := compilePattern(p, true); re != nil {
			t.Errorf("compilePattern(%q) = %q, want invalid", p, re)
		}
	}
}
