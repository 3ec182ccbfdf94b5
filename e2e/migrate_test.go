package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fledge-flags/fledge/internal/pgtest"
)

// coreEnvironmentDoc is an environment document for the fixtures' "v1 env"
// (client key envV1), with the fixtures' features.
const coreEnvironmentDoc = `{
  "id": 1, "api_key": "envV1", "name": "v1 env", "updated_at": "2026-11-01T00:00:00Z",
  "allow_client_traits": true, "use_identity_composite_key_for_hashing": false,
  "project": {"id": 1, "name": "migrated", "hide_disabled_flags": false, "server_key_only_feature_ids": [],
    "organisation": {"id": 1, "name": "o", "persist_trait_data": true, "stop_serving_flags": false}, "segments": []},
  "feature_states": [
    {"feature": {"id": 1, "name": "std", "type": "STANDARD"}, "enabled": false, "feature_state_value": "default", "multivariate_feature_state_values": []},
    {"feature": {"id": 3, "name": "other", "type": "STANDARD"}, "enabled": false, "feature_state_value": null, "multivariate_feature_state_values": []}
  ],
  "identity_overrides": []
}`

// TestMigrateFromCoreDatabase runs `fledge migrate` from a real PostgreSQL
// holding Core's schema into the embedded store, then serves the migrated
// identities with `fledge api`.
func TestMigrateFromCoreDatabase(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.CreateDB(t, "core")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"core_schema.sql", "core_indexes.sql", "core_fixtures.sql"} {
		if _, err := conn.Exec(ctx, string(readRepoFile(t, filepath.Join("migrate", "testdata", f)))); err != nil {
			t.Fatalf("loading %s: %v", f, err)
		}
	}
	_ = conn.Close(ctx)

	dir := t.TempDir()
	docPath := filepath.Join(t.TempDir(), "env.json")
	if err := os.WriteFile(docPath, []byte(coreEnvironmentDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config{
		"environments":          []string{docPath},
		"environment_key_pairs": []keyPair{},
		"server":                map[string]any{"host": "127.0.0.1"},
		"store":                 map[string]any{"path": dir},
	}
	cfgPath := cfg.write(t)
	migrateRun := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(fledgeBin, append([]string{"migrate", "--config", cfgPath, "--from-database", dsn}, args...)...)
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fledge migrate %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if strings.Contains(string(out), "postgres://") {
			t.Errorf("the DSN reached the output:\n%s", out)
		}
		return string(out)
	}
	out := migrateRun("--environment", "envV1", "--dry-run")
	if !strings.Contains(out, "dry run") {
		t.Errorf("dry run report:\n%s", out)
	}
	out = migrateRun("--environment", "envV1")
	for _, want := range []string{"created 3", "skipped 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if again := migrateRun("--environment", "envV1", "--restart"); !strings.Contains(again, "unchanged 3") {
		t.Errorf("a second run changed something:\n%s", again)
	}

	p := startAPI(t, cfg)
	a := lookup(t, p, "envV1", "identifier=alice&transient=true")
	traits := a.traits()
	for _, want := range []string{"num_str=7", "float_str=1.5", `exp_str="1e5"`, "int=42", "bool=true", "float=2.5", `plus="+1"`, `first="by id"`} {
		if !strings.Contains(" "+traits+" ", " "+want+" ") {
			t.Errorf("alice's traits lack %s: %s", want, traits)
		}
	}
	if got := a.flag("std"); got != `true "123"` {
		t.Errorf("alice's live override of std: %s", got)
	}
	if got := a.flag("other"); got != "false null" {
		t.Errorf("alice's not-yet-live override of other must not apply: %s", got)
	}
	if got := lookup(t, p, "envV1", "identifier=bob&transient=true").flag("std"); !strings.HasPrefix(got, "true ") {
		t.Errorf("bob's override of std: %s", got)
	}
}
