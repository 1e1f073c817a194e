package container

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/psgw/psgw/test/dockertest"
	poll "github.com/psgw/psgw/test/wait"
)

const simKey = "container-test-key-0123456789"

// TestImageRunsAsTrustITDeploysIt builds the image and runs it the way docs/deploy.md says:
// a fresh named volume, a non-root user, a read-only root file system, the health check,
// an incident delivered to a national service in another container, a restart, and a stop
// by SIGTERM.
func TestImageRunsAsTrustITDeploysIt(t *testing.T) {
	image := dockertest.PsgwImage(t)
	ctx := context.Background()

	nw, err := network.New(ctx)
	if err != nil {
		t.Fatalf("creating network: %v", err)
	}
	t.Cleanup(func() { _ = nw.Remove(context.Background()) })

	simC, err := testcontainers.Run(ctx, image,
		testcontainers.WithCmd("sim", "--addr", "0.0.0.0:8090", "--key", simKey),
		testcontainers.WithExposedPorts("8090/tcp"),
		network.WithNetwork([]string{"lfpse"}, nw),
		testcontainers.WithWaitStrategy(wait.ForHTTP("/adverse-event/fhir/metadata").WithPort("8090/tcp").
			WithHeaders(map[string]string{"Ocp-Apim-Subscription-Key": simKey}).WithStartupTimeout(60*time.Second)),
	)
	testcontainers.CleanupContainer(t, simC)
	if err != nil {
		t.Fatalf("starting simulator container: %v", err)
	}

	volume := dockertest.NewVolume(t)
	psgw, err := testcontainers.Run(ctx, image,
		testcontainers.WithCmd("run"),
		testcontainers.WithEnv(map[string]string{
			"PSGW_NATIONAL_BASE_URL":         "http://lfpse:8090",
			"PSGW_NATIONAL_ALLOW_HTTP":       "true", // a simulator on the test network, not on loopback
			"PSGW_NATIONAL_SUBSCRIPTION_KEY": simKey,
			"PSGW_LOG_LEVEL":                 "info",
		}),
		testcontainers.WithExposedPorts("8080/tcp"),
		network.WithNetwork([]string{"psgw"}, nw),
		testcontainers.WithMounts(testcontainers.VolumeMount(volume, "/var/lib/psgw")),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.ReadonlyRootfs = true }),
		testcontainers.WithWaitStrategy(wait.ForHealthCheck().WithStartupTimeout(90*time.Second)),
	)
	testcontainers.CleanupContainer(t, psgw)
	if err != nil {
		t.Fatalf("starting psgw container: %v", err)
	}

	t.Run("runs as a non-root user", func(t *testing.T) {
		out, err := exec.Command("docker", "top", psgw.GetContainerID(), "-eo", "pid,uid,comm").CombinedOutput()
		if err != nil {
			t.Fatalf("docker top: %v: %s", err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n")[1:] {
			if f := strings.Fields(line); len(f) == 3 && f[2] == "psgw" && f[1] == "0" {
				t.Fatalf("psgw runs as uid 0:\n%s", out)
			}
		}
		if !strings.Contains(string(out), "psgw") {
			t.Fatalf("no psgw process in docker top:\n%s", out)
		}
	})

	t.Run("version is stamped", func(t *testing.T) {
		code, r, err := psgw.Exec(ctx, []string{"/usr/local/bin/psgw", "version"})
		if err != nil || code != 0 {
			t.Fatalf("psgw version: code %d, %v", code, err)
		}
		b, _ := io.ReadAll(r)
		if !strings.Contains(string(b), "psgw test-") || !strings.Contains(string(b), "commit") {
			t.Fatalf("psgw version printed %q, want the stamped test version and commit", b)
		}
	})

	base := endpoint(t, psgw)
	post(t, base, "datix", "IMG-1")
	waitState(t, base, "datix", "IMG-1", "delivered")

	t.Run("a restart keeps what was stored", func(t *testing.T) {
		post(t, base, "datix", "IMG-2") // accepted just before the restart
		timeout := 30 * time.Second
		if err := psgw.Stop(ctx, &timeout); err != nil {
			t.Fatalf("stopping: %v", err)
		}
		if err := psgw.Start(ctx); err != nil {
			t.Fatalf("starting again: %v", err)
		}
		base = endpoint(t, psgw)
		waitState(t, base, "datix", "IMG-1", "delivered")
		waitState(t, base, "datix", "IMG-2", "delivered")
	})

	loaded := 0
	t.Run("SIGTERM mid-load loses nothing", func(t *testing.T) {
		// A source posts one incident after another while the engine stops the container
		// (docker stop: SIGTERM, then SIGKILL after the timeout); every one answered 202 must
		// be there after the start, delivered once.
		var (
			mu    sync.Mutex
			acked []string
		)
		count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("LOAD-%04d", i)
				if tryPost(base, "datix", id) {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		}()
		poll.Until(t, 60*time.Second, "the load to be running before the signal", func() bool { return count() >= 20 })
		timeout := 30 * time.Second
		if err := psgw.Stop(ctx, &timeout); err != nil {
			t.Fatalf("docker stop: %v", err)
		}
		close(stop)
		<-done
		st, err := psgw.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.ExitCode != 0 {
			t.Errorf("exit code %d after SIGTERM mid-load, want 0 (stopped within the grace period)", st.ExitCode)
		}
		if len(acked) == 0 {
			t.Fatal("no incident acknowledged before the stop: the load did not run")
		}
		if err := psgw.Start(ctx); err != nil {
			t.Fatalf("starting again: %v", err)
		}
		base = endpoint(t, psgw)
		for _, id := range acked {
			waitState(t, base, "datix", id, "delivered")
		}
		loaded = len(acked)
		t.Logf("%d incidents acknowledged while the container was being stopped, all delivered after the start", loaded)
	})

	t.Run("SIGTERM stops it cleanly", func(t *testing.T) {
		if out, err := exec.Command("docker", "kill", "--signal", "SIGTERM", psgw.GetContainerID()).CombinedOutput(); err != nil {
			t.Fatalf("docker kill: %v: %s", err, out)
		}
		deadline := time.Now().Add(45 * time.Second)
		for {
			st, err := psgw.State(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !st.Running {
				if st.ExitCode != 0 {
					t.Fatalf("exit code %d after SIGTERM, want 0", st.ExitCode)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("still running 45 s after SIGTERM")
			}
			time.Sleep(200 * time.Millisecond)
		}
		logs := containerLogs(t, psgw)
		if !strings.Contains(logs, `"message":"stopped"`) {
			t.Fatalf("no \"stopped\" line in the log after SIGTERM:\n%s", tail(logs, 20))
		}
	})

	// The national service holds each incident once.
	if n := simCount(t, endpointPort(t, simC, "8090/tcp")); n != 2+loaded {
		t.Fatalf("simulator holds %d events, want %d (each incident once)", n, 2+loaded)
	}
}

func endpoint(t *testing.T, c testcontainers.Container) string {
	t.Helper()
	return endpointPort(t, c, "8080/tcp")
}

func endpointPort(t *testing.T, c testcontainers.Container, port string) string {
	t.Helper()
	ep, err := c.PortEndpoint(context.Background(), port, "http")
	if err != nil {
		t.Fatalf("endpoint %s: %v", port, err)
	}
	return ep
}

func post(t *testing.T, base, source, localID string) {
	t.Helper()
	body := fmt.Sprintf(`{"source":%q,"local_id":%q,"event_type":"incident","occurred_at":"2025-03-14T09:30:00Z",
		"description":"Dose given late.","patients":[{"physical_harm":"none","psychological_harm":"none"}],
		"location":{"organisation":"RRK"}}`, source, localID)
	resp, err := http.Post(base+"/api/v1/incidents", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("posting %s: %v", localID, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("posting %s: %s: %s", localID, resp.Status, b)
	}
}

// tryPost posts an incident and reports whether it was acknowledged (202).
func tryPost(base, source, localID string) bool {
	body := fmt.Sprintf(`{"source":%q,"local_id":%q,"event_type":"incident","occurred_at":"2025-03-14T09:30:00Z",
		"description":"Dose given late.","patients":[{"physical_harm":"none","psychological_harm":"none"}],
		"location":{"organisation":"RRK"}}`, source, localID)
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(base+"/api/v1/incidents", "application/json", strings.NewReader(body))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusAccepted
}

func waitState(t *testing.T, base, source, localID, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/api/v1/incidents/" + source + "/" + localID)
		if err == nil {
			var rec struct {
				State string `json:"state"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&rec)
			resp.Body.Close()
			last = rec.State
			if rec.State == want {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s/%s: state %q after 60 s, want %q", source, localID, last, want)
}

func simCount(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/_sim/events")
	if err != nil {
		t.Fatalf("reading simulator events: %v", err)
	}
	defer resp.Body.Close()
	var events []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&events); err != nil {
		t.Fatalf("simulator events: %v", err)
	}
	return len(events)
}

func containerLogs(t *testing.T, c testcontainers.Container) string {
	t.Helper()
	r, err := c.Logs(context.Background())
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	defer r.Close()
	var b bytes.Buffer
	_, _ = io.Copy(&b, r)
	return b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
