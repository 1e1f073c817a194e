package forwarder

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/test/jstest"
	"github.com/psgw/psgw/test/wait"
)

// TestUnreadableOutboxMessageFailsTheIncident: an outbox message whose envelope does not parse
// (here a raw sequence that is not a number, as a foreign or corrupt writer could leave) is
// never sent and never silently dropped: its incident turns failed with the header named,
// for an operator to replay, and the message leaves the outbox. Before the envelope, the
// parse error was ignored, the raw sequence read as 0, and the message was acked as
// superseded while the incident sat queued for ever.
func TestUnreadableOutboxMessageFailsTheIncident(t *testing.T) {
	ctx := context.Background()
	var sends atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			sends.Add(1)
		}
		_, _ = w.Write([]byte(`{"resourceType":"CapabilityStatement"}`))
	}))
	defer srv.Close()
	q := jstest.Open(t, t.TempDir())
	l := openLedger(t, q)
	lkey := ledger.Key("datix", "k1")
	if _, err := l.Update(ctx, lkey, func(e *ledger.Entry, _ bool) error {
		e.Source, e.LocalID, e.RawSeq, e.Revision, e.PayloadHash = "datix", "INC-1", 7, 1, "h1"
		e.Note(time.Now(), ledger.StateQueued, "mapped", "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Written field by field, as the envelope never would.
	hdr := nats.Header{"Psgw-Source": {"datix"}, "Psgw-Key": {"k1"}, "Psgw-Raw-Seq": {"seven"},
		"Psgw-Revision": {"1"}, "Psgw-Payload-Hash": {"h1"}}
	if _, err := q.Publish(ctx, queue.OutboxSubjectOf("datix"), "raw-7", []byte(`{}`), hdr); err != nil {
		t.Fatal(err)
	}

	f := New(Config{Concurrency: 1, MaxAttempts: 3, Timeout: 5 * time.Second}, q, l, NewClient(srv.URL, "key", 5*time.Second), zerolog.Nop())
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("forwarder stopped with %v", err)
		}
	}()

	wait.Until(t, 10*time.Second, "the incident to fail", func() bool {
		e, err := l.Get(ctx, lkey)
		return err == nil && e.State == ledger.StateFailed
	})
	e, err := l.Get(ctx, lkey)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.LastError, "Psgw-Raw-Seq") || strings.Contains(e.LastError, "seven") {
		t.Errorf("got last error %q, want it to name the header Psgw-Raw-Seq without quoting its value", e.LastError)
	}
	wait.Until(t, 10*time.Second, "the outbox to empty", func() bool {
		si, err := q.StreamInfo(ctx, queue.OutboxStream)
		return err == nil && si.State.Msgs == 0
	})
	if n := sends.Load(); n != 0 {
		t.Errorf("got %d sends to the national service, want none", n)
	}
}
