package source

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fledge-flags/fledge/environment"
	"github.com/fledge-flags/fledge/internal/redact"
	"github.com/fledge-flags/fledge/registry"
)

// LoadFiles reads offline environment documents. Each file's api_key is its
// client key.
func LoadFiles(paths []string, logger *slog.Logger) ([]*environment.Snapshot, error) {
	var snaps []*environment.Snapshot
	for _, path := range paths {
		raw, err := ReadFileCapped(path)
		if err != nil {
			return nil, fmt.Errorf("environments: %w", err)
		}
		snap, err := Build(raw, logger, "")
		if err != nil {
			return nil, fmt.Errorf("environments: %s: %w", path, err)
		}
		snaps = append(snaps, snap)
	}
	return snaps, nil
}

// SnapshotDir stores the last good document of each environment, so that a
// restart during an upstream outage can still serve.
type SnapshotDir struct {
	Dir string
}

func (d *SnapshotDir) path(clientKey string) string {
	// Client keys are shortuuids; anything else is made safe for a file name.
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, clientKey)
	return filepath.Join(d.Dir, safe+".json")
}

// Save writes the document atomically: a crash mid-write never leaves a
// truncated snapshot behind.
func (d *SnapshotDir) Save(clientKey string, doc []byte) error {
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", d.Dir, err)
	}
	tmp, err := os.CreateTemp(d.Dir, ".snapshot-*")
	if err != nil {
		return fmt.Errorf("creating temporary file in %s: %w", d.Dir, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(doc); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), d.path(clientKey)); err != nil {
		return errors.New(d.redactErr(err, clientKey))
	}
	return nil
}

// redactErr renders err with the snapshot file's name shortened: the name
// is the client key, which logs never show whole.
func (d *SnapshotDir) redactErr(err error, clientKey string) string {
	full := d.path(clientKey)
	base := strings.TrimSuffix(filepath.Base(full), ".json")
	return strings.ReplaceAll(err.Error(), full, filepath.Join(filepath.Dir(full), redact.Key(base)+".json"))
}

// LoadInto installs every saved snapshot into the registry as a warm start,
// recorded as such in fresh. A missing or unreadable snapshot is logged and
// skipped: it must not stop the proxy from starting.
func (d *SnapshotDir) LoadInto(reg *registry.Registry, fresh *Freshness, logger *slog.Logger) {
	for _, env := range reg.Envs() {
		d.loadOne(env, fresh, logger)
	}
}

// loadOne installs env's saved snapshot, if there is one, as a warm start,
// into an empty slot only.
func (d *SnapshotDir) loadOne(env *registry.Env, fresh *Freshness, logger *slog.Logger) {
	raw, err := ReadFileCapped(d.path(env.ClientKey))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		logger.Warn("reading warm-start snapshot failed", "client_key", registry.Redact(env.ClientKey), "error", d.redactErr(err, env.ClientKey))
		return
	}
	snap, err := Build(raw, logger, env.ClientKey)
	if err != nil {
		logger.Warn("warm-start snapshot unusable", "client_key", registry.Redact(env.ClientKey), "error", err.Error())
		return
	}
	if env.StoreWarm(snap) {
		fresh.MarkWarm(env)
	}
	age := ""
	if !snap.UpdatedAt.IsZero() {
		age = time.Since(snap.UpdatedAt).Round(time.Second).String()
	}
	logger.Info("serving warm-start snapshot until the upstream answers", "client_key", registry.Redact(env.ClientKey),
		"updated_at", snap.UpdatedAt, "document_age", age)
}
