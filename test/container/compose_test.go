package container

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/test/dockertest"
	"github.com/psgw/psgw/test/wait"
)

// TestComposeDemoProfile is issue 18's must-show 2: `docker-compose --profile demo up` brings up
// psgw and the simulator, built from this repository; an incident posted to psgw is delivered
// to the simulator; psgw backup runs in the container; `down -v` takes it all away again.
func TestComposeDemoProfile(t *testing.T) {
	httpPort, simPort := dockertest.FreePort(t), dockertest.FreePort(t)
	c := dockertest.NewCompose(t, "demo", "PSGW_HTTP_PORT="+httpPort, "PSGW_MLLP_PORT="+dockertest.FreePort(t), "PSGW_SIM_PORT="+simPort)
	c.Must("up", "-d")
	base := "http://127.0.0.1:" + httpPort
	waitHealthy(t, c.Container("psgw-demo"))

	post(t, base, "datix", "COMPOSE-1")
	waitState(t, base, "datix", "COMPOSE-1", "delivered")
	if n := simCount(t, "http://127.0.0.1:"+simPort); n != 1 {
		t.Fatalf("simulator holds %d events, want 1", n)
	}
	// psgw backup in the running container (read-only root file system) reaches the
	// embedded server through its loopback admin port (docs/deploy.md, "Backup and restore").
	out := c.Must("exec", "-T", "psgw-demo", "psgw", "backup", "/var/lib/psgw/backup-test")
	if !strings.Contains(out, "backup of ") {
		t.Errorf("psgw backup in the container printed %q, want its summary", out)
	}
	// It listens where it was told: the host's loopback, not every interface.
	port, err := exec.Command("docker", "port", c.Container("psgw-demo"), "8080/tcp").CombinedOutput()
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(port)), "127.0.0.1:") {
		t.Errorf("docker port: %q %v, want it published on 127.0.0.1 only", port, err)
	}
}

// TestComposeProductionRefusesWithoutSecrets is part of issue 18's must-show 1: the production
// profile, with its secret files present but empty, does not start: psgw exits 2 naming the
// national key and the operator tokens, and the health check never passes.
func TestComposeProductionRefusesWithoutSecrets(t *testing.T) {
	secrets := t.TempDir()
	for _, f := range []string{"lfpse-key", "ops-tokens", "ingest-tokens", "tls-cert.pem", "tls-key.pem"} {
		if err := os.WriteFile(filepath.Join(secrets, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := dockertest.NewCompose(t, "production", "PSGW_SECRETS="+secrets, "PSGW_BACKUP_DIR="+t.TempDir(),
		"PSGW_HTTP_PORT="+dockertest.FreePort(t), "PSGW_MLLP_PORT="+dockertest.FreePort(t), "PSGW_NATIONAL_BASE_URL=https://psims-uat.example")
	c.Must("up", "-d", "psgw")
	id := c.Container("psgw")
	// Refused, it exits and the engine keeps restarting it (restart: unless-stopped): the
	// status is restarting or exited, and the last exit code stays.
	var exit string
	wait.For(t, 60*time.Second, "psgw to refuse to start", func() (bool, string) {
		out, err := exec.Command("docker", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}", id).CombinedOutput()
		if err != nil {
			t.Fatalf("docker inspect: %v: %s", err, out)
		}
		f := strings.Fields(string(out))
		if len(f) == 3 && (f[0] == "restarting" || f[0] == "exited") && f[1] != "0" {
			exit = f[1]
			return true, ""
		}
		return false, strings.TrimSpace(string(out))
	})
	if exit != "2" {
		t.Fatalf("psgw exited %s, want 2 (a configuration refused)", exit)
	}
	logs := c.Must("logs", "--no-color", "psgw")
	for _, want := range []string{"refusing to start in production mode", "national.subscription_key_file", "ops.tokens_file"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log does not say %q:\n%s", want, tail(logs, 20))
		}
	}
	if strings.Contains(logs, "psgw started") {
		t.Errorf("psgw started although refused:\n%s", tail(logs, 20))
	}
}

// waitHealthy waits for the container's HEALTHCHECK (psgw health) to pass.
func waitHealthy(t *testing.T, id string) {
	t.Helper()
	wait.For(t, 90*time.Second, "the container's health check to pass", func() (bool, string) {
		out, _ := exec.Command("docker", "inspect", "--format", "{{.State.Health.Status}}", id).Output()
		st := strings.TrimSpace(string(out))
		return st == "healthy", "health " + st
	})
}
