package ingest_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The import rule (docs/adapters.md, "What an adapter must not do"; STYLE.md, "Dependencies
// point one way"): of psgw's own packages, an adapter depends on ingest and fhir only, even
// indirectly. It sees the pipeline through ingest.Publisher, its settings through
// ingest.Deps, and is found by the gateway through the registry, so it needs nothing else:
// not the queue, the forwarder, the mapper, the patients stage, the config package or the
// gateway (internal/gateway). It may use the house's leaf packages, which import nothing of
// psgw's (internal/backoff, internal/supervise). Its tests may also use psgw's test helpers (test/pgtest).
const module = "github.com/psgw/psgw/"

var (
	allowed     = []string{module + "ingest", module + "fhir", module + "internal/backoff", module + "internal/supervise"}
	testHelpers = []string{module + "test/"}
	// forbidden are outside packages an adapter must not reach for either.
	forbidden = []string{"github.com/nats-io/"}
)

// TestAdaptersImportOnlyIngestAndFHIR lists every package under ingest/, with its tests, and
// everything each depends on transitively, as Tailscale's deptest does.
func TestAdaptersImportOnlyIngestAndFHIR(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-e", "-test",
		"-f", "{{.ForTest}}\t{{.ImportPath}}\t{{join .Deps \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 4 {
		t.Fatalf("go list found only %d packages under ingest/", len(lines))
	}
	for _, line := range lines {
		forTest, rest, _ := strings.Cut(line, "\t")
		pkg, deps, _ := strings.Cut(rest, "\t")
		isTest := forTest != "" || strings.HasSuffix(pkg, ".test")
		for _, dep := range strings.Fields(deps) {
			if !permitted(dep, isTest) {
				t.Errorf("%s depends on %s; adapters may only see ingest and fhir", pkg, dep)
			}
		}
	}
}

func permitted(dep string, isTest bool) bool {
	for _, bad := range forbidden {
		if strings.HasPrefix(dep, bad) {
			return false
		}
	}
	if !strings.HasPrefix(dep, module) {
		return true
	}
	dep = strings.TrimSuffix(dep, "_test") // a test binary depends on its external test package
	for _, ok := range allowed {
		if dep == ok || strings.HasPrefix(dep, ok+"/") {
			return true
		}
	}
	if isTest {
		for _, ok := range testHelpers {
			if strings.HasPrefix(dep, ok) {
				return true
			}
		}
	}
	return false
}
