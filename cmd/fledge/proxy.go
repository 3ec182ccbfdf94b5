package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/fledge-flags/fledge/app"
	"github.com/fledge-flags/fledge/config"
)

const proxyUsage = `Usage:
  fledge proxy [--config PATH] [--print-config]

Serves Flagsmith's SDK endpoints from environment documents polled from the
Flagsmith API (or read from files in offline mode). Configuration is read
from --config, else $CONFIG_PATH, else ./config.json, and environment
variables override it (see README.md).
`

const apiUsage = `Usage:
  fledge api [--config PATH] [--print-config] [--create-tables]

Serves Flagsmith's SDK endpoints as the Edge API: identities and their
traits persist in the identity store (store.type: embedded, in store.path;
or dynamodb), and the edge-identities admin API is served when admin.tokens
is set. Environment documents come from the same sources as the proxy's.
Configuration is read as for fledge proxy (see README.md).

--create-tables creates Flagsmith's DynamoDB tables (with their indexes,
on-demand) in every region of store.dynamodb.regions, leaves existing
ones as they are, and exits 0 when all are active.
`

func runProxy(args []string, env []string, stdout, stderr io.Writer) int {
	return runRole(app.Proxy, proxyUsage, args, env, stdout, stderr)
}

func runAPI(args []string, env []string, stdout, stderr io.Writer) int {
	return runRole(app.API, apiUsage, args, env, stdout, stderr)
}

// runRole parses a serving command's flags and configuration, opens its
// listeners and runs the role until SIGINT or SIGTERM.
func runRole(role app.Role, usage string, args []string, env []string, stdout, stderr io.Writer) int {
	name := "fledge " + string(role)
	fs := flag.NewFlagSet(string(role), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "configuration file")
	printConfig := fs.Bool("print-config", false, "print the effective configuration (keys redacted) and exit")
	var createTables *bool
	if role == app.API {
		createTables = fs.Bool("create-tables", false, "create the DynamoDB tables in every region and exit")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, name+": %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, name+": unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg, err := config.LoadResolved(*configPath, env)
	if err != nil {
		fmt.Fprintf(stderr, name+": %v\n", err)
		return 2
	}
	if *printConfig {
		b, err := cfg.Redacted()
		if err != nil {
			fmt.Fprintf(stderr, name+": %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	if err := cfg.CheckFiles(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	logger := app.NewLogger(cfg.Logging, stderr)
	for _, k := range cfg.Unknown {
		logger.Warn("unknown configuration setting ignored", "setting", k)
	}
	for _, w := range cfg.Warnings() {
		logger.Warn(w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if createTables != nil && *createTables {
		if cfg.Store.Type != "dynamodb" {
			fmt.Fprintf(stderr, name+": --create-tables: store.type is %q; the tables are DynamoDB's (store.type: dynamodb)\n", cfg.Store.Type)
			return 2
		}
		if err := app.CreateTables(ctx, cfg, logger); err != nil {
			fmt.Fprintf(stderr, name+": --create-tables: %v\n", err)
			return 1
		}
		return 0
	}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		fmt.Fprintf(stderr, name+": server.host/server.port: %v\n", err)
		return 1
	}
	var debugLn net.Listener
	if cfg.Server.DebugAddress != "" {
		if debugLn, err = net.Listen("tcp", cfg.Server.DebugAddress); err != nil {
			ln.Close()
			fmt.Fprintf(stderr, name+": server.debug_address: %v\n", err)
			return 1
		}
	}
	if err := app.Run(ctx, role, cfg, app.Listeners{Main: ln, Debug: debugLn}, logger); err != nil {
		logger.Error(name+" stopped", "error", err.Error())
		return 1
	}
	return 0
}
