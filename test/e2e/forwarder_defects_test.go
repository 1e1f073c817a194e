package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/httppush"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/wait"
)

// frontedHarness puts a test-controlled front before the harness's simulator: front sees
// every request to the national service first and may answer it itself.
func frontedHarness(t *testing.T, front func(w http.ResponseWriter, r *http.Request, body string) bool, mutate func(*config.Config)) *harness {
	t.Helper()
	var target atomic.Pointer[sim.Simulator]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if front(w, r, string(b)) {
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		target.Load().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	h := newHarness(t, func(c *config.Config) {
		c.National.BaseURL = srv.URL
		if mutate != nil {
			mutate(c)
		}
	})
	target.Store(h.sim)
	return h
}

// TestRevertAfterAmbiguousPUTIsSent: revision 1 (text A) is delivered; revision 2 (text B) is
// PUT and stored but its answer lost, so the national service may hold B; revision 3 goes
// back to text A. A payload equal to the last one delivered is normally not sent again, but
// here the national service may hold B, so revision 3 must be PUT and the service must end
// up holding A.
func TestRevertAfterAmbiguousPUTIsSent(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.National.BackoffInitial = 300 * time.Millisecond
		c.National.BackoffMax = 300 * time.Millisecond
	})
	textA, textB := "Incident REV-1: dose given late (A).", "Incident REV-1: dose omitted (B)."
	if r := h.post(incident("REV-1", 1, textA)); r.Status != 202 {
		t.Fatalf("r1: got %d", r.Status)
	}
	wait.For(t, 10*time.Second, "r1 delivered", func() (bool, string) {
		rec, _ := h.record("datix", "REV-1")
		return rec.State == "delivered", string(rec.State)
	})
	h.sim.SetFaults(sim.Faults{LostResponseRate: 1})
	if r := h.post(incident("REV-1", 2, textB)); r.Status != 202 {
		t.Fatalf("r2: got %d", r.Status)
	}
	wait.For(t, 10*time.Second, "r2's PUT stored with its answer lost", func() (bool, string) {
		evs := h.sim.Events()
		return len(evs) == 1 && strings.Contains(string(evs[0].Resource), "(B)"), fmt.Sprint(h.sim.Stats())
	})
	if r := h.post(incident("REV-1", 3, textA)); r.Status != 202 {
		t.Fatalf("r3: got %d", r.Status)
	}
	wait.For(t, 10*time.Second, "r3 taken up", func() (bool, string) {
		rec, _ := h.record("datix", "REV-1")
		return rec.Revision == 3 && rec.State != "queued", fmt.Sprintf("%s r%d", rec.State, rec.Revision)
	})
	h.sim.SetFaults(sim.Faults{})
	wait.For(t, 20*time.Second, "r3 delivered", func() (bool, string) {
		rec, _ := h.record("datix", "REV-1")
		return rec.State == "delivered" && rec.Revision == 3, fmt.Sprintf("%s r%d %s", rec.State, rec.Revision, historyText(rec.History))
	})
	evs := h.sim.Events()
	if len(evs) != 1 {
		t.Fatalf("got %d national events, want 1", len(evs))
	}
	if !strings.Contains(string(evs[0].Resource), "(A)") {
		t.Errorf("the national service holds %s, want revision 3's text (A)", evs[0].Resource)
	}
}

