// Command genworkload writes the benchmark workload files, so tools outside Go
// (the Node SDK timing scripts, HTTP load generators) read exactly the bytes
// the Go benchmarks use.
//
//	go run ./bench/cmd/genworkload -out DIR
//
// It writes P1.json and P2.json (environment documents), P1-identity.json and
// P2-identity.json (POST /api/v1/identities/ bodies) and P2-traits.json (the
// worst-case traits as a trait_key → trait_value object, the form SDKs take).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fledge-flags/fledge/bench/workload"
)

func main() {
	out := flag.String("out", "", "directory to write the workload files into (created if missing)")
	version := flag.Int("version", 0, "document version (changes updated_at and a few values)")
	identifier := flag.String("identifier", "bench-user-00042", "identifier in the identity request bodies")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "genworkload: -out is required")
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, *version, *identifier); err != nil {
		fmt.Fprintln(os.Stderr, "genworkload:", err)
		os.Exit(1)
	}
}

func run(dir string, version int, identifier string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{}
	for _, p := range workload.Profiles() {
		files[p.Name+".json"] = workload.Document(p, version)
		files[p.Name+"-identity.json"] = workload.IdentityBody(p, identifier)
	}
	traits, err := traitObject(workload.Traits(workload.P2))
	if err != nil {
		return err
	}
	files["P2-traits.json"] = traits
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// traitObject keeps the generator's trait order; a Go map would sort keys,
// which only coincides with it for the current trait names.
func traitObject(ts []workload.Trait) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, t := range ts {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(t.Key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(t.Value)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
