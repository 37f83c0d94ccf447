package routing

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if an engine's goroutines (dispatcher,
// listener, sweeper, stats) outlive Stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
