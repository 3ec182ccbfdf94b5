package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestBinDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := binDir(filepath.Join(dir, "*", "bin")); err == nil || err.Error() != Missing {
		t.Fatalf("no installation: err %v, want %q", err, Missing)
	}
	for _, v := range []string{"9", "15", "13"} {
		if err := os.MkdirAll(filepath.Join(dir, v, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, v, "bin", "initdb"), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, err := binDir(filepath.Join(dir, "*", "bin"))
	if err != nil || got != filepath.Join(dir, "15", "bin") {
		t.Errorf("binDir = %q, %v; want the newest (15)", got, err)
	}
}

func TestStart(t *testing.T) {
	s := Start(t)
	dsn := s.CreateDB(t, "probe")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1: %d, %v", one, err)
	}
}
