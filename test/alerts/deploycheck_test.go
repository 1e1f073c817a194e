package alerts

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestDeployCheck runs deploy/check, the module that parses the alert rules and the dashboard
// with Prometheus's own parsers, so that the README's one test command (go test ./...) covers
// the deployment files too: that module is kept out of psgw's own so psgw does not depend on
// Prometheus's server code (docs/deploy.md, "Alerts").
func TestDeployCheck(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "test", "-count=1", "./...")
	cmd.Dir = filepath.Join("..", "..", "deploy", "check")
	// The race detector and other flags of the outer run are not wanted here: the check is
	// of files, not of concurrent code.
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("deploy/check: %v\n%s", err, out)
	}
	t.Logf("deploy/check:\n%s", out)
}
