package main

import (
	"context"
	"fmt"
	"os"
	"sort"
)

// loadgen runs one of the benchmarks that print the figures recorded in
// BENCHMARKS.md: `agentdesk loadgen <name> [flags]`. Each benchmark file adds
// itself with registerLoadgen in an init().

type loadgenCommand struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var loadgens = map[string]loadgenCommand{}

func registerLoadgen(name, summary string, run func(ctx context.Context, args []string) error) {
	loadgens[name] = loadgenCommand{summary, run}
}

func init() {
	register("loadgen", "run a benchmark against a database (loadgen <name> --help)", runLoadgen)
}

func runLoadgen(ctx context.Context, args []string) error {
	if len(args) == 0 || loadgens[args[0]].run == nil {
		fmt.Fprintln(os.Stderr, "usage: agentdesk loadgen <name> [flags]\n\nbenchmarks:")
		names := make([]string, 0, len(loadgens))
		for n := range loadgens {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(os.Stderr, "  %-8s %s\n", n, loadgens[n].summary)
		}
		if len(args) == 0 {
			return fmt.Errorf("loadgen: name a benchmark")
		}
		return fmt.Errorf("loadgen: no benchmark %q", args[0])
	}
	return loadgens[args[0]].run(ctx, args[1:])
}
