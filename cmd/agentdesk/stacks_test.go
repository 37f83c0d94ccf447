package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSmallStacksChild is the child of TestSmallStacks: it calls
// smallStacks, as serve does, and prints the GODEBUG it then runs with.
func TestSmallStacksChild(t *testing.T) {
	if os.Getenv("AGENTDESK_STACKS_CHILD") == "" {
		t.Skip("child process of TestSmallStacks")
	}
	smallStacks()
	os.Stdout.WriteString("GODEBUG=" + os.Getenv("GODEBUG") + "\n")
}

// A server process re-executes itself with small goroutine stacks, keeps
// the GODEBUG settings it was given, and leaves an operator's own choice of
// the setting alone.
func TestSmallStacks(t *testing.T) {
	for _, c := range []struct{ given, want string }{
		{"", "GODEBUG=adaptivestackstart=0"},
		{"madvdontneed=1", "GODEBUG=madvdontneed=1,adaptivestackstart=0"},
		{"adaptivestackstart=1", "GODEBUG=adaptivestackstart=1"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSmallStacksChild$", "-test.v")
		cmd.Env = append(os.Environ(), "AGENTDESK_STACKS_CHILD=1", "GODEBUG="+c.given)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GODEBUG=%q: %v\n%s", c.given, err, out)
		}
		if strings.Count(string(out), "GODEBUG=") != 1 || !strings.Contains(string(out), c.want+"\n") {
			t.Errorf("GODEBUG=%q: child printed\n%s\nwant %s", c.given, out, c.want)
		}
	}
}
