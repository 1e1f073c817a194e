// Package dockertest builds, from this repository, the container images that tests run on the
// Docker engine, and starts them through testcontainers-go.
//
// No container registry can be reached where psgw is built and tested, so nothing is pulled:
// every image is made `FROM scratch` around a static binary compiled here with the Go
// toolchain (the NATS server from the nats-server module in go.mod, psgw from cmd/psgw). An
// image is built once per machine and content: its tag carries a hash of what went into it,
// and a tag already present is used as it is.
//
// Testcontainers' reaper (Ryuk) is an image that cannot be pulled either, so this package
// turns it off (TESTCONTAINERS_RYUK_DISABLED) and every test removes what it started with
// t.Cleanup.
//
// Where the engine is absent the tests skip, unless PSGW_REQUIRE_DOCKER=1 (set by .ci/run),
// when a missing engine is a failure: CI must never pass by skipping them.
package dockertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func init() {
	// Before testcontainers reads its configuration: its reaper image cannot be pulled here.
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	// With a local engine (a unix socket), published ports are on this machine's loopback.
	// Testcontainers would otherwise guess the default gateway when it finds /.dockerenv,
	// which machines built from container images have even when they run their own engine.
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" && localEngine() {
		_ = os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
}

// localEngine reports whether the Docker engine is reached through a local unix socket.
func localEngine() bool {
	h := os.Getenv("DOCKER_HOST")
	return h == "" || strings.HasPrefix(h, "unix://")
}

// Require skips the test when no Docker engine answers, or fails it when PSGW_REQUIRE_DOCKER
// is set.
func Require(t testing.TB) {
	t.Helper()
	if err := engineErr(); err != nil {
		if os.Getenv("PSGW_REQUIRE_DOCKER") != "" {
			t.Fatalf("PSGW_REQUIRE_DOCKER is set but the Docker engine is not usable: %v", err)
		}
		t.Skipf("Docker engine not usable (%v); set PSGW_REQUIRE_DOCKER=1 to make this a failure", err)
	}
}

var (
	engineOnce sync.Once
	engineErrV error
)

func engineErr() error {
	engineOnce.Do(func() {
		if _, err := exec.LookPath("docker"); err != nil {
			engineErrV = fmt.Errorf("no docker command: %w", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
		if err != nil {
			engineErrV = fmt.Errorf("docker version: %v: %s", err, strings.TrimSpace(string(out)))
		}
	})
	return engineErrV
}

// moduleRoot is the directory holding go.mod, found from the working directory of the test.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the psgw module")
	}
	return filepath.Dir(mod), nil
}

// buildStatic compiles pkg (a main package path resolved within this module) as a static
// linux binary at out.
func buildStatic(ctx context.Context, pkg, out string, ldflags string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-o", out}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	args = append(args, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v: %s", pkg, err, b)
	}
	return nil
}

// imageExists reports whether tag is present in the local engine.
func imageExists(ctx context.Context, tag string) bool {
	return exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", tag).Run() == nil
}

// dockerBuild builds the context dir into tag with the engine's own builder (no BuildKit is
// assumed: the legacy builder is what a stock Debian engine has).
func dockerBuild(ctx context.Context, dir, tag string, extra ...string) error {
	args := append([]string{"build", "-q", "-t", tag}, extra...)
	args = append(args, dir)
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker build %s: %v: %s", tag, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// fileHash is a short hex hash of the named files' contents.
func fileHash(paths ...string) (string, error) {
	h := sha256.New()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// imageCache builds each image at most once per test binary; across test binaries the tag
// already present in the engine is reused.
type imageCache struct {
	mu   sync.Mutex
	tags map[string]string
	errs map[string]error
}

var images = imageCache{tags: map[string]string{}, errs: map[string]error{}}

func (c *imageCache) get(name string, build func() (string, error)) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(name, build)
}

// getLocked is get for a build that needs another image: it runs with c.mu held.
func (c *imageCache) getLocked(name string, build func() (string, error)) (string, error) {
	if tag, ok := c.tags[name]; ok {
		return tag, c.errs[name]
	}
	tag, err := build()
	c.tags[name], c.errs[name] = tag, err
	return tag, err
}

// NewVolume creates a fresh named volume, removed when the test ends.
func NewVolume(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("psgw-test-%d", time.Now().UnixNano())
	if out, err := exec.Command("docker", "volume", "create", name).CombinedOutput(); err != nil {
		t.Fatalf("docker volume create: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "volume", "rm", "-f", name).Run() })
	return name
}
