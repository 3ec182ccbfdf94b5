package config

import (
	"strconv"
	"strings"
)

// Error is a configuration fault. Its message always starts with "config:"
// and names what to fix: the file or environment variable it came from
// (when one is to blame), the position in the file for JSON syntax errors,
// and the setting as a dotted path such as
// environment_key_pairs[0].server_side_key.
type Error struct {
	Source  string // file path, "environment variable NAME", or ""
	Line    int    // 1-based, JSON syntax errors in a file only
	Column  int    // 1-based, in characters
	Setting string // dotted path; "" when the fault is the whole source
	Msg     string
	Err     error // underlying cause, if any

	// key is Setting with canonical names (no aliases), so a later source
	// setting the same value can withdraw the error.
	key string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.Source != "" {
		b.WriteString(e.Source)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column))
		}
		b.WriteString(": ")
	}
	if e.Setting != "" {
		b.WriteString(e.Setting)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap exposes the cause, e.g. fs.ErrNotExist for a missing file.
func (e *Error) Unwrap() error { return e.Err }

func settingError(setting, msg string) *Error {
	return &Error{Setting: setting, Msg: msg, key: setting}
}
