package ingest_test

import (
	"os/exec"
	"strings"
	"testing"
)

// forbidden are the packages an adapter must never depend on, even indirectly: it sees the
// pipeline only through ingest.Publisher (STYLE.md, "Dependencies point one way").
var forbidden = []string{
	"github.com/psgw/psgw/queue",
	"github.com/psgw/psgw/forwarder",
	"github.com/psgw/psgw/mapper",
	"github.com/psgw/psgw/patients",
	"github.com/psgw/psgw/internal/",
	"github.com/nats-io/",
}

// TestAdaptersDoNotImportThePipeline lists every package under ingest/, with its tests, and
// everything each depends on transitively, as Tailscale's deptest does.
func TestAdaptersDoNotImportThePipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-e", "-test",
		"-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 4 {
		t.Fatalf("go list found only %d packages under ingest/", len(lines))
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		for _, dep := range deps {
			for _, bad := range forbidden {
				if dep == bad || strings.HasPrefix(dep, strings.TrimSuffix(bad, "/")+"/") {
					t.Errorf("%s depends on %s; adapters may only see ingest.Publisher", pkg, dep)
				}
			}
		}
	}
}
