package migrate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

const checkpointVersion = 1

// checkpoint records, per environment, the highest Core identity id below
// which every identity has been migrated. It is saved after each batch, by
// writing a temporary file, syncing it and renaming it over the old one, so
// a kill at any point leaves either the old or the new checkpoint.
type checkpoint struct {
	path string // "" keeps it in memory only
	mu   sync.Mutex
	data checkpointFile
}

type checkpointFile struct {
	Version      int                        `json:"version"`
	Source       string                     `json:"source"`
	Environments map[string]checkpointEntry `json:"environments"`
}

type checkpointEntry struct {
	LastID int64 `json:"last_identity_id"`
	Done   bool  `json:"done,omitempty"`
}

// loadCheckpoint reads the checkpoint at path for source; a missing file
// (or restart) starts afresh. A checkpoint written for another source is an
// error, since its ids mean nothing here.
func loadCheckpoint(path, source string, restart bool) (*checkpoint, error) {
	c := &checkpoint{path: path, data: checkpointFile{
		Version: checkpointVersion, Source: source, Environments: map[string]checkpointEntry{},
	}}
	if path == "" || restart {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	var f checkpointFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("reading checkpoint %s: %w", path, err)
	}
	if f.Version != checkpointVersion {
		return nil, fmt.Errorf("checkpoint %s has version %d, want %d", path, f.Version, checkpointVersion)
	}
	if f.Source != source {
		return nil, fmt.Errorf("checkpoint %s was written for %q, not %q; remove it or restart", path, f.Source, source)
	}
	if f.Environments == nil {
		f.Environments = map[string]checkpointEntry{}
	}
	c.data = f
	return c, nil
}

func (c *checkpoint) get(envKey string) checkpointEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.data.Environments[envKey]
}

// set records progress and persists it.
func (c *checkpoint) set(envKey string, e checkpointEntry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.data.Environments[envKey] = e
	if c.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(&c.data, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding checkpoint: %w", err)
	}
	if err := writeFileAtomic(c.path, append(b, '\n')); err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }() // no-op after the rename
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
