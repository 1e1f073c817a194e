package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/ops"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/wait"
)

// TestReplaySkipsUnknown: psgw replay never re-POSTs an unknown incident. A single replay is
// refused with the two resolve commands to use instead; a bulk replay, even --state unknown,
// skips it, says so, replays the rest, and exits 1.
func TestReplaySkipsUnknown(t *testing.T) {
	gw, base := startDemo(t)
	post := func(id, desc string) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"source": "datix", "local_id": id, "revision": 1, "event_type": "incident",
			"occurred_at": "2025-03-14", "description": desc})
		resp, err := http.Post(base+"/api/v1/incidents", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	waitState := func(id, want string) {
		t.Helper()
		wait.For(t, 20*time.Second, id+" "+want, func() (bool, string) {
			resp, err := http.Get(base + "/api/v1/incidents/datix/" + id)
			if err != nil {
				t.Fatal(err)
			}
			var rec ops.Record
			_ = json.NewDecoder(resp.Body).Decode(&rec)
			resp.Body.Close()
			return string(rec.State) == want, "state " + string(rec.State)
		})
	}
	gw.Sim.SetFaults(sim.Faults{LostResponseRate: 1})
	post("U-1", "Medication given late.")
	waitState("U-1", "unknown")
	gw.Sim.SetFaults(sim.Faults{})
	post("R-1", "Refuse this one [sim:reject]")
	waitState("R-1", "rejected")

	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := dispatch(append(args, "--url", base), &out, &errb)
		return code, out.String(), errb.String()
	}
	resolveHint := []string{"psgw resolve datix U-1 --delivered --national-id ID", "psgw resolve datix U-1 --resend"}

	code, out, errOut := run("replay", "datix", "U-1")
	if code != 1 || !strings.Contains(errOut, "refused: datix/U-1 is unknown") {
		t.Errorf("replay datix U-1: got %d %q %q, want 1 and a refusal saying it is unknown", code, out, errOut)
	}
	for _, h := range resolveHint {
		if !strings.Contains(errOut, h) {
			t.Errorf("replay datix U-1: got %q, want it to suggest %q", errOut, h)
		}
	}

	code, out, _ = run("replay", "--source", "datix", "--dry-run")
	if code != 0 || !strings.Contains(out, "(skipped: resolve it)") || !strings.Contains(out, "1 would be replayed") {
		t.Errorf("replay --dry-run: got %d %q, want U-1 marked skipped and 1 to replay", code, out)
	}

	code, out, errOut = run("replay", "--state", "unknown", "--yes")
	if code != 1 || !strings.Contains(out, "Nothing replayed") || !strings.Contains(errOut, "Skipped 1 unknown") || !strings.Contains(errOut, resolveHint[1]) {
		t.Errorf("replay --state unknown: got %d %q %q, want 1, nothing replayed, U-1 skipped with the resolve commands", code, out, errOut)
	}

	code, out, errOut = run("replay", "--source", "datix", "--yes")
	if code != 1 || !strings.Contains(out, "Replayed 1 of 2") || !strings.Contains(errOut, "Skipped 1 unknown") {
		t.Errorf("replay --source datix: got %d %q %q, want 1, R-1 replayed and U-1 skipped", code, out, errOut)
	}

	time.Sleep(300 * time.Millisecond) // a wrongly queued resend would reach the simulator by now
	if st := gw.Sim.Stats(); st.Creates != 1 {
		t.Errorf("simulator creates: got %d, want 1 (the unknown POST must not be sent again)", st.Creates)
	}
}

// TestBulkResendUnknown: psgw resolve with filters and --resend lists the unknown incidents
// they select (--dry-run) and sends each again; it refuses --delivered and other states.
func TestBulkResendUnknown(t *testing.T) {
	gw, base := startDemo(t)
	state := func(id string) ops.Record {
		resp, err := http.Get(base + "/api/v1/incidents/datix/" + id)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rec ops.Record
		_ = json.NewDecoder(resp.Body).Decode(&rec)
		return rec
	}
	gw.Sim.SetFaults(sim.Faults{StoreThenErrorRate: 1})
	for _, id := range []string{"B-1", "B-2"} {
		b, _ := json.Marshal(map[string]any{"source": "datix", "local_id": id, "revision": 1, "event_type": "incident",
			"occurred_at": "2025-03-14", "description": "Fall on the ward."})
		resp, err := http.Post(base+"/api/v1/incidents", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		wait.Until(t, 20*time.Second, id+" unknown", func() bool { return state(id).State == "unknown" })
	}
	gw.Sim.SetFaults(sim.Faults{})
	// The bulk command lists from the search index, which follows the ledger a moment
	// behind the record read above: wait until the list the command reads holds both.
	wait.Until(t, 20*time.Second, "both listed as unknown", func() bool {
		resp, err := http.Get(base + "/api/v1/incidents?state=unknown&source=datix")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var p ledger.Page
		return json.NewDecoder(resp.Body).Decode(&p) == nil && p.Total == 2
	})
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := dispatch(append(args, "--url", base), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, errOut := run("resolve", "--state", "unknown", "--delivered", "--national-id", "x"); code != 2 || !strings.Contains(errOut, "only resends") {
		t.Errorf("bulk --delivered: got %d %q, want 2 and why", code, errOut)
	}
	if code, _, errOut := run("resolve", "--state", "failed", "--resend"); code != 2 || !strings.Contains(errOut, "--state unknown only") {
		t.Errorf("bulk --state failed: got %d %q, want 2 and why", code, errOut)
	}
	code, out, _ := run("resolve", "--state", "unknown", "--source", "datix", "--resend", "--dry-run")
	if code != 0 || !strings.Contains(out, "B-1") || !strings.Contains(out, "B-2") || !strings.Contains(out, "2 would be sent again") {
		t.Errorf("dry run: got %d %q, want B-1 and B-2 listed", code, out)
	}
	if c := gw.Sim.Stats().Creates; c != 2 {
		t.Fatalf("after the dry run: %d creates, want 2", c)
	}
	code, out, errOut := run("resolve", "--source", "datix", "--resend", "--yes")
	if code != 0 || !strings.Contains(out, "Sent again 2 of 2") {
		t.Fatalf("bulk resend: got %d %q %q, want both sent again", code, out, errOut)
	}
	for _, id := range []string{"B-1", "B-2"} {
		wait.Until(t, 20*time.Second, id+" delivered", func() bool { return state(id).State == "delivered" })
		if rec := state(id); rec.State != "delivered" || !rec.PossibleDuplicate {
			t.Errorf("%s: got %s possible_duplicate=%v, want delivered and flagged", id, rec.State, rec.PossibleDuplicate)
		}
	}
}

// startDemo starts a gateway in demo mode (with its in-process simulator) on a temp dir and
// returns it with its API's base URL.
func startDemo(t *testing.T) (*gateway.Gateway, string) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config).Addr = ""
	cfg.Queue.Sync = "1s"
	gw, err := gateway.Start(context.Background(), cfg, gateway.Options{Demo: true, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Stop(context.Background()) })
	return gw, "http://" + gw.HTTPAddr()
}
