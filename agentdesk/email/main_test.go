package email

import (
	"testing"

	"go.uber.org/goleak"
)

// The server, poller and sender start goroutines; every test must leave
// none behind once its Stop and cleanups ran.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
