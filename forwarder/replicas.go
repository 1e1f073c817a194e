package forwarder

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ledger"
)

// Several gateways on one cluster share the outbox's durable consumer, so two messages of one
// incident (two revisions, or one redelivered while its first send is slow) can be in two
// gateways at once; within one gateway queue.Dispatch keeps them apart, across gateways the
// ledger does (docs/cluster.md, "Two gateways, one incident"):
//   - a send in flight at another gateway that is still running is waited for, not judged
//     interrupted (that would make an incident unknown while its POST succeeds elsewhere);
//   - the write that starts a send fails if another send started since the entry was read,
//     so two gateways never both send after reading the same entry.

// errRaced: another gateway started a send of the incident after its entry was read.
var errRaced = errors.New("another gateway started a send of this incident")

// elsewhereWait is how often an entry whose send is in flight at another gateway is read
// again.
const elsewhereWait = 500 * time.Millisecond

// readSettled reads the incident's entry, waiting while it shows a send in flight at another
// gateway that is still running. The wait ends when that send's outcome is written, or its
// gateway stops (its marker then reads as a crash's, as it is), or ctx ends.
func (f *Forwarder) readSettled(ctx context.Context, lkey string) (*ledger.Entry, *ledger.Snapshot, error) {
	for {
		e, snap, err := f.ledger.Read(ctx, lkey)
		if err != nil || !f.inFlightElsewhere(ctx, e.InFlight) {
			return e, snap, err
		}
		t := time.NewTimer(elsewhereWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
	}
}

// inFlightElsewhere reports whether fl is a send of another gateway run that is alive and
// may still finish it. A send outlives its request's timeout only by the writes of its
// outcome (writeOutcome's minute); a marker older than that is one its gateway lost track
// of (its write's answer was lost) and reads as interrupted, as a dead gateway's does.
func (f *Forwarder) inFlightElsewhere(ctx context.Context, fl *ledger.InFlight) bool {
	if fl == nil || f.cfg.Alive == nil || fl.Instance == "" || fl.Instance == f.cfg.Instance {
		return false
	}
	if f.now().Sub(fl.StartedAt) > f.cfg.Timeout+2*time.Minute {
		return false
	}
	return f.cfg.Alive(ctx, fl.Instance)
}

// stillSend reports whether the entry as it is now, at the write that starts a send, still
// says to send o: the judgement was made on a read that may be stale (a replicated bucket's
// reads can come from a replica a write behind) or that another gateway has changed since.
// A send judged on an entry from before a newer revision was mapped would otherwise PUT the
// older payload over the newer one nationally and leave the newer one undelivered.
func stillSend(e *ledger.Entry, o ledger.Outgoing, judged *ledger.InFlight) bool {
	if !sameInFlight(e.InFlight, judged) {
		return false
	}
	switch e.Judge(o) {
	case ledger.Send:
		return true
	case ledger.InterruptedPost:
		// Judged so too, and flagged a possible duplicate under the retry policy.
		return true
	}
	return false
}

// markerLanded reads the entry after a write of a send's marker whose answer was lost, and
// returns its snapshot and the national id to amend when the marker is this very send's (the
// write was stored), else nil.
func (f *Forwarder) markerLanded(ctx context.Context, lkey string, startedAt time.Time, o ledger.Outgoing) (*ledger.Snapshot, string) {
	for range 5 {
		e, snap, err := f.ledger.Read(ctx, lkey)
		if err == nil {
			fl := e.InFlight
			if fl != nil && fl.Instance == f.cfg.Instance && fl.StartedAt.Equal(startedAt) && fl.PayloadHash == o.PayloadHash {
				return snap, e.NationalID
			}
			// A stale read may not show it yet; a fresh one that does not, never will.
		}
		time.Sleep(time.Second)
	}
	return nil, ""
}

// sameInFlight reports whether two markers are the same send.
func sameInFlight(a, b *ledger.InFlight) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Method == b.Method && a.PayloadHash == b.PayloadHash && a.RawSeq == b.RawSeq &&
		a.StartedAt.Equal(b.StartedAt) && a.Replica == b.Replica && a.Instance == b.Instance
}

// judgeAgain hands m back after a ledger write that failed: soon when the entry changed
// under the judgement (errRaced), so that it is judged again on what the ledger holds now;
// after a pause when the ledger could not be written.
func (f *Forwarder) judgeAgain(m jetstream.Msg, err error, log zerolog.Logger) {
	if errors.Is(err, errRaced) {
		log.Debug().Msg("the incident's entry changed since it was read; judging it again")
		_ = m.NakWithDelay(time.Second)
		return
	}
	log.Warn().Err(err).Msg("ledger write failed before send; will retry")
	_ = m.NakWithDelay(5 * time.Second)
}
