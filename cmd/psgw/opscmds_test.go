package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/test/wait"
)

// TestOperatorCommands runs status, events, replay, review and resolve against a real gateway
// in demo mode, as an operator and as a viewer.
func TestOperatorCommands(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config).Addr = ""
	cfg.Queue.Sync = "1s"
	cfg.Ops.OperatorTokens = []string{"alice:alice-operator-token-0001"}
	cfg.Ops.ViewerTokens = []string{"bob:bob-viewer-token-000000001"}
	gw, err := gateway.Start(context.Background(), cfg, gateway.Options{Demo: true, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Stop(context.Background()) })
	base := "http://" + gw.HTTPAddr()
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte("alice-operator-token-0001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"C-1", "C-2", "C-3"} {
		desc := "Refuse this one [sim:reject]"
		if id == "C-1" {
			desc = "Medication given late."
		}
		b, _ := json.Marshal(map[string]any{"source": "datix", "local_id": id, "revision": 1, "event_type": "incident",
			"occurred_at": "2025-03-14", "description": desc})
		resp, err := http.Post(base+"/api/v1/incidents", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := dispatch(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	op := []string{"--url", base, "--token-file", tokFile}

	// Wait (through the CLI itself) until both rejections are listed.
	var out string
	wait.Until(t, 20*time.Second, "both rejections listed", func() bool {
		_, out, _ = run(append([]string{"events", "--state", "rejected"}, op...)...)
		return strings.Contains(out, "of 2")
	})
	if !strings.Contains(out, "C-2") || !strings.Contains(out, "C-3") || !strings.Contains(out, "LOCAL ID") {
		t.Fatalf("events --state rejected: got\n%s\nwant a table with C-2 and C-3", out)
	}

	code, out, errOut := run(append([]string{"status"}, op...)...)
	if code != 0 || !strings.Contains(out, "DEMO MODE") || !strings.Contains(out, "rejected") || !strings.Contains(out, "httppush") {
		t.Errorf("status: got %d\n%s%s\nwant 0 with the demo banner, states and adapters", code, out, errOut)
	}

	// -o json: the status API's object and one incident per line, with stable field names
	// (docs/api.md, "Command line").
	code, out, errOut = run(append([]string{"status", "-o", "json"}, op...)...)
	var st struct {
		Readiness struct {
			Ready bool `json:"ready"`
		} `json:"readiness"`
		States map[string]int `json:"states"`
		Demo   bool           `json:"demo"`
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || !st.Demo || !st.Readiness.Ready || st.States["rejected"] != 2 {
		t.Errorf("status -o json: got %d %v\n%s%s\nwant the overview, ready, demo, 2 rejected", code, err, out, errOut)
	}
	code, out, errOut = run(append([]string{"events", "--state", "rejected", "-o", "json"}, op...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ev); code != 0 || err != nil || len(lines) != 2 || ev["state"] != "rejected" || ev["source"] != "datix" || ev["local_id"] == nil || ev["updated_at"] == nil {
		t.Errorf("events -o json: got %d %v\n%s%s\nwant two JSON lines with source, local_id, state, updated_at", code, err, out, errOut)
	}
	if code, _, errOut := run(append([]string{"events", "-o", "yaml"}, op...)...); code != 2 || !strings.Contains(errOut, "-o must be text or json") {
		t.Errorf("events -o yaml: got %d %q, want 2 naming the choices", code, errOut)
	}

	// A viewer may look but not act.
	viewer := []string{"--url", base, "--token", "bob-viewer-token-000000001"}
	if code, _, errOut := run(append([]string{"replay", "datix", "C-2"}, viewer...)...); code != 1 || !strings.Contains(errOut, "viewer role") {
		t.Errorf("replay as viewer: got %d %q, want 1 and a refusal naming the role", code, errOut)
	}
	if code, _, errOut := run("status", "--url", base); code != 1 || !strings.Contains(errOut, "token") {
		t.Errorf("status without a token: got %d %q, want 1 asking for a token", code, errOut)
	}

	// Single replay, review, bulk replay with progress.
	if code, out, errOut := run(append([]string{"replay", "datix", "C-2"}, op...)...); code != 0 || !strings.Contains(out, "replayed") {
		t.Errorf("replay datix C-2: got %d %q %q", code, out, errOut)
	}
	if code, out, errOut := run(append([]string{"review", "datix", "C-3"}, op...)...); code != 0 || !strings.Contains(out, "reviewed") {
		t.Errorf("review datix C-3: got %d %q %q", code, out, errOut)
	}
	if code, out, _ := run(append([]string{"replay", "--state", "rejected", "--dry-run"}, op...)...); code != 0 || !strings.Contains(out, "would be replayed") {
		t.Errorf("replay --dry-run: got %d %q", code, out)
	}
	confirmInput = strings.NewReader("n\n")
	if code, _, _ := run(append([]string{"replay", "--state", "rejected", "--source", "datix"}, op...)...); code != 1 {
		t.Errorf("bulk replay answered no: got %d, want 1", code)
	}
	code, out, errOut = run(append([]string{"replay", "--source", "datix", "--yes"}, op...)...)
	if code != 0 || strings.Contains(errOut, "replaying") || !strings.Contains(out, "Replayed 3 of 3") {
		t.Errorf("bulk replay: got %d %q %q, want the summary and no progress bar (stderr is not a terminal)", code, out, errOut)
	}

	// Resolve: usage errors are 2; a resend of a delivered incident is refused (409).
	if code, _, _ := run(append([]string{"resolve", "datix", "C-1", "--delivered"}, op...)...); code != 2 {
		t.Errorf("resolve --delivered without --national-id: got %d, want 2", code)
	}
	if code, _, errOut := run(append([]string{"resolve", "datix", "C-1", "--resend"}, op...)...); code != 1 || !strings.Contains(errOut, "409") {
		t.Errorf("resolve --resend of a delivered incident: got %d %q, want 1 and 409", code, errOut)
	}
	if code, _, _ := run("replay", "--url", base); code != 2 {
		t.Errorf("replay with no target: got %d, want 2", code)
	}
}
