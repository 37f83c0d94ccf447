package agentdesk_test

import (
	"go/build"
	"strings"
	"testing"
)

// TestDomainImportsStandardLibraryOnly keeps the domain free of adapters and
// third-party modules: everything else depends on it, so it depends on nothing.
func TestDomainImportsStandardLibraryOnly(t *testing.T) {
	pkg, err := build.Default.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		first := strings.SplitN(imp, "/", 2)[0]
		if strings.Contains(first, ".") || first == "agentdesk" {
			t.Errorf("domain package imports %q; it may import the standard library only", imp)
		}
	}
}
