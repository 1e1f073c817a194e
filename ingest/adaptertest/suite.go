package adaptertest

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
)

// Outcome is what the source was told about one record.
type Outcome int

// The outcomes a Sender reports.
const (
	// Accepted: the source was told the record is stored (HTTP 202, HL7 AA). It may now
	// forget the record.
	Accepted Outcome = iota + 1
	// Retry: the source was told to send the record again later (HTTP 503, HL7 AE).
	Retry
	// Refused: the source was told the record can never be accepted (HTTP 400, HL7 AR).
	Refused
)

func (o Outcome) String() string {
	switch o {
	case Accepted:
		return "accepted"
	case Retry:
		return "retry"
	case Refused:
		return "refused"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Sender sends source record n to the adapter, as its source would, and returns what the
// source was told. The same n must always give the same source record and different n
// different records, all of them valid. It blocks until the adapter answered, the
// connection failed (return an error: the source was told nothing), or ctx ended. It must
// cope with being called while Run is starting (wait for the listener) and between runs
// (return an error).
type Sender func(ctx context.Context, n int) (Outcome, error)

// Subject describes the adapter under test.
type Subject struct {
	// New builds a fresh adapter around deps, as the adapter's Factory would, and returns it
	// with a Sender that reaches it. New may start test servers (e.g. an httptest.Server for
	// an HTTPAdapter) and register their cleanup with t.
	New func(t *testing.T, deps ingest.Deps) (ingest.Adapter, Sender)
	// Kind is the Record.Kind the adapter publishes.
	Kind string
}

// Timeout bounds every wait in the suite.
const Timeout = 10 * time.Second

// quiet is how long the suite watches for an acknowledgement that must not come.
const quiet = 150 * time.Millisecond

var (
	safeToken  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	sourceName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
)

// Run runs the conformance suite against s. Each check is a named sub-test with its own
// adapter and store.
func Run(t *testing.T, s Subject) {
	t.Helper()
	t.Run("publishes_well_formed_records", func(t *testing.T) { wellFormed(t, s) })
	t.Run("same_record_twice_is_stored_once", func(t *testing.T) { sameTwice(t, s) })
	t.Run("ack_only_after_durable_publish", func(t *testing.T) { ackAfterPublish(t, s) })
	t.Run("no_ack_when_publish_fails", func(t *testing.T) { noAckOnFailure(t, s) })
	t.Run("cancellation_with_publish_in_flight", func(t *testing.T) { cancellation(t, s) })
	t.Run("restart", func(t *testing.T) { restart(t, s) })
}

// running is one adapter under test with its Run goroutine.
type running struct {
	t       *testing.T
	adapter ingest.Adapter
	send    Sender
	store   *Store
	cancel  context.CancelFunc
	done    chan error
}

func start(t *testing.T, s Subject) *running {
	t.Helper()
	store := NewStore()
	deps := ingest.Deps{Name: "conformance", Publisher: store, Logger: zerolog.Nop(), Now: time.Now}
	a, send := s.New(t, deps)
	if a == nil || send == nil {
		t.Fatal("Subject.New returned no adapter or no sender")
	}
	r := &running{t: t, adapter: a, send: send, store: store}
	r.run()
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *running) run() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	done := make(chan error, 1)
	r.done = done
	go func() { done <- r.adapter.Run(ctx) }()
}

// stop cancels Run and checks that it returns nil within Timeout.
func (r *running) stop() {
	r.t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run after cancellation: got error %v, want nil", err)
		}
	case <-time.After(Timeout):
		r.t.Fatalf("Run did not return within %s of cancellation", Timeout)
	}
}

func (r *running) mustSend(n int, want Outcome) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	got, err := r.send(ctx, n)
	if err != nil {
		r.t.Fatalf("sending record %d: %v", n, err)
	}
	if got != want {
		r.t.Fatalf("sending record %d: got %s, want %s", n, got, want)
	}
}

type sendResult struct {
	outcome Outcome
	err     error
}

func (r *running) sendAsync(ctx context.Context, n int) <-chan sendResult {
	ch := make(chan sendResult, 1)
	go func() {
		o, err := r.send(ctx, n)
		ch <- sendResult{o, err}
	}()
	return ch
}

// waitPublishing waits until Publish is called for the first time after the first `before`
// calls, and returns that call's record. It waits for the call itself, not for whatever the
// store's Entered channel still holds from earlier steps.
func (r *running) waitPublishing(before int) ingest.Record {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	calls, err := r.store.WaitCalls(ctx, before+1)
	if err != nil {
		r.t.Fatalf("Publish was not called within %s (%d calls, want more than %d)", Timeout, len(calls), before)
	}
	return calls[before]
}

func wellFormed(t *testing.T, s Subject) {
	r := start(t, s)
	for n := 1; n <= 3; n++ {
		r.mustSend(n, Accepted)
	}
	recs := r.store.Records()
	if len(recs) != 3 {
		t.Fatalf("stored records: got %d, want 3", len(recs))
	}
	ids := map[string]bool{}
	for i, rec := range recs {
		if rec.Kind != s.Kind {
			t.Errorf("record %d: Kind got %q, want %q", i, rec.Kind, s.Kind)
		}
		if !sourceName.MatchString(rec.Source) {
			t.Errorf("record %d: Source %q does not match [a-z0-9_-]{1,64}", i, rec.Source)
		}
		if !safeToken.MatchString(rec.Key) {
			t.Errorf("record %d: Key %q is not a subject-safe token", i, rec.Key)
		}
		if rec.ID == "" || len(rec.ID) > 256 {
			t.Errorf("record %d: ID %q is empty or too long", i, rec.ID)
		}
		if ids[rec.ID] {
			t.Errorf("record %d: ID %q repeats an earlier record's", i, rec.ID)
		}
		ids[rec.ID] = true
		if len(rec.Data) == 0 {
			t.Errorf("record %d: Data is empty, want the record as received", i)
		}
		if rec.ReceivedAt.IsZero() {
			t.Errorf("record %d: ReceivedAt is zero", i)
		}
	}
}

