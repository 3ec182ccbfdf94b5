package tokens

import "testing"

func TestSet(t *testing.T) {
	s := NewSet("first-token-0123456789", "", "second-token-0123456789")
	for _, tc := range []struct {
		tok  string
		want bool
	}{
		{"first-token-0123456789", true},
		{"second-token-0123456789", true},
		{"", false},
		{"first-token-012345678", false},
		{"first-token-01234567890", false},
		{"FIRST-TOKEN-0123456789", false},
	} {
		if got := s.Match(tc.tok); got != tc.want {
			t.Errorf("Match(%q) = %v, want %v", tc.tok, got, tc.want)
		}
	}
	if s.Empty() || !NewSet("", "").Empty() || (Set{}).Match("") {
		t.Error("an empty set must be empty and match nothing")
	}
}
