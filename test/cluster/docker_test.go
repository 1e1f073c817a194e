package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/psgw/psgw/test/dockertest"
)

// env is the cluster the cases share: three NATS nodes, the simulator and two psgw
// replicas on a private network, every name carrying a random prefix.
type env struct {
	t      *testing.T
	prefix string
	nw     string
	psgw   string // image tags
	nats   string
	// replicas are the psgw containers by name; their published ports are read afresh
	// after each restart (a restart publishes new ones).
	replicas []string
	sim      string
	// sql is the incident database the replicas poll (sqlpoll).
	sql *sqlSource
}

// docker runs the docker CLI and returns its trimmed output, failing the test on an error.
func (e *env) docker(args ...string) string {
	e.t.Helper()
	out, err := e.dockerErr(args...)
	if err != nil {
		e.t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

func (e *env) dockerErr(args ...string) (string, error) { return dockertest.Docker(args...) }

func startEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, psgw: dockertest.PsgwImage(t), nats: dockertest.NATSClusterImage(t)}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	e.prefix = "psgw-cluster-" + hex.EncodeToString(b)
	e.nw = e.prefix
	e.docker("network", "create", e.nw)
	t.Cleanup(e.cleanup)
	root := moduleRoot(t)
	e.sql = startSQL(t, e)
	shared, err := os.ReadFile(filepath.Join(root, "deploy/cluster/psgw.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "psgw-cluster.yaml")
	writeFile(t, conf, sqlWithCluster(shared, e.sql))
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("%s-nats-%d", e.prefix, i)
		e.docker("create", "--name", name, "--network", e.nw, "--network-alias", fmt.Sprintf("nats-%d", i),
			"-p", "127.0.0.1::8222", // monitoring, read by a diagnosis
			"-e", fmt.Sprintf("NATS_NAME=n%d", i), e.nats) // deploy/nats/cluster.conf, as compose runs it
		e.docker("start", name)
	}
	e.sim = e.prefix + "-sim"
	e.docker("run", "-d", "--name", e.sim, "--network", e.nw, "--network-alias", "lfpse-sim",
		"-p", "127.0.0.1::8090", e.psgw, "sim", "--addr", "0.0.0.0:8090")
	vol := e.prefix + "-shared"
	e.docker("volume", "create", vol)
	for _, r := range []string{"a", "b"} {
		name := e.prefix + "-psgw-" + r
		e.docker("create", "--name", name, "--network", e.nw,
			"-e", "PSGW_REPLICA=psgw-"+r, "-e", "PSGW_HTTP_ADDR=0.0.0.0:8080", "-e", "PSGW_MLLP_ADDR=0.0.0.0:2575",
			"-e", "PSGW_QUEUE_NATS_URL=nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222",
			"-e", "PSGW_QUEUE_REPLICAS=3", "-e", "PSGW_NATIONAL_BASE_URL=http://lfpse-sim:8090",
			"-e", "PSGW_NATIONAL_ALLOW_HTTP=true", "-e", "PSGW_NATIONAL_SUBSCRIPTION_KEY=psgw-demo-key",
			"-e", "PSGW_NATIONAL_BACKOFF_MAX=2s",
			"-v", vol+":/var/lib/psgw", "-p", "127.0.0.1::8080", "-p", "127.0.0.1::2575",
			e.psgw, "run", "--config", "/etc/psgw-cluster.yaml")
		e.docker("cp", conf, name+":/etc/psgw-cluster.yaml")
		e.docker("start", name)
		e.replicas = append(e.replicas, name)
	}
	for _, r := range e.replicas {
		e.waitReady(r, readyWithin)
	}
	return e
}

// cleanup removes every container, the volume and the network the env made, whatever state
// the test left them in.
func (e *env) cleanup() {
	if e.t.Failed() {
		for _, r := range e.replicas {
			out, _ := e.dockerErr("logs", r)
			var keep []string
			for _, l := range strings.Split(out, "\n") {
				if !strings.Contains(l, `"level":"info"`) && !strings.Contains(l, `"level":"debug"`) {
					keep = append(keep, l)
				}
			}
			if len(keep) > 150 {
				keep = keep[len(keep)-150:]
			}
			e.t.Logf("warnings and errors of %s (last 150):\n%s", r, strings.Join(keep, "\n"))
		}
	}
	out, _ := e.dockerErr("ps", "-aq", "--filter", "name="+e.prefix)
	if ids := strings.Fields(out); len(ids) > 0 {
		_, _ = e.dockerErr(append([]string{"rm", "-f", "-v"}, ids...)...)
	}
	_, _ = e.dockerErr("volume", "rm", "-f", e.prefix+"-shared")
	_, _ = e.dockerErr("network", "rm", e.nw)
}

// url is a container's published address for a port, as the test reaches it.
func (e *env) url(container, port string) string {
	e.t.Helper()
	addr, err := dockertest.Published(container, port)
	if err != nil {
		e.t.Fatal(err)
	}
	return "http://" + addr
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
