package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// MaxFileBytes bounds every document read from a file (offline
// environments, warm-start snapshots, `fledge eval` input): the same limit
// as a fetched document, so that /dev/zero or a runaway file is refused
// with a message instead of exhausting memory.
const MaxFileBytes = DefaultMaxDocumentBytes

// ErrTooLarge is wrapped by ReadFileCapped for a file over its limit.
var ErrTooLarge = fmt.Errorf("larger than %d MiB", MaxFileBytes>>20)

// ReadFileCapped reads at most MaxFileBytes of the file at path; a larger
// file (or an endless one, such as /dev/zero) is an error wrapping
// ErrTooLarge. Errors name the path.
func ReadFileCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) { // "reading X: no such file", not "open X: …"
			err = pe.Err
		}
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	return ReadCapped(f, path)
}

// ReadCapped reads r (named name in errors) up to MaxFileBytes.
func ReadCapped(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("reading %s: %w", name, ErrTooLarge)
	}
	return b, nil
}
