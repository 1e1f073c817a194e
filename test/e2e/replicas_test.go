package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/gwtest"
	"github.com/psgw/psgw/test/natstest"
	"github.com/psgw/psgw/test/wait"
)

// replicaHarness is a gateway named name on the cluster at url, at replicas 3, delivering
// to the shared simulator at simURL.
func replicaHarness(t *testing.T, url, simURL, name string) *harness {
	t.Helper()
	h := &harness{t: t, dataDir: t.TempDir()}
	cfg := config.Default()
	cfg.DataDir = h.dataDir
	cfg.Replica = name
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config).Addr = ""
	cfg.Queue.NATSURL = url
	cfg.Queue.Replicas = 3
	cfg.National.BaseURL = simURL
	cfg.National.SubscriptionKey = simKey
	cfg.National.BackoffInitial = 20 * time.Millisecond
	cfg.National.BackoffMax = 200 * time.Millisecond
	cfg.National.Timeout = 5 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	h.Gateway = gwtest.New(t, cfg, zerolog.InfoLevel) // stopped when the test ends
	h.Start()
	return h
}

// TestTwoReplicasOneCluster: two gateways on one three-node cluster, every incident sent to
// one and its amendment to the other at once, so that both gateways hold messages of one
// incident together. Each incident is created nationally once and ends delivered in its
// amended revision, none unknown or flagged a possible duplicate; each gateway's API shows
// the whole ledger, and the history says which replica did what.
func TestTwoReplicasOneCluster(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	s, err := gateway.NewSimulator([]string{simKey}, sim.Faults{Latency: 20 * time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(s.ServeHTTP))
	t.Cleanup(srv.Close)
	a := replicaHarness(t, c.NodeURL(0)+","+c.NodeURL(1), srv.URL, "psgw-a")
	b := replicaHarness(t, c.NodeURL(1)+","+c.NodeURL(2), srv.URL, "psgw-b")

	const total = 150
	var wg sync.WaitGroup
	for i := range total {
		id := fmt.Sprintf("INC-%04d", i)
		first, second := a, b
		if i%2 == 1 {
			first, second = b, a
		}
		if r := first.post(incident(id, 1, describe(id, 1))); r.Status != 202 {
			t.Fatalf("POST %s: got %d (%s), want 202", id, r.Status, r.Error)
		}
		wg.Go(func() {
			if r := second.post(incident(id, 2, describe(id, 2))); r.Status != 202 {
				t.Errorf("amend %s: got %d (%s), want 202", id, r.Status, r.Error)
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, h := range []*harness{a, b} {
		wait.For(t, 90*time.Second, "every incident delivered in revision 2, as each replica shows it", func() (bool, string) {
			for i := range total {
				id := fmt.Sprintf("INC-%04d", i)
				rec, code := h.record("datix", id)
				if code != 200 || rec.State != "delivered" || rec.Revision != 2 {
					return false, fmt.Sprintf("%s on %s: HTTP %d state=%s revision=%d last_error=%q history %+v", id, h.Cfg.Replica, code, rec.State, rec.Revision, rec.LastError, rec.History)
				}
			}
			return true, ""
		})
	}
	for i := range total {
		rec, _ := a.record("datix", fmt.Sprintf("INC-%04d", i))
		if rec.PossibleDuplicate {
			t.Errorf("%s flagged a possible duplicate", rec.LocalID)
		}
		for _, he := range rec.History {
			seen[he.Replica] = true
			if he.State == "unknown" {
				t.Errorf("%s was unknown on the way: %s", rec.LocalID, he.Detail)
			}
		}
	}
	st := s.Stats()
	if st.Creates != total || st.Events != total {
		t.Errorf("the national service holds %d events from %d creates, want %d from %d", st.Events, st.Creates, total, total)
	}
	if !seen["psgw-a"] || !seen["psgw-b"] {
		t.Errorf("history names replicas %v, want both psgw-a and psgw-b", seen)
	}
	t.Logf("creates %d, updates %d, requests %d", st.Creates, st.Updates, st.Requests)
}
