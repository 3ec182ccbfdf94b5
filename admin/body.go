package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// fields is a request body: a JSON object's members.
type fields map[string]json.RawMessage

// object reads the request body, which must be a JSON object; an empty
// body reads as {} (so missing fields are named), as DRF reads one.
func (c *call) object() (fields, error) {
	data, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, c.h.opt.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &apiError{code: http.StatusRequestEntityTooLarge,
				body: detail("Request body larger than " + strconv.FormatInt(c.h.opt.MaxBodyBytes, 10) + " bytes.")}
		}
		return nil, &apiError{code: http.StatusBadRequest, body: detail("Could not read the request body: " + err.Error())}
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return fields{}, nil
	}
	if !json.Valid(data) {
		var probe any
		err := json.Unmarshal(data, &probe)
		return nil, &apiError{code: http.StatusBadRequest, body: detail("JSON parse error - " + err.Error())}
	}
	if data[0] != '{' {
		return nil, errNotObject
	}
	var f fields
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, &apiError{code: http.StatusBadRequest, body: detail("JSON parse error - " + err.Error())}
	}
	return f, nil
}

// get returns a member that is present and not null.
func (f fields) get(name string) (json.RawMessage, bool) {
	raw, ok := f[name]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return nil, false
	}
	return raw, true
}

// requiredString reads a string member that must be there.
func (f fields) requiredString(name string) (string, error) {
	raw, ok := f[name]
	if !ok {
		return "", fieldError(name, "This field is required.")
	}
	if bytes.Equal(raw, []byte("null")) {
		return "", fieldError(name, "This field may not be null.")
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fieldError(name, "Not a valid string.")
	}
	return s, nil
}

// optionalString reads a string member; absent and null give ok false.
func (f fields) optionalString(name string) (s string, ok bool, err error) {
	raw, ok := f.get(name)
	if !ok {
		return "", false, nil
	}
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false, fieldError(name, "Not a valid string.")
	}
	return s, true, nil
}

// optionalBool reads a boolean member; absent and null are false.
func (f fields) optionalBool(name string) (bool, error) {
	raw, ok := f.get(name)
	if !ok {
		return false, nil
	}
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fieldError(name, "Must be a valid boolean.")
}

// maxChars checks a string's length in characters (code points).
func maxChars(field, s string, n int) error {
	if utf8.RuneCountInString(s) > n {
		return fieldError(field, "Ensure this field has no more than "+strconv.Itoa(n)+" characters.")
	}
	return nil
}
