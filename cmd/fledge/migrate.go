package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/fledge-flags/fledge/app"
	"github.com/fledge-flags/fledge/config"
	"github.com/fledge-flags/fledge/migrate"
)

const migrateUsage = `Usage:
  fledge migrate --config PATH --from-database DSN (--project ID | --environment KEY ...) [--dry-run] [--restart]
  fledge migrate --config PATH --from-api URL --token T --project ID [--environment KEY ...] [--dry-run] [--restart]

Copies a self-hosted Flagsmith's identities, traits and identity overrides
into the identity store the configuration names (store.type, store.path),
as Flagsmith's own Core→Edge migration does. It never deletes and never
replaces what the store holds; re-running is a no-op, and an interrupted run
resumes from its checkpoint (--checkpoint, default beside the store).

Options:
`

type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func runMigrate(args []string, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "configuration file (the destination store)")
	var mo app.MigrateOptions
	var envs stringsFlag
	fs.StringVar(&mo.FromDatabase, "from-database", "", "Core's PostgreSQL DSN (postgres://… or key=value)")
	fs.StringVar(&mo.FromAPI, "from-api", "", "Core's base URL, to read its admin API instead")
	fs.StringVar(&mo.Token, "token", "", "admin API token for --from-api (Api-Key or user token)")
	fs.Int64Var(&mo.ProjectID, "project", 0, "migrate every environment of this project")
	fs.Var(&envs, "environment", "migrate this environment (client-side key); repeatable")
	fs.BoolVar(&mo.DryRun, "dry-run", false, "read and report, write nothing")
	fs.BoolVar(&mo.Restart, "restart", false, "ignore the checkpoint and start over")
	fs.StringVar(&mo.Checkpoint, "checkpoint", "", "checkpoint file (default: migrate-checkpoint.json beside the store)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, migrateUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "fledge migrate: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fledge migrate: unexpected arguments %q\n", fs.Args())
		return 2
	}
	mo.EnvironmentKeys = envs
	cfg, err := config.LoadResolved(*configPath, env)
	if err != nil {
		fmt.Fprintf(stderr, "fledge migrate: %v\n", err)
		return 2
	}
	logger := app.NewLogger(cfg.Logging, stderr)
	mo.Progress = stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := app.Migrate(ctx, cfg, mo, logger)
	printReport(stdout, report)
	if err != nil {
		fmt.Fprintf(stderr, "fledge migrate: %v\n", err)
		if errors.Is(err, app.ErrMigrateUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func printReport(w io.Writer, r migrate.Report) {
	if r.Source == "" {
		return
	}
	mode := ""
	if r.DryRun {
		mode = " (dry run: nothing written)"
	}
	fmt.Fprintf(w, "migrated from %s%s in %s\n", r.Source, mode, r.Duration.Round(1e6))
	fmt.Fprintf(w, "  environments %d, identities read %d: created %d, updated %d, unchanged %d\n",
		r.Environments, r.Read, r.Created, r.Updated, r.Unchanged)
	fmt.Fprintf(w, "  traits written %d (store's value kept for %d), overrides written %d (store's kept for %d)\n",
		r.Traits, r.TraitsKept, r.Overrides, r.OverridesKept)
	var total int64
	reasons := make([]string, 0, len(r.SkippedByReason))
	for reason, n := range r.SkippedByReason {
		total += n
		reasons = append(reasons, fmt.Sprintf("%s: %d", reason, n))
	}
	sort.Strings(reasons)
	fmt.Fprintf(w, "  skipped %d\n", total)
	for _, s := range reasons {
		fmt.Fprintf(w, "    %s\n", s)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "    environment %s, identity %d %q: %s\n", s.Environment, s.ID, s.Identifier, s.Reason)
	}
}
