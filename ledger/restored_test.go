package ledger

import (
	"context"
	"testing"
)

// TestMarkRestored: after a restore, an incident that may have been POSTed after the backup
// (queued, delivering or retrying with no national id) waits in unknown for an operator, and
// its outbox message would not be sent; a delivered incident and an amendment to a held id
// are left as they are.
func TestMarkRestored(t *testing.T) {
	ctx := context.Background()
	l := openAt(t, t.TempDir())
	put := func(key string, e Entry) {
		t.Helper()
		if _, err := l.Update(ctx, key, func(x *Entry, _ bool) error { *x = e; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	put("datix.queued", Entry{State: StateQueued, RawSeq: 1, PayloadHash: "h1"})
	put("datix.sending", Entry{State: StateDelivering, RawSeq: 2, PayloadHash: "h2", InFlight: &InFlight{Method: "POST", PayloadHash: "h2"}})
	put("datix.retrying", Entry{State: StateRetrying, RawSeq: 3, PayloadHash: "h3"})
	put("datix.delivered", Entry{State: StateDelivered, RawSeq: 4, NationalID: "n4", DeliveredHash: "h4", PayloadHash: "h4"})
	put("datix.amended", Entry{State: StateQueued, RawSeq: 5, NationalID: "n5", PayloadHash: "h5b", DeliveredHash: "h5a"})
	put("datix.quarantined", Entry{State: StateQuarantined, RawSeq: 6})

	n, err := l.MarkRestored(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("moved %d incidents to unknown, want 3", n)
	}
	for key, want := range map[string]State{"datix.queued": StateUnknown, "datix.sending": StateUnknown, "datix.retrying": StateUnknown,
		"datix.delivered": StateDelivered, "datix.amended": StateQueued, "datix.quarantined": StateQuarantined} {
		e, err := l.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if e.State != want {
			t.Errorf("%s: got %s, want %s", key, e.State, want)
		}
		if want == StateUnknown {
			if !e.AwaitingResolution() || e.InFlight != nil {
				t.Errorf("%s: awaiting resolution %v, in flight %v; want awaiting and nothing in flight", key, e.AwaitingResolution(), e.InFlight)
			}
			// Its outbox message, delivered again after the restore, is not sent.
			if v := e.Judge(Outgoing{RawSeq: e.RawSeq, PayloadHash: e.PayloadHash}); v == Send || v == InterruptedPost {
				t.Errorf("%s: the forwarder's verdict on its outbox message is %v, want it held", key, v)
			}
		}
	}
	// Marking again changes nothing.
	if n, err := l.MarkRestored(ctx); err != nil || n != 0 {
		t.Errorf("second MarkRestored: %d, %v; want 0", n, err)
	}
}