// TestSlowIncidentHoldsUpOnlyItself: sends for three incidents hang at the national service;
// every other incident is still delivered meanwhile.
func TestSlowIncidentHoldsUpOnlyItself(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	h := frontedHarness(t, func(w http.ResponseWriter, r *http.Request, body string) bool {
		if strings.Contains(body, "SLOW") {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		return false
	}, func(c *config.Config) {
		// Long enough that the hanging sends do not time out while the others are checked.
		c.National.Timeout = 2 * time.Minute
	})
	for i := range 3 {
		id := fmt.Sprintf("SLOW-%d", i)
		if r := h.post(incident(id, 1, "Incident "+id+": SLOW send.")); r.Status != 202 {
			t.Fatalf("%s: got %d", id, r.Status)
		}
	}
	const n = 40
	for i := range n {
		id := fmt.Sprintf("FAST-%02d", i)
		if r := h.post(incident(id, 1, describe(id, 1))); r.Status != 202 {
			t.Fatalf("%s: got %d", id, r.Status)
		}
	}
	wait.For(t, 60*time.Second, "every other incident delivered while three sends hang", func() (bool, string) {
		for i := range n {
			id := fmt.Sprintf("FAST-%02d", i)
			if rec, _ := h.record("datix", id); rec.State != "delivered" {
				return false, id + ": " + string(rec.State)
			}
		}
		return true, ""
	})
	once.Do(func() { close(release) })
	wait.For(t, 30*time.Second, "the slow incidents delivered once released", func() (bool, string) {
		for i := range 3 {
			id := fmt.Sprintf("SLOW-%d", i)
			if rec, _ := h.record("datix", id); rec.State != "delivered" {
				return false, id + ": " + string(rec.State)
			}
		}
		return true, ""
	})
}

// TestAuthRefusedOnlyForWritesBurnsNothing: the key works for the metadata probe but every
// POST is refused with 403, so delivery pauses and resumes again and again. A message waiting
// out those pauses must not spend its attempts or its JetStream deliveries: after far more
// pause cycles than the delivery limit allows, the incident is still waiting, not failed, and
// it is delivered once once writes are accepted.
func TestAuthRefusedOnlyForWritesBurnsNothing(t *testing.T) {
	var refuse atomic.Bool
	refuse.Store(true)
	var refused atomic.Int64
	h := frontedHarness(t, func(w http.ResponseWriter, r *http.Request, body string) bool {
		if refuse.Load() && r.Method == http.MethodPost {
			refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"statusCode": 403, "message": "Out of call volume quota."}`)
			return true
		}
		return false
	}, func(c *config.Config) {
		c.National.AuthProbeInterval = 20 * time.Millisecond
		c.National.MaxAttempts = 2 // JetStream's limit is then 27 deliveries
	})
	if r := h.post(incident("AUTHW-1", 1, describe("AUTHW-1", 1))); r.Status != 202 {
		t.Fatalf("got %d", r.Status)
	}
	wait.For(t, 60*time.Second, "60 refused POSTs", func() (bool, string) {
		return refused.Load() >= 60, fmt.Sprint(refused.Load())
	})
	rec, _ := h.record("datix", "AUTHW-1")
	if rec.State == "failed" || rec.Attempts > 1 {
		t.Fatalf("after %d refused POSTs: state %s with %d attempts, want waiting with no attempt spent", refused.Load(), rec.State, rec.Attempts)
	}
	refuse.Store(false)
	wait.For(t, 20*time.Second, "delivered once writes are accepted", func() (bool, string) {
		rec, _ := h.record("datix", "AUTHW-1")
		return rec.State == "delivered", fmt.Sprintf("%s %s", rec.State, historyText(rec.History))
	})
	if st := h.sim.Stats(); st.Creates != 1 {
		t.Errorf("got %d creates, want 1", st.Creates)
	}
}

// TestDeletedConsumersAreCreatedAgain: an operator deletes the mapper's and the forwarder's
// durable consumers from the running gateway (nats CLI, a cluster mishap). Fetching from a
// deleted consumer can never work again, so each stage returns, is started again by the
// gateway, and creates its consumer anew: incidents are still delivered.
func TestDeletedConsumersAreCreatedAgain(t *testing.T) {
	h := newHarness(t, nil)
	if r := h.post(incident("CONS-1", 1, describe("CONS-1", 1))); r.Status != 202 {
		t.Fatalf("got %d", r.Status)
	}
	wait.For(t, 10*time.Second, "CONS-1 delivered", func() (bool, string) {
		rec, _ := h.record("datix", "CONS-1")
		return rec.State == "delivered", string(rec.State)
	})
	js := h.GW.Queue.JetStream()
	ctx := t.Context()
	for _, c := range []struct{ stream, name string }{{queue.RawStream, "mapper"}, {queue.OutboxStream, "forwarder"}} {
		if err := js.DeleteConsumer(ctx, c.stream, c.name); err != nil {
			t.Fatalf("deleting %s: %v", c.name, err)
		}
	}
	if r := h.post(incident("CONS-2", 1, describe("CONS-2", 1))); r.Status != 202 {
		t.Fatalf("got %d", r.Status)
	}
	wait.For(t, 30*time.Second, "CONS-2 delivered through consumers created again", func() (bool, string) {
		rec, _ := h.record("datix", "CONS-2")
		return rec.State == "delivered", string(rec.State)
	})
	if st := h.sim.Stats(); st.Creates != 2 {
		t.Errorf("got %d creates, want 2", st.Creates)
	}
}

// TestBodyAtTheLimitIsStored: a body of exactly http.max_body_bytes (1 MiB by default) is
// accepted by the ingest API, so the queue must take it too: NATS's own default limit of
// 1 MiB per message, headers included, would refuse it as if storage were merely down (503),
// and the source would retry for ever.
func TestBodyAtTheLimitIsStored(t *testing.T) {
	h := newHarness(t, nil)
	in := incident("BIG-1", 1, describe("BIG-1", 1))
	in["padding"] = ""
	b, _ := json.Marshal(in)
	limit := h.Cfg.Adapters[httppush.Section].(*httppush.Config).MaxBodyBytes
	in["padding"] = strings.Repeat("x", int(limit)-len(b))
	if b, _ = json.Marshal(in); int64(len(b)) != limit {
		t.Fatalf("built a body of %d bytes, want %d", len(b), limit)
	}
	if r := h.post(in); r.Status != 202 {
		t.Fatalf("a body of exactly the limit: got %d, want 202", r.Status)
	}
	wait.For(t, 10*time.Second, "BIG-1 delivered", func() (bool, string) {
		rec, _ := h.record("datix", "BIG-1")
		return rec.State == "delivered", string(rec.State) + " " + rec.LastError
	})
}

// TestReceivedRecordShowsItsRevision: between the 202 and the mapping, the delivery record is
// read from the raw stream; it must still say which revision was accepted.
func TestReceivedRecordShowsItsRevision(t *testing.T) {
	h := newHarness(t, nil)
	h.Stop()
	release := make(chan struct{})
	hook := func(name string, run func(context.Context) error) func(context.Context) error {
		if name != "mapper" {
			return run
		}
		return func(ctx context.Context) error {
			select {
			case <-release:
			case <-ctx.Done():
				return nil
			}
			return run(ctx)
		}
	}
	gw, err := gateway.Start(context.Background(), h.Cfg, gateway.Options{Logger: h.Logger(), StageHook: hook})
	if err != nil {
		t.Fatal(err)
	}
	h.GW, h.Base = gw, "http://"+gw.HTTPAddr()
	if r := h.post(incident("RCV-1", 3, describe("RCV-1", 3))); r.Status != 202 {
		t.Fatalf("got %d", r.Status)
	}
	if r := h.post(incident("RCV-2", 0, describe("RCV-2", 0))); r.Status != 202 {
		t.Fatalf("got %d", r.Status)
	}
	for id, want := range map[string]int{"RCV-1": 3, "RCV-2": 1} {
		rec, code := h.record("datix", id)
		if code != 200 || rec.State != "received" || rec.Revision != want {
			t.Errorf("%s before mapping: got %d %s r%d, want 200 received r%d", id, code, rec.State, rec.Revision, want)
		}
	}
	close(release)
	wait.For(t, 20*time.Second, "both delivered once mapping runs", func() (bool, string) {
		a, _ := h.record("datix", "RCV-1")
		b, _ := h.record("datix", "RCV-2")
		return a.State == "delivered" && b.State == "delivered", string(a.State) + " " + string(b.State)
	})
}

// TestRefusedKeyPausesAtStartStillReady: a gateway started with a key the national service
// refuses pauses delivery before any incident has been sent, and says so on the status API,
// while /readyz stays 200 (it can still accept and store); once the service takes the key,
// delivery resumes by itself.
func TestRefusedKeyPausesAtStartStillReady(t *testing.T) {
	const wrong = "a-key-the-national-service-refuses"
	h := newHarness(t, func(c *config.Config) {
		c.National.SubscriptionKey = wrong
		c.National.AuthProbeInterval = 50 * time.Millisecond
	})
	readyz := func() int {
		resp, err := http.Get(h.Base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	paused := func() bool { return strings.Contains(h.get("/api/v1/status"), `"paused":true`) }
	wait.For(t, 15*time.Second, "paused with a refused key, nothing sent", func() (bool, string) {
		return paused(), h.get("/api/v1/status")
	})
	if code := readyz(); code != 200 {
		t.Errorf("readyz with delivery paused: got %d, want 200", code)
	}
	h.sim.SetKeys(wrong)
	wait.For(t, 15*time.Second, "delivery resumed once the key is taken", func() (bool, string) {
		return !paused(), h.get("/api/v1/status")
	})
}
