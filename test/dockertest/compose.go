package dockertest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Compose runs one project of the repository's docker-compose.yml under one profile:
// `docker compose` where the plugin is installed, else docker-compose (v1.28 or later, for
// profiles). Its project name is new for each test, and `down -v` removes its containers,
// network and volumes when the test ends, however it ends.
type Compose struct {
	t       testing.TB
	file    string
	project string
	profile string
	env     []string
}

// NewCompose prepares a project of profile with the environment env (NAME=value) on top of
// the test's own, and PSGW_IMAGE naming the psgw image built from this tree.
func NewCompose(t testing.TB, profile string, env ...string) *Compose {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	c := &Compose{t: t, file: filepath.Join(root, "docker-compose.yml"), profile: profile,
		project: fmt.Sprintf("psgwtest%d", time.Now().UnixNano()%1e9),
		env:     append([]string{"PSGW_IMAGE=" + PsgwImage(t)}, env...)}
	t.Cleanup(func() {
		// Containers, the project's network and its named volumes.
		if out, err := c.Run("down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Logf("compose down: %v: %s", err, out)
		}
	})
	return c
}

// Run runs a compose command in the project and returns its output, stdout and stderr.
func (c *Compose) Run(args ...string) (string, error) {
	bin, pre := "docker-compose", []string(nil)
	if exec.Command("docker", "compose", "version").Run() == nil {
		bin, pre = "docker", []string{"compose"}
	}
	full := append(pre, "-f", c.file, "-p", c.project, "--profile", c.profile)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(full, args...)...)
	cmd.Env = append(os.Environ(), c.env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Must is Run, failing the test on an error.
func (c *Compose) Must(args ...string) string {
	c.t.Helper()
	out, err := c.Run(args...)
	if err != nil {
		c.t.Fatalf("compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Container is the id of the service's container.
func (c *Compose) Container(service string) string {
	c.t.Helper()
	out := c.Must("ps", "-q", service)
	// The output may carry compose's warnings too; the id is the line of hex digits.
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); len(l) >= 12 && strings.Trim(l, "0123456789abcdef") == "" {
			return l
		}
	}
	c.t.Fatalf("no container for service %s in %q", service, out)
	return ""
}

// FreePort is a TCP port free on the loopback now, for a port a compose file publishes.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}
