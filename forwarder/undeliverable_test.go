package forwarder

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/test/jstest"
)

// publishOutbox stores one outbox message for incident key k1 at raw sequence 7.
func publishOutbox(t *testing.T, q *queue.Queue) uint64 {
	t.Helper()
	env := queue.OutboxEnvelope{Source: "datix", Key: "k1", RawSeq: 7, Revision: 1, PayloadHash: "h1"}
	pub, err := q.PublishOutbox(context.Background(), env, "raw-7", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	return pub.Seq
}

// TestUndeliverableWithPOSTInFlightIsUnknown: when the delivery limit is reached while the
// ledger says a POST was under way, the national service may hold the event: the incident
// must be unknown (resolve or resend), not failed, or a replay would POST it again unflagged.
func TestUndeliverableWithPOSTInFlightIsUnknown(t *testing.T) {
	ctx := context.Background()
	q := jstest.Open(t, t.TempDir())
	l := openLedger(t, q)
	lkey := ledger.Key("datix", "k1")
	if _, err := l.Update(ctx, lkey, func(e *ledger.Entry, _ bool) error {
		e.Source, e.LocalID, e.RawSeq = "datix", "INC-1", 7
		e.InFlight = &ledger.InFlight{Method: "POST", PayloadHash: "h1", RawSeq: 7, StartedAt: time.Now()}
		e.Note(time.Now(), ledger.StateDelivering, "", "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	seq := publishOutbox(t, q)
	f := New(Config{MaxAttempts: 3}, q, l, nil, zerolog.Nop())
	if err := f.failUndeliverable(ctx, maxDeliveriesAdvisory{StreamSeq: seq, Deliveries: 28}); err != nil {
		t.Fatal(err)
	}
	e, err := l.Get(ctx, lkey)
	if err != nil {
		t.Fatal(err)
	}
	if e.State != ledger.StateUnknown || e.UnknownHash != "h1" || e.InFlight != nil {
		t.Errorf("got state %s, unknown hash %q, in flight %v; want unknown, h1, none", e.State, e.UnknownHash, e.InFlight)
	}
}
