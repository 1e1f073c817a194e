package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/ledger"
)

// TestUnknownFlagReportedOnce: every command names an unknown flag once, with its usage,
// and exits 2 (issue 18: it was printed twice).
func TestUnknownFlagReportedOnce(t *testing.T) {
	for _, cmd := range []string{"run", "map", "sim", "status", "events", "replay", "resolve", "review", "health"} {
		t.Run(cmd, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := dispatch([]string{cmd, "--no-such-flag"}, &out, &errb)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if n := strings.Count(errb.String(), "no-such-flag"); n != 1 {
				t.Errorf("the unknown flag is named %d times, want once:\n%s", n, errb.String())
			}
			if !strings.Contains(errb.String(), "Usage:") {
				t.Errorf("no usage after the error:\n%s", errb.String())
			}
		})
	}
}

// TestStrayArgumentIsAUsageError: a command that takes no positional argument exits 2 on
// one, as CONTRACT.md section 1 has `psgw map` exit 2 on usage errors; psgw sim ignored it
// and started, so `psgw sim 127.0.0.1:9000` (a forgotten --addr) listened on the default.
func TestStrayArgumentIsAUsageError(t *testing.T) {
	for _, args := range [][]string{{"run"}, {"sim"}, {"health"},
		// status and events dropped it: `psgw events datix` listed every source's incidents.
		{"status", "--url", "http://127.0.0.1:1"}, {"events", "--url", "http://127.0.0.1:1"}} {
		var out, errb bytes.Buffer
		if code := dispatch(append(args, "127.0.0.1:1"), &out, &errb); code != 2 || !strings.Contains(errb.String(), `unexpected argument "127.0.0.1:1"`) {
			t.Errorf("psgw %s 127.0.0.1:1: got %d %q, want 2 naming the argument", strings.Join(args, " "), code, errb.String())
		}
	}
}

// TestMapSaysWhatIsMissing: psgw map without --source, or without a file, says which.
func TestMapSaysWhatIsMissing(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"map", "incident.json"}, "--source is missing"},
		{[]string{"map", "--source", "datix"}, "FILE is missing"},
		{[]string{"map"}, "--source is missing"},
		{[]string{"map", "--source", "datix", "a.json", "b.json"}, "one FILE at a time"},
	} {
		var out, errb bytes.Buffer
		if code := dispatch(tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("psgw %s: got %d %q, want 2 saying %q", strings.Join(tc.args[1:], " "), code, errb.String(), tc.want)
		}
	}
}

// TestProgressOnlyOnTerminal: the bulk replay's progress bar is drawn on a terminal only;
// into a file, a pipe or a buffer nothing is written (the summary says what happened).
func TestProgressOnlyOnTerminal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, 4)
	p.done(1, 0)
	p.finish()
	if buf.Len() != 0 {
		t.Errorf("progress into a buffer: got %q, want nothing", buf.String())
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Error("a pipe is taken for a terminal")
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	if isTerminal(devnull) {
		t.Error("/dev/null (a character device) is taken for a terminal")
	}
	tty := &progress{w: &buf, total: 4, draw: true}
	tty.done(2, 1)
	tty.finish()
	if got := buf.String(); !strings.Contains(got, "\rreplaying 2/4 [") || !strings.Contains(got, "1 failed") {
		t.Errorf("progress on a terminal: got %q", got)
	}
}

// TestCLITimesCarryTheirZone: times the CLI prints are UTC and say so, like the page,
// whatever the machine's local zone.
func TestCLITimesCarryTheirZone(t *testing.T) {
	// The time arrives in a summer zone, as it would from a ledger read on a
	// machine set to Europe/London. Setting time.Local instead would race with
	// the nats-server goroutines that earlier tests in this package leave
	// winding down (a CI run's race detector caught exactly that).
	at := time.Date(2026, 7, 1, 10, 30, 0, 0, time.FixedZone("BST", 3600))
	var out bytes.Buffer
	printEvents(&out, []ledger.Summary{{Source: "datix", LocalID: "A-1", State: "delivered", Revision: 1, UpdatedAt: at}})
	if !strings.Contains(out.String(), "2026-07-01 09:30 UTC") {
		t.Errorf("events table: got %q, want the change time as 2026-07-01 09:30 UTC", out.String())
	}
}
