package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/test/dockertest"
	"github.com/psgw/psgw/test/wait"
)

// TestComposeClusterProfile brings up the compose file's cluster profile as docs/cluster.md
// says (`docker-compose --profile cluster up -d`, its images built here first): three NATS
// nodes, the simulator and two psgw replicas. An incident posted to each replica is
// delivered to the profile's simulator, once each; `down -v` removes it all however the
// test ends.
//
// Unlike TestCluster it is not gated: it passed in every run that reached it (docs/cluster.md)
// and costs about a minute, so CI brings the profile up as a trust would.
func TestComposeClusterProfile(t *testing.T) {
	dockertest.Require(t)
	http1, http2, sim := dockertest.FreePort(t), dockertest.FreePort(t), dockertest.FreePort(t)
	c := dockertest.NewCompose(t, "cluster", "PSGW_NATS_IMAGE="+dockertest.NATSClusterImage(t),
		"PSGW_CLUSTER_HTTP_PORT_1="+http1, "PSGW_CLUSTER_HTTP_PORT_2="+http2, "PSGW_CLUSTER_SIM_PORT="+sim,
		"PSGW_CLUSTER_MLLP_PORT_1="+dockertest.FreePort(t), "PSGW_CLUSTER_MLLP_PORT_2="+dockertest.FreePort(t))
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.Run("logs", "--no-color", "--timestamps")
			t.Logf("compose logs:\n%s", out)
		}
	})
	c.Must("up", "-d")
	bases := map[string]string{"psgw-1": "http://127.0.0.1:" + http1, "psgw-2": "http://127.0.0.1:" + http2}
	for _, r := range []string{"psgw-1", "psgw-2"} {
		start := time.Now()
		wait.For(t, readyWithin, r+" to answer /readyz 200", func() (bool, string) {
			code, body := get(bases[r] + "/readyz")
			return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
		})
		t.Logf("%s ready after %v", r, time.Since(start).Round(100*time.Millisecond))
	}
	ids := map[string]string{"psgw-1": "COMPOSE-0001", "psgw-2": "COMPOSE-0002"}
	for r, id := range ids {
		body, _ := json.Marshal(map[string]any{
			"source": "datix", "local_id": id, "revision": 1, "event_type": "incident",
			"occurred_at": "2025-03-14T09:30:00Z",
			"description": fmt.Sprintf("Incident %s revision 1: scheduled dose given late.", id),
			"patients":    []map[string]any{{"physical_harm": "none", "psychological_harm": "none"}},
			"location":    map[string]any{"organisation": "RRK"},
		})
		resp, err := http.Post(bases[r]+"/api/v1/incidents", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("posting %s to %s: %v", id, r, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("posting %s to %s: %s", id, r, resp.Status)
		}
	}
	// Each replica shows the whole ledger: both incidents delivered, read from both.
	for r, base := range bases {
		for _, id := range ids {
			wait.For(t, 2*time.Minute, id+" delivered, as "+r+" shows it", func() (bool, string) {
				code, body := get(base + "/api/v1/incidents/datix/" + id)
				var rec record
				_ = json.Unmarshal([]byte(body), &rec)
				return code == http.StatusOK && rec.State == "delivered" && rec.NationalID != "", fmt.Sprintf("%d %s", code, body)
			})
		}
	}
	held, err := simHolds("http://127.0.0.1:" + sim)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if held[id] != 1 {
			t.Errorf("the simulator holds %s %d times, want once (it holds %v)", id, held[id], held)
		}
	}
	if ps := c.Must("ps"); strings.Contains(ps, "Exit") {
		t.Errorf("a service of the profile exited:\n%s", ps)
	}
}

// get is a GET's status and body; 0 and the error's text when it fails.
func get(url string) (int, string) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, strings.TrimSpace(b.String())
}
