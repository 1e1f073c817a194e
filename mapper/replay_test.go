package mapper

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/forwarder"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/queue"
)

// TestReplayRefusesAnUnknownPOSTButResendSendsIt: the refusal is made in the ledger write
// that would queue the replay, so a send that turned unknown after an operator's check
// cannot be POSTed again by the replay; only an explicit resend does that, flagged.
func TestReplayRefusesAnUnknownPOSTButResendSendsIt(t *testing.T) {
	ctx := context.Background()
	q, err := queue.Open(ctx, queue.Options{
		DataDir: t.TempDir(), MaxStoreBytes: 1 << 30, MaxMemoryBytes: 64 << 20, RawMaxBytes: 64 << 20,
		RawMaxAge: time.Hour, OutboxMaxBytes: 64 << 20, DuplicateWindow: time.Minute, SyncInterval: time.Second,
		Logger: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ledger := forwarder.NewLedger(q.Ledger(), nil)
	mp := New(q, ledger, Options{Builder: &fhir.Builder{Version: 5}, Logger: zerolog.Nop()})

	body := []byte(`{"source":"datix","local_id":"U-1","event_type":"incident","occurred_at":"2025-03-14","description":"Fall on the ward.","location":{"organisation":"RRK"},"reporter":{"role":"Nurse or midwife","organisation":"RRK"}}`)
	key := ingest.IncidentKey("datix", "U-1")
	hdr := nats.Header{}
	hdr.Set(queue.HeaderSource, "datix")
	hdr.Set(queue.HeaderKey, key)
	hdr.Set(queue.HeaderLocalID, "U-1")
	res, err := q.Publish(ctx, queue.RawSubject(ingest.KindIncident, "datix", key), "r1", body, hdr)
	if err != nil {
		t.Fatal(err)
	}
	hdr.Set(nats.MsgIdHdr, "r1")
	if err := mp.Map(ctx, Raw{Seq: res.Seq, Header: hdr, Data: body}, ""); err != nil {
		t.Fatal(err)
	}
	lkey := forwarder.LedgerKey("datix", key)
	// The POST's outcome became unknown.
	if _, err := ledger.Update(ctx, lkey, func(e *forwarder.Entry, _ bool) error {
		e.UnknownHash = e.PayloadHash
		e.Note(time.Now(), forwarder.StateUnknown, "request sent but no answer", "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := mp.Replay(ctx, lkey, "ops"); !errors.Is(err, forwarder.ErrNotResolvable) || !errors.Is(err, forwarder.ErrAwaitingResolution) {
		t.Fatalf("replay of an unknown POST: got %v, want ErrNotResolvable and ErrAwaitingResolution", err)
	}
	e, err := ledger.Get(ctx, lkey)
	if err != nil {
		t.Fatal(err)
	}
	if e.State != forwarder.StateUnknown || !e.AwaitingResolution() {
		t.Fatalf("after a refused replay: %s, awaiting resolution %v; want it untouched", e.State, e.AwaitingResolution())
	}
	e, err = mp.Resend(ctx, lkey, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if e.State != forwarder.StateQueued || !e.PossibleDuplicate || e.AwaitingResolution() {
		t.Errorf("after a resend: %s, possible duplicate %v, awaiting %v; want queued, flagged, settled", e.State, e.PossibleDuplicate, e.AwaitingResolution())
	}
}
