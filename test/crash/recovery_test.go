package crash

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/sim"

	"github.com/psgw/psgw/test/wait"
)

// TestRecoveryAfterKillWithSendsInFlight: psgw is SIGKILLed while eight POSTs hang at a
// national service that stored them and answers too late (store-then-slow), with the
// default national.timeout (40 s) and more incidents queued behind them. After the restart,
// the incidents that were in flight are settled (unknown: the service may hold them, and it
// does) and the queued ones delivered within 15 s (issue 13: they sat in delivering for about
// two minutes, the outbox consumer's AckWait of 3 × national.timeout + 30 s).
func TestRecoveryAfterKillWithSendsInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	s, err := gateway.NewSimulator([]string{key}, sim.Faults{StoreThenSlowRate: 1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(s)
	defer simSrv.Close()
	g := newGatewayProc(t, simSrv.URL) // national.timeout left at its default, 40 s

	g.mustStart()
	defer g.stop()

	const inFlight, queued = 8, 12 // national.concurrency is 8
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(id string) {
		resp, err := client.Post("http://"+g.addr+"/api/v1/incidents", "application/json", bytes.NewReader(incident(id, 1)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: got %d", id, resp.StatusCode)
		}
	}
	state := func(id string) string {
		resp, err := client.Get("http://" + g.addr + "/api/v1/incidents/datix/" + id)
		if err != nil {
			return "unreachable"
		}
		defer resp.Body.Close()
		var rec record
		_ = json.NewDecoder(resp.Body).Decode(&rec)
		return rec.State
	}
	ids := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s-%02d", prefix, i))
		}
		return out
	}
	for _, id := range ids("FLY", inFlight) {
		post(id)
	}
	wait.For(t, 30*time.Second, "eight POSTs in flight at the national service", func() (bool, string) {
		n := 0
		for _, id := range ids("FLY", inFlight) {
			if state(id) == "delivering" {
				n++
			}
		}
		return n == inFlight && s.Stats().Creates == inFlight, fmt.Sprintf("%d delivering, %d stored", n, s.Stats().Creates)
	})
	for _, id := range ids("WAIT", queued) {
		post(id) // queued behind the eight: every worker is busy
	}

	g.kill()
	killedAt := time.Now()
	s.SetFaults(sim.Faults{}) // the service is well again: only the gateway's recovery is measured
	g.mustStart()
	restartedAt := time.Now()
	var settledAt time.Time
	wait.For(t, 60*time.Second, "every incident settled after the restart", func() (bool, string) {
		for _, id := range ids("FLY", inFlight) {
			if st := state(id); st != "unknown" && st != "delivered" {
				return false, id + " " + st
			}
		}
		for _, id := range ids("WAIT", queued) {
			if st := state(id); st != "delivered" {
				return false, id + " " + st
			}
		}
		settledAt = time.Now()
		return true, ""
	})
	fromRestart, fromKill := settledAt.Sub(restartedAt), settledAt.Sub(killedAt)
	fmt.Printf("recovery after SIGKILL with %d POSTs in flight (national.timeout 40s): settled %.1f s after the restart (%.1f s after the kill; the restart took %.1f s)\n",
		inFlight, fromRestart.Seconds(), fromKill.Seconds(), restartedAt.Sub(killedAt).Seconds())
	if fromRestart > 15*time.Second {
		t.Errorf("settled %s after the restart, want at most 15 s", fromRestart.Round(100*time.Millisecond))
	}
	for _, id := range ids("FLY", inFlight) {
		if st := state(id); st != "unknown" {
			t.Errorf("%s: %s, want unknown (its POST was stored and never answered)", id, st)
		}
	}
	if c := s.Stats().Creates; c != inFlight+queued {
		t.Errorf("%d creates at the national service, want %d (one per incident)", c, inFlight+queued)
	}
}
