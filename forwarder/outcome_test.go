package forwarder

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/test/jstest"
)

// TestOutcomeWrittenAgainLeavesANewerDeliveryAlone: a send's outcome whose ledger write was
// heard to fail but was stored after all (its answer lost while a node was cut off) is
// written again only over the send's own in-flight marker. Seen in test/cluster: revision 1's
// delivery was written again after another replica had delivered revision 2, and the entry
// went back to "queued" at national version 1 with nothing left in the outbox to send it.
func TestOutcomeWrittenAgainLeavesANewerDeliveryAlone(t *testing.T) {
	ctx := context.Background()
	q := jstest.Open(t, t.TempDir())
	l := openLedger(t, q)
	f := New(Config{MaxAttempts: 3}, q, l, nil, zerolog.Nop())
	lkey := ledger.Key("datix", "k1")
	r1 := ledger.Outgoing{RawSeq: 7, Revision: 1, PayloadHash: "h1"}
	r2 := ledger.Outgoing{RawSeq: 9, Revision: 2, PayloadHash: "h2"}
	t1 := time.Now().UTC()
	t2 := t1.Add(7 * time.Second)
	update := func(fn func(e *ledger.Entry)) {
		t.Helper()
		if _, err := l.Update(ctx, lkey, func(e *ledger.Entry, _ bool) error { fn(e); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// Revision 1 is sent, and its delivery stored (the write the gateway heard fail).
	update(func(e *ledger.Entry) {
		e.Source, e.LocalID, e.RawSeq = "datix", "INC-1", r1.RawSeq
		e.Note(t1, ledger.StateQueued, "mapped", "")
		e.StartSend(t1, r1)
	})
	answer1 := ledger.Answer{NationalID: "N1", Version: "1"}
	update(func(e *ledger.Entry) { e.Delivered(t1, r1, answer1) })
	// Revision 2 is mapped and delivered, as another replica does.
	update(func(e *ledger.Entry) {
		e.RawSeq = r2.RawSeq
		e.Note(t2, ledger.StateQueued, "mapped", "")
		e.StartSend(t2, r2)
	})
	update(func(e *ledger.Entry) { e.Delivered(t2, r2, ledger.Answer{Put: true, NationalID: "N1", Version: "2"}) })

	// The gateway that sent revision 1 writes its outcome again, reading the entry afresh.
	if err := f.writeOutcome(ctx, lkey, nil, t1, func(e *ledger.Entry, _ bool) error {
		e.Delivered(t1, r1, answer1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e, err := l.Get(ctx, lkey)
	if err != nil {
		t.Fatal(err)
	}
	if e.State != ledger.StateDelivered || e.DeliveredRevision != 2 || e.NationalVersion != "2" {
		t.Errorf("after revision 1's outcome was written again: state %s, delivered revision %d, national version %s; want delivered, 2, 2",
			e.State, e.DeliveredRevision, e.NationalVersion)
	}
}