func sameTwice(t *testing.T, s Subject) {
	r := start(t, s)
	r.mustSend(1, Accepted)
	r.mustSend(1, Accepted)
	calls := r.store.Calls()
	if len(calls) != 2 {
		t.Fatalf("Publish calls: got %d, want 2", len(calls))
	}
	if calls[0].ID != calls[1].ID {
		t.Errorf("the same source record got two ids: %q and %q", calls[0].ID, calls[1].ID)
	}
	if calls[0].Key != calls[1].Key {
		t.Errorf("the same source record got two keys: %q and %q", calls[0].Key, calls[1].Key)
	}
	if n := len(r.store.Records()); n != 1 {
		t.Errorf("stored records: got %d, want 1", n)
	}
}

func ackAfterPublish(t *testing.T, s Subject) {
	r := start(t, s)
	r.store.Hold()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	res := r.sendAsync(ctx, 1)
	r.waitPublishing(0)
	select {
	case got := <-res:
		t.Fatalf("the source got an answer (%v, %v) while Publish had not returned", got.outcome, got.err)
	case <-time.After(quiet):
	}
	r.store.Release()
	got := <-res
	if got.err != nil || got.outcome != Accepted {
		t.Fatalf("after Publish returned: got (%v, %v), want accepted", got.outcome, got.err)
	}
}

func noAckOnFailure(t *testing.T, s Subject) {
	r := start(t, s)
	r.store.Fail(fmt.Errorf("%w: conformance suite says no", ingest.ErrUnavailable))
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	got, err := r.send(ctx, 1)
	if err == nil && got == Accepted {
		t.Fatal("the source was told accepted although Publish failed")
	}
	if err == nil && got != Retry {
		t.Errorf("after ErrUnavailable: got %s, want retry (or no answer)", got)
	}
	if n := len(r.store.Records()); n != 0 {
		t.Fatalf("stored records: got %d, want 0", n)
	}
	r.store.Fail(nil)
	r.mustSend(1, Accepted)
}

// cancellationRounds is how often the cancellation check runs, each time on a fresh adapter.
// Over a connection, an adapter's wrong acknowledgement races the connection's close at
// shutdown and reaches the source only some of the time; several rounds catch it far more
// often than one.
const cancellationRounds = 3

// cancellation holds record 2's Publish, cancels Run while it is in flight, and then lets
// the store answer: an adapter that abandoned the publish as it must says nothing that reads
// as "stored", neither while stopping nor afterwards, and publishes nothing once Run returned.
func cancellation(t *testing.T, s Subject) {
	for range cancellationRounds {
		cancellationRound(t, s)
	}
}

func cancellationRound(t *testing.T, s Subject) {
	r := start(t, s)
	r.mustSend(1, Accepted) // the adapter is up
	first := r.store.Calls()
	r.store.Hold()
	defer r.store.Release()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	res := r.sendAsync(ctx, 2)
	// Wait for record 2's own Publish call, not for record 1's, which an earlier step left
	// behind in the store's Entered channel.
	rec := r.waitPublishing(len(first))
	for _, c := range first {
		if rec.ID == c.ID {
			t.Fatalf("the publish in flight has id %q, an earlier record's; want record 2's", rec.ID)
		}
	}
	r.stop()
	// Run has returned. Release the store: a publish that outlived Run would complete now,
	// and an adapter still holding its source's request would answer it now.
	callsAtStop := len(r.store.Calls())
	r.store.Release()
	var got sendResult
	select {
	case got = <-res:
	case <-time.After(quiet):
		cancel() // nothing came: that is a pass; end the Sender's wait
		got = <-res
	}
	if got.err == nil && got.outcome == Accepted {
		t.Fatal("a record whose Publish was abandoned at shutdown was acknowledged to its source")
	}
	if n := len(r.store.Calls()); n != callsAtStop {
		t.Errorf("Publish calls after Run returned: got %d, want 0", n-callsAtStop)
	}
	if n := len(r.store.Records()); n != 1 {
		t.Fatalf("stored records: got %d, want 1 (a publish went on after Run returned)", n)
	}
}

func restart(t *testing.T, s Subject) {
	r := start(t, s)
	r.mustSend(1, Accepted)
	r.stop()
	r.run()
	r.mustSend(2, Accepted)
	r.mustSend(1, Accepted)
	calls := r.store.Calls()
	var firstID, againID string
	for _, c := range calls {
		if firstID == "" {
			firstID = c.ID
		}
		againID = c.ID
	}
	if firstID != againID {
		t.Errorf("record 1 before and after the restart: ids %q and %q, want the same", firstID, againID)
	}
	if n := len(r.store.Records()); n != 2 {
		t.Errorf("stored records: got %d, want 2", n)
	}
}
