package container

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/test/dockertest"
	"github.com/psgw/psgw/test/tlstest"
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
// national key, the operator tokens and the ingest tokens, and the health check never passes.
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
	for _, want := range []string{"refusing to start in production mode", "national.subscription_key_file", "ops.tokens_file", "http.ingest_tokens_file"} {
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

// TestComposeProductionStartsWithItsSecrets: the production profile with every secret it
// needs (the national key, an operator token, an ingest token, a certificate for HTTPS and
// MLLP over TLS) starts and turns healthy; the ingest API takes the ingest token over HTTPS
// and refuses a request without it; the MLLP port speaks TLS with the same certificate. The
// ingest token file is then rotated in place, as docs/deploy.md says, and after
// `docker-compose kill -s HUP psgw` the new token is accepted and the old refused, with no
// restart.
func TestComposeProductionStartsWithItsSecrets(t *testing.T) {
	const (
		oldToken = "compose-ingest-token-0001"
		newToken = "compose-ingest-token-0002"
	)
	secrets := t.TempDir()
	ca := tlstest.NewCA(t, "psgw compose test CA")
	tlstest.WritePair(t, ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth), filepath.Join(secrets, "tls-cert.pem"), filepath.Join(secrets, "tls-key.pem"))
	write := func(name, text string) {
		t.Helper()
		// In place: a compose secret is a bind mount of the file, which a rename would leave
		// pointing at the old one.
		if err := os.WriteFile(filepath.Join(secrets, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("lfpse-key", "production-test-key\n")
	write("ops-tokens", "operator alice alice-operator-token-0001\n")
	write("ingest-tokens", oldToken+"\n")
	for _, f := range []string{"tls-cert.pem", "tls-key.pem"} {
		// The container's user (uid 65532) reads them; on a host they belong to it alone.
		if err := os.Chmod(filepath.Join(secrets, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	httpPort, mllpPort := dockertest.FreePort(t), dockertest.FreePort(t)
	c := dockertest.NewCompose(t, "production", "PSGW_SECRETS="+secrets, "PSGW_BACKUP_DIR="+t.TempDir(),
		"PSGW_HTTP_PORT="+httpPort, "PSGW_MLLP_PORT="+mllpPort, "PSGW_NATIONAL_BASE_URL=https://psims-uat.example")
	c.Must("up", "-d", "psgw")
	id := c.Container("psgw")
	waitHealthy(t, id)

	roots := ca.Pool()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}}}
	n := 0
	postAs := func(token string) int {
		t.Helper()
		n++
		body := fmt.Sprintf(`{"source":"datix","local_id":"PROD-%d","event_type":"incident","occurred_at":"2025-03-14T09:30:00Z","description":"Dose given late."}`, n)
		req, _ := http.NewRequest("POST", "https://127.0.0.1:"+httpPort+"/api/v1/incidents", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("posting over https: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := postAs(oldToken); got != http.StatusAccepted {
		t.Fatalf("with the ingest token: got %d, want 202", got)
	}
	if got := postAs(""); got != http.StatusUnauthorized {
		t.Errorf("without a token: got %d, want 401", got)
	}
	conn, err := tls.Dial("tcp", "127.0.0.1:"+mllpPort, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Errorf("MLLP over TLS: %v", err)
	} else {
		conn.Close()
	}

	write("ingest-tokens", newToken+"\n")
	c.Must("kill", "-s", "HUP", "psgw")
	wait.For(t, 60*time.Second, "the rotated ingest token to be accepted", func() (bool, string) {
		return postAs(newToken) == http.StatusAccepted, ""
	})
	if got := postAs(oldToken); got != http.StatusUnauthorized {
		t.Errorf("the old ingest token after the rotation: got %d, want 401", got)
	}
	logs := c.Must("logs", "--no-color", "psgw")
	if !strings.Contains(logs, "http.ingest_tokens_file") || strings.Contains(logs, newToken) || strings.Contains(logs, oldToken) {
		t.Errorf("want the reload logged by key and no token in the log:\n%s", tail(logs, 20))
	}
	if out, _ := exec.Command("docker", "inspect", "--format", "{{.RestartCount}}", id).Output(); strings.TrimSpace(string(out)) != "0" {
		t.Errorf("restart count %s, want 0: the rotation needs no restart", out)
	}
}
