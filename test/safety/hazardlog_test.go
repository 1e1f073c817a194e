package safety

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	update  = flag.Bool("update", false, "rewrite docs/safety/hazard-log.md from docs/safety/hazard-log.yaml")
	release = flag.Bool("release", false, "also apply the release criteria (docs/safety/clinical-risk-management-plan.md): no open hazard, no residual risk above 3")
)

// root is the repository root, seen from this package's directory.
const root = "../.."

var (
	logPath      = filepath.Join(root, "docs", "safety", "hazard-log.yaml")
	renderedPath = filepath.Join(root, "docs", "safety", "hazard-log.md")
)

func mustLoad(t *testing.T, path string) *Log {
	t.Helper()
	l, err := loadLog(path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestHazardLog is the safety case's link to the code: every test the hazard log names as
// evidence for a control exists, runs in CI (not skipped unconditionally, not skipped under a
// condition CI does not meet), and every hazard has a control verified by a test.
func TestHazardLog(t *testing.T) {
	l := mustLoad(t, logPath)
	for _, p := range checkLog(l, root, *release) {
		t.Error(p)
	}
}

// TestHazardLogRendered keeps docs/safety/hazard-log.md equal to what the YAML renders to;
// go test ./test/safety -run TestHazardLogRendered -update rewrites it.
func TestHazardLogRendered(t *testing.T) {
	l := mustLoad(t, logPath)
	tr, err := modulePath(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	want := render(l, tr)
	if *update {
		if err := os.WriteFile(renderedPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(renderedPath)
	if err != nil {
		t.Fatalf("%v (go test ./test/safety -run TestHazardLogRendered -update writes it)", err)
	}
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("docs/safety/hazard-log.md is stale: run go test ./test/safety -run TestHazardLogRendered -update (-want +got):\n%s", diff)
	}
}
