package ui

import (
	"os"
	"os/exec"
	"testing"
)

// TestFrontendUnit runs the TypeScript unit tests (vitest) with the Go suite,
// so `make test` covers them. It needs the npm dependencies that
// scripts/deps.sh installs.
func TestFrontendUnit(t *testing.T) {
	if testing.Short() {
		t.Skip("frontend unit tests: skipped with -short")
	}
	if _, err := os.Stat("node_modules/.bin/vitest"); err != nil {
		t.Skip("web/ui/node_modules missing: run scripts/deps.sh run (npm ci)")
	}
	// Generous timeouts: the machine is shared, and a loaded one must not fail these.
	cmd := exec.Command("node_modules/.bin/vitest", "run", "--reporter=dot", "--testTimeout=60000", "--hookTimeout=60000")
	cmd.Env = append(os.Environ(), "CI=1", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vitest: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
