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
	"github.com/psgw/psgw/ops"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/wait"
)

// TestReplaySkipsUnknown: psgw replay never re-POSTs an unknown incident. A single replay is
// refused with the two resolve commands to use instead; a bulk replay, even --state unknown,
// skips it, says so, replays the rest, and exits 1.
func TestReplaySkipsUnknown(t *testing.T) {
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
	base := "http://" + gw.HTTPAddr()
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
