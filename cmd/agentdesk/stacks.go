package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// stackSetting is the runtime setting that makes idle websockets cheap. By
// default the runtime starts new goroutines with a stack sized from the
// average it has seen; an idle connection's reader sits just above the
// 2 KB line, so that average puts every reader on 4 KB and keeps it there
// while it is blocked. With the setting off, readers start and stay at
// 2 KB: about 2 KB less per connection, and no slower (BENCHMARKS.md,
// Realtime). Go accepts it neither as a //go:debug directive nor as a
// go.mod godebug line, so a server process sets it on itself.
const stackSetting = "adaptivestackstart"

// smallStacks re-executes this process, same PID, arguments and
// environment, with GODEBUG=adaptivestackstart=0 added, unless GODEBUG
// already names that setting (the operator's choice wins; it also ends the
// recursion). It returns only when nothing was done or exec failed; the
// process then goes on with the runtime's default.
func smallStacks() {
	godebug := os.Getenv("GODEBUG")
	for _, kv := range strings.Split(godebug, ",") {
		if strings.HasPrefix(strings.TrimSpace(kv), stackSetting+"=") {
			return
		}
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentdesk: running with the runtime's goroutine stacks:", err)
		return
	}
	if godebug != "" {
		godebug += ","
	}
	env := []string{"GODEBUG=" + godebug + stackSetting + "=0"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	err = syscall.Exec(exe, processArgs(), env)
	fmt.Fprintln(os.Stderr, "agentdesk: running with the runtime's goroutine stacks:", err)
}

// processArgs is the argument list this process was started with, as the
// kernel holds it: os.Args may have been rewritten since (the tests run
// serve inside a test binary that way).
func processArgs() []string {
	b, err := os.ReadFile("/proc/self/cmdline")
	if err != nil || len(b) == 0 {
		return os.Args
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}
