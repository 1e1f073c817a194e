package mapper

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/test/jstest"
)

// body is a valid incident from datix, local id U-1.
var body = []byte(`{"source":"datix","local_id":"U-1","event_type":"incident","occurred_at":"2025-03-14","description":"Fall on the ward.","location":{"organisation":"RRK"},"reporter":{"role":"Nurse or midwife","organisation":"RRK"}}`)

// openMapper is a mapper (taxonomy v5, no enrichment) on a real embedded JetStream and ledger.
func openMapper(t *testing.T) (*queue.Queue, *ledger.Ledger, *Mapper) {
	t.Helper()
	q := jstest.Open(t, t.TempDir())
	l, err := ledger.Open(context.Background(), q, ledger.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return q, l, New(q, l, Options{Builder: &fhir.Builder{Version: 5}, Logger: zerolog.Nop()})
}

// mapStored maps the raw record stored at seq as the mapper's consumer would hand it over.
func mapStored(t *testing.T, q *queue.Queue, mp *Mapper, seq uint64) {
	t.Helper()
	raw, err := q.RawMessage(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	if err := mp.Map(context.Background(), Raw{Seq: seq, Header: raw.Header, Data: raw.Data}, ""); err != nil {
		t.Fatal(err)
	}
}

// TestReplayRefusesAnUnknownPOSTButResendSendsIt: the refusal is made in the ledger write
// that would queue the replay, so a send that turned unknown after an operator's check
// cannot be POSTed again by the replay; only an explicit resend does that, flagged.
func TestReplayRefusesAnUnknownPOSTButResendSendsIt(t *testing.T) {
	ctx := context.Background()
	q, l, mp := openMapper(t)
	key := ingest.IncidentKey("datix", "U-1")
	res, err := q.PublishRaw(ctx, queue.RawEnvelope{Kind: ingest.KindIncident, Source: "datix", LocalID: "U-1", Key: key, RecordID: "r1"}, body, 0)
	if err != nil {
		t.Fatal(err)
	}
	mapStored(t, q, mp, res.Seq)
	lkey := ledger.Key("datix", key)
	// The POST's outcome became unknown.
	if _, err := l.Update(ctx, lkey, func(e *ledger.Entry, _ bool) error {
		e.UnknownHash = e.PayloadHash
		e.Note(time.Now(), ledger.StateUnknown, "request sent but no answer", "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := mp.Replay(ctx, lkey, "ops"); !errors.Is(err, ledger.ErrNotResolvable) || !errors.Is(err, ledger.ErrAwaitingResolution) {
		t.Fatalf("replay of an unknown POST: got %v, want ErrNotResolvable and ErrAwaitingResolution", err)
	}
	e, err := l.Get(ctx, lkey)
	if err != nil {
		t.Fatal(err)
	}
	if e.State != ledger.StateUnknown || !e.AwaitingResolution() {
		t.Fatalf("after a refused replay: %s, awaiting resolution %v; want it untouched", e.State, e.AwaitingResolution())
	}
	e, err = mp.Resend(ctx, lkey, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if e.State != ledger.StateQueued || !e.PossibleDuplicate || e.AwaitingResolution() {
		t.Errorf("after a resend: %s, possible duplicate %v, awaiting %v; want queued, flagged, settled", e.State, e.PossibleDuplicate, e.AwaitingResolution())
	}
}
