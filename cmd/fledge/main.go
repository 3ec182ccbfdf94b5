// Command fledge is a Flagsmith-compatible edge proxy and flag evaluator.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

const usage = `fledge: a fast, Flagsmith-compatible edge tier for feature flags

Usage:
  fledge proxy   serve Flagsmith's SDK endpoints (a drop-in Edge Proxy)
  fledge api     serve them as the Edge API: identities and traits persist
  fledge migrate copy a self-hosted Flagsmith's identities into the api's store
  fledge eval    evaluate a context, or an environment document and identity
  fledge health  probe a running instance's readiness (exit 0 when ready)
  fledge help    show this help

Run "fledge COMMAND -h" for a command's options.
`

func main() {
	if pct, ok := defaultGCPercent(os.Getenv); ok {
		debug.SetGCPercent(pct)
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// gcPercent is the collector's target when GOGC is not set. Fledge's live
// heap is small (about 1 MiB with two environments loaded), so at Go's
// default of 100 the collector runs every 3 MiB of allocation, which under
// load is several times a second per core: about 3% of a core serving
// /flags/. At 200 it runs half as often, for about 4 MiB more peak memory.
const gcPercent = 200

// defaultGCPercent returns the GC percent to set: gcPercent unless the
// operator chose one with GOGC (which the runtime has applied already).
func defaultGCPercent(getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	return gcPercent, true
}

// run dispatches a subcommand and returns the process exit status: 0 on
// success, 1 on a runtime failure, 2 on bad usage or bad input.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "proxy":
		return runProxy(args[1:], os.Environ(), stdout, stderr)
	case "api":
		return runAPI(args[1:], os.Environ(), stdout, stderr)
	case "migrate":
		return runMigrate(args[1:], os.Environ(), stdout, stderr)
	case "health":
		return runHealth(args[1:], stdout, stderr)
	case "eval":
		return runEval(args[1:], stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "fledge: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
