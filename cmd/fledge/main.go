// Command fledge is a Flagsmith-compatible edge proxy and flag evaluator.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `fledge: a fast, Flagsmith-compatible edge tier for feature flags

Usage:
  fledge proxy   serve Flagsmith's SDK endpoints (a drop-in Edge Proxy)
  fledge eval    evaluate a context, or an environment document and identity
  fledge health  probe a running instance's readiness (exit 0 when ready)
  fledge help    show this help

Run "fledge COMMAND -h" for a command's options.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
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
