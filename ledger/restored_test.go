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

// TestMapRestoredBacklog: in a store restored from a backup whose raw stream ended at
// sequence 10, a record up to it that creates an entry may have been delivered after the
// backup, so it waits in unknown instead of being published; a record after the mark, a
// record for an entry the backup holds, a replay, and a record that cannot be mapped go
// their usual way.
func TestMapRestoredBacklog(t *testing.T) {
	ctx := context.Background()
	l := newLedger(openAt(t, t.TempDir()).kv, Options{RestoredThrough: 10})
	m := func(seq uint64) Mapping {
		return Mapping{Source: "datix", LocalID: "L", RawSeq: seq, RecordID: "r" + string(rune('a'+seq)), PayloadHash: "h", TaxonomyVersion: 5}
	}
	e, res, err := l.Map(ctx, "datix.backlog", m(10))
	if err != nil {
		t.Fatal(err)
	}
	if res.Publish || e.State != StateUnknown || !e.AwaitingResolution() || e.History[len(e.History)-1].Detail != RestoredUnmappedDetail {
		t.Errorf("a new entry from a record in the backup: publish %v, state %s, history %+v; want unknown, not published, with the restore's reason", res.Publish, e.State, e.History)
	}
	// Its next revision waits behind the unknown send, as after any unknown POST.
	if e, res, err = l.Map(ctx, "datix.backlog", m(11)); err != nil || res.Publish || e.State != StateUnknown {
		t.Errorf("a later revision of it: publish %v, state %s, err %v; want it to wait in unknown", res.Publish, e.State, err)
	}
	if e, res, err = l.Map(ctx, "datix.new", m(11)); err != nil || !res.Publish || e.State != StateQueued {
		t.Errorf("a record after the backup: publish %v, state %s, err %v; want it queued", res.Publish, e.State, err)
	}
	if _, err := l.Update(ctx, "datix.known", func(x *Entry, _ bool) error {
		*x = Entry{Source: "datix", State: StateDelivered, RawSeq: 3, NationalID: "n", DeliveredHash: "h0", PayloadHash: "h0", Revision: 1}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if e, res, err = l.Map(ctx, "datix.known", m(7)); err != nil || !res.Publish || e.State != StateQueued {
		t.Errorf("an amendment of an incident the backup's ledger holds: publish %v, state %s, err %v; want it queued for its PUT", res.Publish, e.State, err)
	}
	bad := m(8)
	bad.PayloadHash, bad.Problems = "", "occurred_at: required"
	if e, _, err = l.Map(ctx, "datix.bad", bad); err != nil || e.State != StateQuarantined {
		t.Errorf("a record that cannot be mapped: state %s, err %v; want quarantined", e.State, err)
	}
	replay := m(9)
	replay.Replay = "ops"
	if e, res, err = l.Map(ctx, "datix.replayed", replay); err != nil || !res.Publish || e.State != StateQueued {
		t.Errorf("an operator's replay: publish %v, state %s, err %v; want it queued", res.Publish, e.State, err)
	}
}
