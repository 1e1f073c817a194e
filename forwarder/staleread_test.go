package forwarder

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/test/jstest"
)

// staleKV serves, once armed, the next read of a key from an older value: what a replicated
// bucket's read gives when a replica a write behind answers it (a node just restarted and
// catching up, in test/cluster).
type staleKV struct {
	jetstream.KeyValue
	mu    sync.Mutex
	stale map[string]jetstream.KeyValueEntry
}

func (s *staleKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	s.mu.Lock()
	old, ok := s.stale[key]
	delete(s.stale, key)
	s.mu.Unlock()
	if ok {
		return old, nil
	}
	return s.KeyValue.Get(ctx, key)
}

// arm makes the next read of key return what a read returns now.
func (s *staleKV) arm(t *testing.T, key string) {
	t.Helper()
	kve, err := s.KeyValue.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.stale[key] = kve
	s.mu.Unlock()
}

// TestOutcomeNotSkippedOnAStaleRead (issue 19, test/cluster runs 15 and 16): a send's outcome
// whose first write loses its compare-and-set (another write landed since the marker: here a
// newer revision mapped) is written after a fresh read; if that read comes from a replica a
// write behind, it does not show the send's marker. That must not be taken for "the outcome is
// recorded already": the outcome was then skipped, the message acked, and the incident left
// with its marker for good ("delivering", or "unknown" once another replica judged the marker)
// although the national service held the event.
func TestOutcomeNotSkippedOnAStaleRead(t *testing.T) {
	ctx := context.Background()
	q := jstest.Open(t, t.TempDir())
	skv := &staleKV{stale: map[string]jetstream.KeyValueEntry{}}
	l, err := ledger.Open(ctx, q, ledger.Options{Logger: zerolog.Nop(), Replica: "psgw-a", Instance: "run-a",
		WrapKV: func(kv jetstream.KeyValue) jetstream.KeyValue { skv.KeyValue = kv; return skv }})
	if err != nil {
		t.Fatal(err)
	}
	f := New(Config{MaxAttempts: 3, Instance: "run-a"}, q, l, nil, zerolog.Nop())
	lkey := ledger.Key("datix", "k1")
	r1 := ledger.Outgoing{RawSeq: 7, Revision: 1, PayloadHash: "h1"}
	if _, err := l.Update(ctx, lkey, func(e *ledger.Entry, _ bool) error {
		e.Source, e.LocalID, e.RawSeq, e.Revision = "datix", "INC-1", r1.RawSeq, 1
		e.Note(time.Now().UTC(), ledger.StateQueued, "mapped", "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	skv.arm(t, lkey) // the entry as a lagging replica still holds it: queued, no marker
	staleCopy := skv.stale[lkey]
	delete(skv.stale, lkey)

	// The send's marker, and the snapshot the outcome's first write starts from.
	started := time.Now().UTC()
	_, snap, err := l.UpdateFrom(ctx, lkey, nil, func(e *ledger.Entry, _ bool) error {
		e.StartSend(started, r1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Revision 2 is mapped meanwhile (as the other replica did in run 15): the marker stays.
	if _, err := l.Update(ctx, lkey, func(e *ledger.Entry, _ bool) error {
		e.RawSeq, e.Revision = 9, 2
		e.Note(time.Now().UTC(), ledger.StateQueued, "mapped", "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	skv.mu.Lock()
	skv.stale[lkey] = staleCopy // the outcome's re-read is answered by the lagging replica
	skv.mu.Unlock()

	if err := f.writeOutcome(ctx, lkey, snap, started, func(e *ledger.Entry, _ bool) error {
		e.Delivered(time.Now().UTC(), r1, ledger.Answer{NationalID: "N1", Version: "1"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e, err := l.Get(ctx, lkey)
	if err != nil {
		t.Fatal(err)
	}
	if e.InFlight != nil || e.NationalID != "N1" {
		t.Errorf("after the delivery's outcome was written: marker %+v, national id %q; want no marker and N1 (the outcome was skipped on a stale read)",
			e.InFlight, e.NationalID)
	}
	if e.State != ledger.StateQueued || e.Revision != 2 {
		t.Errorf("state %s at revision %d; want queued at 2 (revision 2 still to send)", e.State, e.Revision)
	}
}

// fakeMsg is an outbox message handed to handleOnce directly; it records what was done to it.
type fakeMsg struct {
	jetstream.Msg
	hdr  nats.Header
	done []string
}

func (m *fakeMsg) Headers() nats.Header { return m.hdr }
func (m *fakeMsg) Data() []byte         { return []byte(`{"resourceType":"AdverseEvent"}`) }
func (m *fakeMsg) Ack() error           { m.done = append(m.done, "ack"); return nil }
func (m *fakeMsg) Term() error          { m.done = append(m.done, "term"); return nil }
func (m *fakeMsg) NakWithDelay(time.Duration) error {
	m.done = append(m.done, "nak")
	return nil
}

// TestUnchangedJudgedAgainOnTheCurrentEntry (issue 19): a message whose payload a stale read
// shows delivered already (an older revision with the same payload) while the entry now
// holds a PUT of another payload in flight is not acked as unchanged: the national service
// may hold the other payload, so this one must still go.
func TestUnchangedJudgedAgainOnTheCurrentEntry(t *testing.T) {
	ctx := context.Background()
	q := jstest.Open(t, t.TempDir())
	skv := &staleKV{stale: map[string]jetstream.KeyValueEntry{}}
	l, err := ledger.Open(ctx, q, ledger.Options{Logger: zerolog.Nop(), Replica: "psgw-a", Instance: "run-a",
		WrapKV: func(kv jetstream.KeyValue) jetstream.KeyValue { skv.KeyValue = kv; return skv }})
	if err != nil {
		t.Fatal(err)
	}
	f := New(Config{MaxAttempts: 3, Instance: "run-a"}, q, l, nil, zerolog.Nop())
	lkey := ledger.Key("datix", "k1")
	r1 := ledger.Outgoing{RawSeq: 7, Revision: 1, PayloadHash: "h1"}
	r2 := ledger.Outgoing{RawSeq: 9, Revision: 2, PayloadHash: "h2"}
	now := time.Now().UTC()
	update := func(fn func(e *ledger.Entry)) {
		t.Helper()
		if _, err := l.Update(ctx, lkey, func(e *ledger.Entry, _ bool) error { fn(e); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	update(func(e *ledger.Entry) {
		e.Source, e.LocalID, e.RawSeq, e.Revision, e.PayloadHash = "datix", "INC-1", r1.RawSeq, 1, r1.PayloadHash
		e.Note(now, ledger.StateQueued, "mapped", "")
		e.StartSend(now, r1)
		e.Delivered(now, r1, ledger.Answer{NationalID: "N1", Version: "1"})
	})
	skv.arm(t, lkey) // a lagging replica: revision 1 delivered
	stale := skv.stale[lkey]
	delete(skv.stale, lkey)
	// Revision 2 (h2) is mapped and its PUT started; revision 3 goes back to revision 1's payload.
	update(func(e *ledger.Entry) {
		e.RawSeq, e.Revision, e.PayloadHash = r2.RawSeq, 2, r2.PayloadHash
		e.Note(now, ledger.StateQueued, "mapped", "")
		e.StartSend(now, r2)
	})
	update(func(e *ledger.Entry) {
		e.RawSeq, e.Revision, e.PayloadHash = 11, 3, r1.PayloadHash
		e.Note(now, ledger.StateQueued, "mapped", "")
	})
	skv.mu.Lock()
	skv.stale[lkey] = stale
	skv.mu.Unlock()

	h := nats.Header{}
	h.Set("Psgw-Source", "datix")
	h.Set("Psgw-Key", "k1")
	h.Set("Psgw-Raw-Seq", "11")
	h.Set("Psgw-Revision", "3")
	h.Set("Psgw-Payload-Hash", r1.PayloadHash)
	m := &fakeMsg{hdr: h}
	if f.handleOnce(ctx, m) {
		t.Fatal("handleOnce asked to wait for a resume; delivery is not paused")
	}
	if fmt.Sprint(m.done) != "[nak]" {
		t.Errorf("the message was %v; want [nak]: judged again, not acked as unchanged", m.done)
	}
	e, err := l.Get(ctx, lkey)
	if err != nil {
		t.Fatal(err)
	}
	if e.State == ledger.StateDelivered || e.InFlight == nil {
		t.Errorf("entry %s, marker %v: revision 2's PUT marker must stay and revision 3 not be taken for delivered", e.State, e.InFlight)
	}
}
