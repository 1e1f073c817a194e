package ingest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
)

func TestProblemsNameTheirKeys(t *testing.T) {
	p := ingest.NewProblems("mllp")
	if p.Err() != nil {
		t.Fatalf("no problems: got %v, want nil", p.Err())
	}
	p.Add("source", "must be %s", "set")
	p.Positive("read_timeout", 0)
	p.Positive("idle_timeout", time.Second) // fine
	p.Addr("addr", "localhost")
	p.Addr("addr", "127.0.0.1:0") // fine
	if p.SourceName("source", "Bad Name") {
		t.Error("SourceName(\"Bad Name\"): got true")
	}
	if !p.SourceName("source", "epr") {
		t.Error("SourceName(\"epr\"): got false")
	}
	err := p.Err()
	if err == nil {
		t.Fatal("got no error")
	}
	want := []string{
		"mllp.source: must be set",
		"mllp.read_timeout: must be a positive duration, got 0s",
		`mllp.addr: must be host:port with a port from 0 to 65535, got "localhost"`,
		`mllp.source: must match [a-z0-9_-]{1,64}, got "Bad Name"`,
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestFitRecordLimit: a limit above what the store takes in one message is lowered to it, with
// a warning; a smaller one, or any with no known store limit, is kept.
func TestFitRecordLimit(t *testing.T) {
	var logged strings.Builder
	deps := ingest.Deps{Logger: zerolog.New(&logged), MaxRecordBytes: 1<<20 - 64<<10}
	if got := ingest.FitRecordLimit(deps, "http.max_body_bytes", 4<<20); got != 1<<20-64<<10 {
		t.Errorf("4 MiB against a store of 960 KiB: got %d, want %d", got, 1<<20-64<<10)
	}
	if !strings.Contains(logged.String(), `"setting":"http.max_body_bytes"`) || !strings.Contains(logged.String(), "max_payload") {
		t.Errorf("the lowering was not logged with its key: %q", logged.String())
	}
	logged.Reset()
	if got := ingest.FitRecordLimit(deps, "mllp.max_message_bytes", 512<<10); got != 512<<10 {
		t.Errorf("512 KiB: got %d, want it kept", got)
	}
	if got := ingest.FitRecordLimit(ingest.Deps{Logger: zerolog.New(&logged)}, "csvdrop.max_row_bytes", 8<<20); got != 8<<20 {
		t.Errorf("no store limit: got %d, want 8 MiB kept", got)
	}
	if logged.Len() > 0 {
		t.Errorf("a limit that was kept was logged: %q", logged.String())
	}
}
