package hub

import (
	"go/build"
	"strings"
	"testing"
)

// The hub is imported by web and fed by routing through an adapter; it
// must import neither (doc.go).
func TestImportsNeitherWebNorRouting(t *testing.T) {
	t.Parallel()
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if imp == "agentdesk/web" || strings.HasPrefix(imp, "agentdesk/routing") || (strings.HasPrefix(imp, "agentdesk/web/") && imp != "agentdesk/web/hub") {
			t.Errorf("web/hub imports %s", imp)
		}
	}
}
