// Command compose-check validates a compose file the way `docker compose
// config` does, without a Docker engine: it is compose-go, the library the
// docker compose CLI loads files with — schema validation against the
// Compose Specification, interpolation (a `${VAR:?message}` left unset
// fails), merges and anchors, and the consistency checks (services,
// volumes, networks and secrets that are referenced must exist, dependency
// cycles). compose-go's own command loads the raw model without the
// environment, so `${VAR:?}` always fails there; this one loads the project.
//
//	compose-check [-env-file FILE] compose.yaml
//
// Its own module (scripts/compose-check/go.mod) pins compose-go without
// adding it to the platform's dependencies; `make tools` builds it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	envFile := flag.String("env-file", "", "read variables from this file (like docker compose --env-file)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-env-file FILE] compose.yaml [override.yaml…]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := check(flag.Args(), *envFile); err != nil {
		fmt.Fprintln(os.Stderr, "compose-check:", err)
		os.Exit(1)
	}
}

func check(files []string, envFile string) error {
	dir, err := filepath.Abs(filepath.Dir(files[0]))
	if err != nil {
		return err
	}
	opts := []cli.ProjectOptionsFn{cli.WithWorkingDirectory(dir), cli.WithOsEnv}
	if envFile != "" {
		opts = append(opts, cli.WithEnvFiles(envFile))
	}
	opts = append(opts, cli.WithDotEnv, cli.WithInterpolation(true), cli.WithResolvedPaths(true),
		cli.WithNormalization(true), cli.WithConsistency(true))
	po, err := cli.NewProjectOptions(files, opts...)
	if err != nil {
		return err
	}
	p, err := po.LoadProject(context.Background())
	if err != nil {
		return err
	}
	names := p.ServiceNames()
	sort.Strings(names)
	fmt.Printf("compose-check: %s: project %q, %d services %v\n", files[0], p.Name, len(names), names)
	return nil
}
