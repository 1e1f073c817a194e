package dockertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// natsModule is the NATS server module whose binary the NATS image runs: the same version psgw
// embeds, from go.mod.
const natsModule = "github.com/nats-io/nats-server/v2"

// NATSImage returns the tag of a NATS server image built from the nats-server module in
// go.mod, building it first if the engine does not have it. It skips or fails the test as
// Require does when there is no engine.
func NATSImage(t testing.TB) string {
	t.Helper()
	Require(t)
	tag, err := images.get("nats", buildNATSImage)
	if err != nil {
		t.Fatalf("building the NATS server image: %v", err)
	}
	return tag
}

func buildNATSImage() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", natsModule)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", natsModule, err)
	}
	version := strings.TrimSpace(string(out))
	tag := "psgw-test/nats-server:" + strings.TrimPrefix(version, "v")
	if imageExists(ctx, tag) {
		return tag, nil
	}
	dir, err := os.MkdirTemp("", "psgw-nats-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := buildStatic(ctx, natsModule, filepath.Join(dir, "nats-server"), "-s -w"); err != nil {
		return "", err
	}
	// A data directory owned by nobody in particular: the server runs as root in the test
	// image (it is a test fixture, not something we ship) and writes JetStream under /data.
	dockerfile := `FROM scratch
COPY nats-server /nats-server
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
`
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", err
	}
	if err := dockerBuild(ctx, dir, tag, "--label", "org.opencontainers.image.version="+version); err != nil {
		return "", err
	}
	return tag, nil
}

// NATSClusterImage returns the tag of the image of the compose file's cluster profile,
// built as deploy/nats/build-image.sh builds it (deploy/nats/Dockerfile: the server of
// NATSImage with deploy/nats/cluster.conf as its configuration), building it first if the
// engine does not have it. The tag carries the server's version and a hash of the
// Dockerfile and the configuration.
func NATSClusterImage(t testing.TB) string {
	t.Helper()
	Require(t)
	tag, err := images.get("nats-cluster", buildNATSClusterImage)
	if err != nil {
		t.Fatalf("building the NATS cluster image: %v", err)
	}
	return tag
}

func buildNATSClusterImage() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	base, err := images.getLocked("nats", buildNATSImage)
	if err != nil {
		return "", err
	}
	dockerfile, conf := filepath.Join(root, "deploy/nats/Dockerfile"), filepath.Join(root, "deploy/nats/cluster.conf")
	sum, err := fileHash(dockerfile, conf)
	if err != nil {
		return "", err
	}
	tag := "psgw-test/nats-cluster:" + strings.TrimPrefix(base, "psgw-test/nats-server:") + "-" + sum
	if imageExists(ctx, tag) {
		return tag, nil
	}
	dir, err := os.MkdirTemp("", "psgw-nats-cluster-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	// The binary is the one in the base image, copied out of a container made (not run)
	// from it, so that the server is compiled once.
	cid, err := exec.CommandContext(ctx, "docker", "create", base).Output()
	if err != nil {
		return "", fmt.Errorf("docker create %s: %w", base, err)
	}
	id := strings.TrimSpace(string(cid))
	defer func() { _ = exec.Command("docker", "rm", "-f", id).Run() }()
	if err := os.MkdirAll(filepath.Join(dir, "dist"), 0o755); err != nil {
		return "", err
	}
	if out, err := exec.CommandContext(ctx, "docker", "cp", id+":/nats-server", filepath.Join(dir, "dist", "nats-server")).CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker cp: %v: %s", err, out)
	}
	for _, f := range []string{dockerfile, conf} {
		if err := copyFile(f, filepath.Join(dir, filepath.Base(f))); err != nil {
			return "", err
		}
	}
	if err := dockerBuild(ctx, dir, tag); err != nil {
		return "", err
	}
	return tag, nil
}

// NATSOptions shape a single NATS server container.
type NATSOptions struct {
	// Args are extra server arguments after "-js -sd /data".
	Args []string
	// Networks are docker networks to join, with Aliases giving its name on each.
	Networks []string
	Aliases  map[string][]string
	// Name is the container name; empty lets the engine choose.
	Name string
	// Files are copied into the container before it starts: container path → content.
	Files map[string]string
}

// NATS is one NATS server running in a container.
type NATS struct {
	Container testcontainers.Container
	// URL is the client URL reachable from the test process.
	URL string
}

// StartNATS starts one NATS server with JetStream in a container built by NATSImage. It is
// removed when the test ends.
func StartNATS(t testing.TB, o NATSOptions) *NATS {
	t.Helper()
	image := NATSImage(t)
	ctx := context.Background()
	args := append([]string{"-js", "-sd", "/data"}, o.Args...)
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithCmd(args...),
		testcontainers.WithExposedPorts("4222/tcp"),
		testcontainers.WithWaitStrategy(wait.ForLog("Server is ready").WithStartupTimeout(60 * time.Second)),
	}
	if o.Name != "" {
		opts = append(opts, testcontainers.WithName(o.Name))
	}
	for path, content := range o.Files {
		opts = append(opts, testcontainers.WithFiles(testcontainers.ContainerFile{
			Reader: strings.NewReader(content), ContainerFilePath: path, FileMode: 0o644,
		}))
	}
	for _, n := range o.Networks {
		opts = append(opts, withNetwork(n, o.Aliases[n]))
	}
	c, err := testcontainers.Run(ctx, image, opts...)
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("starting nats container: %v", err)
	}
	ep, err := c.PortEndpoint(ctx, "4222/tcp", "nats")
	if err != nil {
		t.Fatalf("nats container endpoint: %v", err)
	}
	return &NATS{Container: c, URL: ep}
}

// withNetwork attaches a container to an existing network under the given aliases.
func withNetwork(name string, aliases []string) testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error {
		req.Networks = append(req.Networks, name)
		if req.NetworkAliases == nil {
			req.NetworkAliases = map[string][]string{}
		}
		req.NetworkAliases[name] = aliases
		return nil
	}
}
