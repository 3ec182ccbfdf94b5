package redact

import (
	"strings"
	"testing"
)

func TestKey(t *testing.T) {
	tests := map[string]string{
		"abcdefghijklmnop":     "abcd…",
		"ser.abcdefghijklmnop": "ser.abcd…",
		"abc":                  "…",
		"ser.ab":               "ser.…",
		"":                     "…",
		"ééééé":                "éééé…", // runes, never half a character
	}
	for in, want := range tests {
		if got := Key(in); got != want {
			t.Errorf("Key(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://edge.api.flagsmith.com/api/v1", "https://edge.api.flagsmith.com/api/v1"},
		{"https://user:hunter2@flagsmith.example.com/api/v1/environment-document/", "https://user:xxxxx@flagsmith.example.com/api/v1/environment-document/"},
		{"https://user@flagsmith.example.com/", "https://user@flagsmith.example.com/"},
		{"https://user:hunter2@flag smith/%zz", "https://…"},
		{"user:hunter2@%zz", "user:…"},
		{"user:hunter2@host", "user:…"},
	}
	for _, tt := range tests {
		got := URL(tt.in)
		if got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(got, "hunter2") {
			t.Errorf("URL(%q) leaks the password", tt.in)
		}
	}
}
