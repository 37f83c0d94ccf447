package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"agentdesk/agentdesk/postgres/pgtest"
)

// The routing load generator runs its three phases end to end on a small
// scale and reports every task offered, accepted and completed, with the
// task history, the plan settings and the one-statement enqueue in play,
// with serve's publisher and with the engine's own.
// Not parallel: it captures the process's standard output.
func TestLoadgenRoutingSmall(t *testing.T) {
	url := pgtest.NewURL(t)
	latencyLog := filepath.Join(t.TempDir(), "latency.csv")
	for _, mode := range [][]string{{"--latency-log", latencyLog}, {"--enqueue-in-tx"}, {"--publisher", "engine"}} {
		out := captureStdout(t, func() error {
			return loadgenRouting(context.Background(), append([]string{"--database-url", url,
				"--agents", "20", "--rate", "20", "--duration", "2s", "--saturate-tasks", "100",
				"--accept-min", "10ms", "--accept-max", "50ms", "--handle-min", "50ms", "--handle-max", "200ms"}, mode...))
		})
		for _, want := range []string{
			"40 tasks enqueued",
			"40 offered, 40 accepted, 40 completed, 0 not offered, 0 errors (+0 enqueue)",
			"saturate dispatch: 100 offers",
			"saturate: 100 assignments",
		} {
			if !strings.Contains(out, want) {
				t.Fatalf("%v: output lacks %q:\n%s", mode, want, out)
			}
		}
		// serve's publisher (the default) stores each offer in the hub's
		// streams, which the engine's own does not.
		stored := strings.Contains(out, "the hub's streams hold 40 offers")
		if hub := mode[0] != "--publisher"; stored != hub {
			t.Fatalf("%v: offers stored in the hub's streams: %v, want %v:\n%s", mode, stored, hub, out)
		}
	}
	// The latency log has a line for each of the first run's 40 tasks, in
	// the order they were due.
	b, err := os.ReadFile(latencyLog)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 42 || !strings.HasPrefix(lines[0], "# run started at ") || lines[1] != "due_ms,latency_ms" {
		t.Fatalf("latency log: %d lines, starting %q", len(lines), lines[:min(len(lines), 2)])
	}
	last := -1.0
	for _, l := range lines[2:] {
		var due, lat float64
		if _, err := fmt.Sscanf(l, "%f,%f", &due, &lat); err != nil || due < last || lat <= 0 {
			t.Fatalf("latency log line %q (after due %.1f): %v", l, last, err)
		}
		last = due
	}
}

// captureStdout runs fn with os.Stdout going to a pipe, and returns what it
// printed.
func captureStdout(t *testing.T, fn func() error) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, r) //nolint:errcheck
		done <- b.String()
	}()
	ferr := fn()
	os.Stdout = old
	w.Close()
	out := <-done
	if ferr != nil {
		t.Fatalf("%v\n%s", ferr, out)
	}
	return out
}
