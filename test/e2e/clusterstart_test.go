package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/ops"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/gwtest"
	"github.com/psgw/psgw/test/natstest"
	"github.com/psgw/psgw/test/wait"
)

// clusterConfig is a gateway on the cluster at url at replicas 3, with the push API and an
// MLLP listener on free loopback ports, delivering to the simulator at simURL.
func clusterConfig(t *testing.T, url, simURL string) config.Config {
	t.Helper()
	cfg := gwtest.Config(t.TempDir(), simURL, simKey)
	cfg.Replica = "psgw-a"
	cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config).Addr = "127.0.0.1:0"
	cfg.Queue.NATSURL = url
	cfg.Queue.Replicas = 3
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// newSim is a national-service simulator on a loopback port, counting every create.
func newSim(t *testing.T) (*sim.Simulator, string) {
	t.Helper()
	s, err := gateway.NewSimulator([]string{simKey}, sim.Faults{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(s.ServeHTTP))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// get fetches base+path and returns the status and body; a request that does not finish
// within 30 s fails the test (a page that hangs while the store is down).
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// readiness is /readyz's answer.
func readiness(t *testing.T, base string) (int, ops.Readiness) {
	t.Helper()
	code, body := get(t, base+"/readyz")
	var rd ops.Readiness
	_ = json.Unmarshal([]byte(body), &rd)
	return code, rd
}

// adt is an ADT message with control id control, of an invented patient.
func adt(control string) []byte {
	return mllptest.ADT("A08", control, time.Now(), mllptest.Patient{NHS: "9434765919", Local: "RGT1234567", DOB: "19650412", Sex: "F"})
}

// TestClusterDownAtStartAnswers503AndAE: a gateway started while every node of its
// cluster is down opens its listeners at once and answers for the store it waits for: the
// push API 503 with Retry-After naming "server unreachable", MLLP one AE per frame naming it
// (never an AA), /healthz 200, /readyz 503 naming it, the status page and API saying the
// gateway waits for the store. Once the nodes start, the gateway starts by itself on the same
// listeners: the source's retry gets 202, the same MLLP connection's resend AA, and the
// incident is delivered once.
func TestClusterDownAtStartAnswers503AndAE(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	url := c.URL()
	c.Shutdown()
	s, simURL := newSim(t)
	cfg := clusterConfig(t, url, simURL)

	var base, mllpAddr string
	listening := make(chan struct{})
	type started struct {
		gw  *gateway.Gateway
		err error
	}
	done := make(chan started, 1)
	go func() {
		gw, err := gateway.Start(t.Context(), cfg, gateway.Options{Logger: gwtest.New(t, cfg, zerolog.InfoLevel).Logger(),
			Listening: func(g *gateway.Gateway) {
				base = "http://" + g.HTTPAddr()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				mllpAddr = g.AdapterAddr(ctx, hl7mllp.Kind)
				close(listening)
			}})
		done <- started{gw, err}
	}()
	select {
	case <-listening:
	case st := <-done:
		t.Fatalf("Start returned (%v) with every node down, want it to wait with its listeners open", st.err)
	case <-time.After(30 * time.Second):
		t.Fatal("the listeners did not open within 30 s")
	}
	var gw *gateway.Gateway
	t.Cleanup(func() {
		if gw != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			gw.Stop(ctx)
		}
	})
	if mllpAddr == "" {
		t.Fatal("the MLLP listener is not open while the store is awaited")
	}
	h := &harness{t: t, Gateway: &gwtest.Gateway{Base: base}}

	in := incident("DOWN-1", 1, describe("DOWN-1", 1))
	wait.For(t, 20*time.Second, "the push API answering 503 naming "+queue.CauseUnreachable, func() (bool, string) {
		r := h.post(in)
		if r.Status != http.StatusServiceUnavailable {
			t.Fatalf("POST while the store is awaited: got %d (%s), want 503", r.Status, r.Error)
		}
		if r.RetryAfter == "" {
			t.Fatalf("503 without Retry-After: %+v", r)
		}
		return strings.Contains(r.Error, queue.CauseUnreachable), r.Error
	})
	if code, body := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while the store is awaited: got %d (%s), want 200", code, body)
	}
	code, rd := readiness(t, base)
	if code != http.StatusServiceUnavailable || rd.Ready || !strings.Contains(strings.Join(rd.Reasons, "; "), queue.CauseUnreachable) {
		t.Errorf("/readyz while the store is awaited: got %d %+v, want 503 naming %q", code, rd, queue.CauseUnreachable)
	}
	if code, body := get(t, base+"/api/v1/status"); code != http.StatusOK || !strings.Contains(body, "Waiting for the store: "+queue.CauseUnreachable) {
		t.Errorf("/api/v1/status while the store is awaited: got %d %s, want 200 saying it waits for the store", code, body)
	}
	if code, body := get(t, base+"/"); code != http.StatusOK || !strings.Contains(body, "Waiting for the store: "+queue.CauseUnreachable) {
		t.Errorf("status page while the store is awaited: got %d, want 200 saying it waits for the store; body %.300s", code, body)
	}
	if code, body := get(t, base+"/api/v1/incidents/datix/DOWN-1"); code != http.StatusServiceUnavailable {
		t.Errorf("an incident's record while the store is awaited: got %d %s, want 503", code, body)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()
	mc, err := mllptest.Dial(ctx, mllpAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	for _, control := range []string{"WAIT-1", "WAIT-2"} {
		ack, err := mc.Send(adt(control))
		if err != nil {
			t.Fatalf("MLLP %s while the store is awaited: %v", control, err)
		}
		if ack.Code != "AE" || ack.Control != control || !strings.Contains(ack.Text, queue.CauseUnreachable) {
			t.Errorf("MLLP %s while the store is awaited: got %s for %q (%q), want AE for it naming %q", control, ack.Code, ack.Control, ack.Text, queue.CauseUnreachable)
		}
	}

	for i := range 3 {
		c.Start(i)
	}
	select {
	case st := <-done:
		if st.err != nil {
			t.Fatalf("Start after the nodes started: %v", st.err)
		}
		gw = st.gw
	case <-time.After(50 * time.Second):
		t.Fatal("the gateway did not start within 50 s of its cluster")
	}
	if gw.HTTPAddr() != strings.TrimPrefix(base, "http://") {
		t.Errorf("the API moved from %s to %s", base, gw.HTTPAddr())
	}
	// The source retries as told: the same incident, the same listener.
	if r := h.post(in); r.Status != http.StatusAccepted {
		t.Fatalf("the retry once the store is there: got %d (%s), want 202", r.Status, r.Error)
	}
	// The EPR resends on the connection it kept.
	ack, err := mc.Send(adt("WAIT-1"))
	if err != nil || ack.Code != "AA" || ack.Control != "WAIT-1" {
		t.Errorf("MLLP resend once the store is there, on the same connection: got %+v (%v), want AA for WAIT-1", ack, err)
	}
	if code, rd := readiness(t, base); code != http.StatusOK {
		t.Errorf("/readyz once started: got %d %+v, want 200", code, rd)
	}
	wait.For(t, 30*time.Second, "DOWN-1 delivered", func() (bool, string) {
		rec, code := h.record("datix", "DOWN-1")
		return code == 200 && rec.State == "delivered", fmt.Sprintf("HTTP %d %s %s", code, rec.State, rec.LastError)
	})
	if st := s.Stats(); st.Creates != 1 || st.Events != 1 {
		t.Errorf("the national service holds %d events from %d creates, want 1 from 1", st.Events, st.Creates)
	}
}

// TestClusterQuorumLostAnswers503AndRecovers: a running gateway whose cluster loses two of
// its three nodes refuses records, 503 and AE naming "no JetStream quorum" (a connection to
// a node that went may first read "server unreachable" until the client moves to the one
// left), /readyz 503 and the status page says so within a request's time; with the third
// node gone too, 503 naming "server unreachable" and the page still renders. With the nodes
// back it recovers by itself, and every incident answered 202, before, after, or retried
// after a 503, is delivered exactly once.
func TestClusterQuorumLostAnswers503AndRecovers(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	s, simURL := newSim(t)
	h := &harness{t: t}
	h.Gateway = gwtest.New(t, clusterConfig(t, c.URL(), simURL), zerolog.InfoLevel)
	h.Start()
	ctx, cancel := context.WithTimeout(t.Context(), 55*time.Second)
	defer cancel()
	mc, err := mllptest.Dial(ctx, h.GW.AdapterAddr(ctx, hl7mllp.Kind), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()

	accepted := map[string]bool{}
	post := func(id string) postResult {
		r := h.post(incident(id, 1, describe(id, 1)))
		if r.Status == http.StatusAccepted {
			accepted[id] = true
		}
		return r
	}
	for i := range 10 {
		if r := post(fmt.Sprintf("Q-%03d", i)); r.Status != http.StatusAccepted {
			t.Fatalf("POST before the fault: got %d (%s)", r.Status, r.Error)
		}
	}
	if ack, err := mc.Send(adt("Q-BEFORE")); err != nil || ack.Code != "AA" {
		t.Fatalf("MLLP before the fault: %+v %v", ack, err)
	}

	c.Stop(1)
	c.Stop(2)
	var refused []string
	n := 10
	wait.For(t, 30*time.Second, "ingest refused naming "+queue.CauseNoQuorum, func() (bool, string) {
		id := fmt.Sprintf("Q-%03d", n)
		n++
		r := post(id)
		if r.Status == http.StatusAccepted {
			return false, id + " accepted (before the fault took hold)"
		}
		if r.Status != http.StatusServiceUnavailable || r.RetryAfter == "" {
			t.Fatalf("POST %s without quorum: got %d (%s) Retry-After %q, want 503 with Retry-After", id, r.Status, r.Error, r.RetryAfter)
		}
		refused = append(refused, id)
		return strings.Contains(r.Error, queue.CauseNoQuorum), r.Error
	})
	wait.For(t, 30*time.Second, "MLLP answered AE naming "+queue.CauseNoQuorum, func() (bool, string) {
		ack, err := mc.Send(adt("Q-DURING"))
		if err != nil {
			t.Fatalf("MLLP without quorum: %v", err)
		}
		if ack.Code != "AE" || ack.Control != "Q-DURING" {
			t.Fatalf("MLLP without quorum: got %s for %q (%q), want AE", ack.Code, ack.Control, ack.Text)
		}
		return strings.Contains(ack.Text, queue.CauseNoQuorum), ack.Text
	})
	// The node left may answer for JetStream as leader until its election timeout tells it
	// it is alone (queue.TestQuorumLossAndRecovery), while writes already fail: readiness
	// names the cause from then on.
	wait.For(t, 30*time.Second, "/readyz 503 naming "+queue.CauseNoQuorum, func() (bool, string) {
		code, rd := readiness(t, h.Base)
		return code == http.StatusServiceUnavailable && strings.Contains(strings.Join(rd.Reasons, "; "), queue.CauseNoQuorum), fmt.Sprintf("%d %+v", code, rd)
	})
	start := time.Now()
	code, body := get(t, h.Base+"/")
	t.Logf("status page without quorum answered %d in %s", code, time.Since(start).Round(time.Millisecond))
	if code != http.StatusOK || !strings.Contains(body, queue.CauseNoQuorum) {
		t.Errorf("status page without quorum: got %d, want 200 naming %q; body %.300s", code, queue.CauseNoQuorum, body)
	}

	// The last node goes too: no server answers at all.
	c.Stop(0)
	wait.For(t, 30*time.Second, "ingest refused naming "+queue.CauseUnreachable, func() (bool, string) {
		id := fmt.Sprintf("Q-%03d", n)
		n++
		r := post(id)
		if r.Status != http.StatusServiceUnavailable || r.RetryAfter == "" {
			t.Fatalf("POST %s with every node down: got %d (%s) Retry-After %q, want 503 with Retry-After", id, r.Status, r.Error, r.RetryAfter)
		}
		refused = append(refused, id)
		return strings.Contains(r.Error, queue.CauseUnreachable), r.Error
	})
	start = time.Now()
	code, body = get(t, h.Base+"/")
	t.Logf("status page with every node down answered %d in %s", code, time.Since(start).Round(time.Millisecond))
	if code != http.StatusOK || !strings.Contains(body, queue.CauseUnreachable) {
		t.Errorf("status page with every node down: got %d, want 200 naming %q; body %.300s", code, queue.CauseUnreachable, body)
	}

	c.Start(0)
	c.Start(1)
	c.Start(2)
	// The source retries each refused incident as told, and sends new ones.
	wait.For(t, 45*time.Second, "ingest accepting again", func() (bool, string) {
		r := post(refused[0])
		return r.Status == http.StatusAccepted, fmt.Sprintf("%d %s", r.Status, r.Error)
	})
	for _, id := range refused[1:] {
		if r := post(id); r.Status != http.StatusAccepted {
			t.Errorf("retry of %s after recovery: got %d (%s), want 202", id, r.Status, r.Error)
		}
	}
	for i := range 10 {
		if r := post(fmt.Sprintf("Q-A%02d", i)); r.Status != http.StatusAccepted {
			t.Errorf("POST after recovery: got %d (%s)", r.Status, r.Error)
		}
	}
	if ack, err := mc.Send(adt("Q-DURING")); err != nil || ack.Code != "AA" {
		t.Errorf("MLLP resend after recovery: got %+v %v, want AA", ack, err)
	}
	// A stage that failed on the store (the patients stage reading its bucket) is ready again
	// at its next restart.
	wait.For(t, 30*time.Second, "/readyz 200 after recovery", func() (bool, string) {
		code, rd := readiness(t, h.Base)
		return code == http.StatusOK, fmt.Sprintf("%d %+v", code, rd)
	})
	wait.For(t, 45*time.Second, "every accepted incident delivered", func() (bool, string) {
		for id := range accepted {
			rec, code := h.record("datix", id)
			if code != 200 || rec.State != "delivered" {
				return false, fmt.Sprintf("%s: HTTP %d %s %s", id, code, rec.State, rec.LastError)
			}
		}
		return true, ""
	})
	if st := s.Stats(); st.Creates != len(accepted) || st.Events != len(accepted) {
		t.Errorf("the national service holds %d events from %d creates, want %d from %d (each accepted incident once)", st.Events, st.Creates, len(accepted), len(accepted))
	}
	t.Logf("%d incidents accepted, %d refused during the fault and accepted on retry", len(accepted), len(refused))
}
