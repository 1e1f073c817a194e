package ledger

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The transitions of a send (docs/architecture.md, "3. Forward"). The forwarder reads the entry,
// asks Judge what to do with an outbox message, and records each step with one of these
// methods inside Ledger.Update; it owns the acks, retries and pauses around them.

// Outgoing is an outbox message as the ledger judges it.
type Outgoing struct {
	// RawSeq is the raw stream sequence of the record the resource was mapped from.
	RawSeq uint64
	// Revision is the incident's revision the resource carries.
	Revision    int
	PayloadHash string
	// Replay: an operator asked for it, so it is sent even where its record has settled.
	Replay bool
	// SentAs summarises the payload of a POST for the operator, should its outcome be unknown.
	SentAs SentAs
}

// Verdict is what the forwarder is to do with an outbox message.
type Verdict int

// The verdicts, in the order Judge tests them.
const (
	// Send it.
	Send Verdict = iota
	// Superseded: a newer record of the incident is queued with its own message; drop this one.
	Superseded
	// Unchanged: the national service holds this very payload; note it delivered (NoteUnchanged)
	// and drop the message.
	Unchanged
	// Settled: this record already ended in a state that needs an operator; drop the message.
	Settled
	// AwaitsResolution: an earlier POST's outcome is unknown, and sending this revision could
	// duplicate it; note that it waits (NoteWaiting) and drop the message.
	AwaitsResolution
	// InterruptedPost: a POST of the incident was in flight when the gateway stopped, so the
	// national service may hold it: settle it unknown (StoppedMidPost), or under the retry
	// policy flag it a possible duplicate (FlagPossibleDuplicate) and send it.
	InterruptedPost
)

// Judge says what to do with outbox message o for the incident e.
func (e *Entry) Judge(o Outgoing) Verdict {
	switch {
	case e.RawSeq > o.RawSeq:
		return Superseded
	case e.NationalID != "" && e.DeliveredHash == o.PayloadHash:
		return Unchanged
	case e.State.NeedsOperator() && e.RawSeq == o.RawSeq && !o.Replay:
		return Settled
	case e.AwaitingResolution():
		return AwaitsResolution
	case e.postInFlight():
		return InterruptedPost
	}
	return Send
}

// NoteUnchanged records that the national service already holds the payload to be sent. It
// returns ErrNoChange when the entry says delivered already.
func (e *Entry) NoteUnchanged(now time.Time) error {
	if e.State == StateDelivered {
		return ErrNoChange
	}
	e.InFlight = nil
	e.Note(now, StateDelivered, "unchanged payload; national service already holds it", "")
	return nil
}

// NoteWaiting records that a revision waits for an operator to resolve an earlier POST whose
// outcome is unknown.
func (e *Entry) NoteWaiting(now time.Time, revision int) {
	e.Note(now, StateUnknown, "revision "+strconv.Itoa(revision)+" waits: an earlier POST's outcome is unknown", "")
}

// FlagPossibleDuplicate marks the incident as possibly held twice nationally: it is sent again
// after a POST whose outcome is unknown (national.on_ambiguous_post: retry).
func (e *Entry) FlagPossibleDuplicate() { e.PossibleDuplicate = true }

// StartSend records a send of o as in flight, before the request goes out, and returns the
// national id the send is to amend ("" for a POST, which creates one). Finding the marker
// later, with no outcome recorded, means the gateway stopped mid-send.
func (e *Entry) StartSend(now time.Time, o Outgoing) (nationalID string) {
	method := http.MethodPost
	if e.NationalID != "" {
		method = http.MethodPut
	}
	e.Attempts++
	if e.FirstAttemptAt.IsZero() {
		e.FirstAttemptAt = now
	}
	e.InFlight = &InFlight{Method: method, PayloadHash: o.PayloadHash, RawSeq: o.RawSeq, StartedAt: now, Revision: o.Revision,
		Replica: e.replica, Instance: e.instance}
	if method == http.MethodPost {
		e.InFlight.SentAs = o.SentAs
	}
	if method == http.MethodPut {
		// From here until a 2xx the national service may hold either version (a PUT can be
		// applied and its answer lost), so no later payload may be skipped as "already
		// delivered" on the strength of the old hash.
		e.DeliveredHash = ""
	}
	e.State, e.UpdatedAt = StateDelivering, now
	return e.NationalID
}

// SendNotMade withdraws the in-flight marker this gateway wrote at startedAt for a send it
// then gave up before any request went out (the marker's write answer was lost and it could
// not find the marker): left, the marker would read as a POST interrupted and make the
// incident unknown although nothing was sent. It reports whether the marker was found; the
// incident is queued again.
func (e *Entry) SendNotMade(now, startedAt time.Time) bool {
	fl := e.InFlight
	if fl == nil || fl.Instance != e.instance || !fl.StartedAt.Equal(startedAt) {
		return false
	}
	e.InFlight = nil
	if e.Attempts > 0 {
		e.Attempts--
	}
	e.State, e.UpdatedAt = StateQueued, now
	return true
}

// Sending reports whether the entry holds this gateway's in-flight marker written at
// startedAt: that send's outcome is not recorded yet. An outcome is written only over it,
// since a write heard to fail may have been stored after all, and written again over a
// newer revision's delivery it would take the incident back to an older one.
func (e *Entry) Sending(startedAt time.Time) bool {
	fl := e.InFlight
	return fl != nil && fl.Instance == e.instance && fl.StartedAt.Equal(startedAt)
}

// Answer is what the national service said when it accepted a send.
type Answer struct {
	// Put: the send amended the national id the entry holds; else it created NationalID.
	Put        bool
	NationalID string
	Reference  string
	Version    string
	Warnings   []string
}

// Delivered records that the national service holds o. If a newer revision was mapped while o
// was in flight, the incident stays queued for it.
func (e *Entry) Delivered(now time.Time, o Outgoing, a Answer) {
	if !a.Put {
		e.NationalID = a.NationalID
	}
	if a.Reference != "" {
		e.NationalReference = a.Reference
	}
	if a.Version != "" {
		e.NationalVersion = a.Version
	}
	e.InFlight = nil
	e.DeliveredHash, e.DeliveredRevision, e.DeliveredAt = o.PayloadHash, o.Revision, now
	e.LastError = ""
	detail := "POST created national id " + e.NationalID
	if a.Put {
		detail = "PUT amended national id " + e.NationalID
	}
	if len(a.Warnings) > 0 {
		detail += "; warnings: " + joinMax(a.Warnings, 1000)
	}
	if e.RawSeq > o.RawSeq {
		e.Note(now, StateQueued, detail+" (revision "+strconv.Itoa(o.Revision)+"); a newer revision is queued", "")
		return
	}
	e.Note(now, StateDelivered, detail, "")
}

// Reject records that the national service refused the payload of the record at rawSeq.
func (e *Entry) Reject(now time.Time, rawSeq uint64, detail string) {
	e.LastError = detail
	e.settle(now, rawSeq, StateRejected, detail)
}

// AnswerLost records a POST of payloadHash that may have been stored without the gateway
// hearing so (detail says how): unknown until an operator resolves it.
func (e *Entry) AnswerLost(now time.Time, rawSeq uint64, payloadHash, detail string) {
	e.LastError = detail
	e.UnknownHash = payloadHash
	e.noteUnknownSend()
	e.settle(now, rawSeq, StateUnknown, detail+"; the national service may hold the event. Resolve it with its national id or resend")
}

// noteUnknownSend keeps the in-flight POST as the send an operator must resolve.
func (e *Entry) noteUnknownSend() {
	if e.InFlight != nil {
		sent := *e.InFlight
		e.UnknownSend = &sent
	}
}

// StoppedMidPost records that the gateway stopped while a POST of payloadHash was in flight:
// the national service may hold the event, so it is unknown until an operator resolves it.
func (e *Entry) StoppedMidPost(now time.Time, rawSeq uint64, payloadHash string) {
	e.UnknownHash = payloadHash
	e.noteUnknownSend()
	e.settle(now, rawSeq, StateUnknown, "the gateway stopped while a POST was in flight; the national service may hold the event. Resolve it with its national id or resend")
}

// settle ends the send of the record at rawSeq in st. If a newer revision is queued meanwhile
// the outcome is only history, unless it is unknown: then nothing more may be POSTed.
func (e *Entry) settle(now time.Time, rawSeq uint64, st State, detail string) {
	e.InFlight = nil
	if e.RawSeq > rawSeq && st != StateUnknown {
		e.Note(now, e.State, "older revision "+string(st)+": "+detail, "")
		return
	}
	e.Note(now, st, detail, "")
}

// KeyRefused records a send that the national service refused for the subscription key: the
// fault is the gateway's, not the incident's, so the attempt is given back, and the incident
// is held with reason until delivery resumes.
func (e *Entry) KeyRefused(now time.Time, detail, reason string) {
	e.Attempts--
	e.InFlight = nil
	e.LastError = detail
	e.Note(now, StateHeld, reason, "")
}

// Hold records that the incident waits for delivery to resume, for reason. It returns
// ErrNoChange when it is held already.
func (e *Entry) Hold(now time.Time, reason string) error {
	if e.State == StateHeld {
		return ErrNoChange
	}
	e.Note(now, StateHeld, reason, "")
	return nil
}

// SendFailed records a send of the record at rawSeq that failed in a way that may pass
// (detail says how). The incident is retrying, or failed once it has used maxAttempts sends
// or maxAge (0: no limit) has passed since its first; superseded says a newer revision is
// queued, so this outcome is only history.
func (e *Entry) SendFailed(now time.Time, rawSeq uint64, detail string, maxAttempts int, maxAge time.Duration) (superseded, failed bool) {
	e.InFlight = nil
	if e.RawSeq > rawSeq {
		// The newer revision's own message carries on; this outcome is only history.
		e.Note(now, e.State, "older revision not sent: "+detail+"; a newer revision is queued", "")
		return true, false
	}
	e.LastError = detail
	failed = e.Attempts >= maxAttempts || (maxAge > 0 && now.Sub(e.FirstAttemptAt) > maxAge)
	if failed {
		e.Note(now, StateFailed, "retries used up after "+strconv.Itoa(e.Attempts)+" attempts: "+detail, "")
	} else {
		e.Note(now, StateRetrying, detail, "")
	}
	return false, failed
}

// Undeliverable records that the outbox message of the record at rawSeq reached JetStream's
// delivery limit without a recorded outcome (detail says how often), and returns the state it
// left the incident in: unknown if a POST was in flight (a replay must not quietly POST it
// again), else failed. It returns ErrNoChange, with the state as it is, when a newer record
// superseded the message, or the incident is delivered, unknown or failed already.
func (e *Entry) Undeliverable(now time.Time, rawSeq uint64, detail string) (State, error) {
	// Unknown or failed already: every replica hears the advisory, and the first recorded it.
	if e.RawSeq > rawSeq || e.State == StateDelivered || e.State == StateUnknown || e.State == StateFailed {
		return e.State, ErrNoChange
	}
	if e.postInFlight() {
		e.UnknownHash = e.InFlight.PayloadHash
		e.noteUnknownSend()
		e.InFlight = nil
		e.LastError = detail + "; a POST was in flight, so the national service may hold the event"
		e.Note(now, StateUnknown, e.LastError+". Resolve it with its national id or resend", "")
		return StateUnknown, nil
	}
	e.InFlight = nil
	e.LastError = detail
	e.Note(now, StateFailed, detail, "")
	return StateFailed, nil
}

// Unreadable records that an outbox message of the incident could not be read (detail names
// the header at fault): it can never be sent as it is, so the incident is failed, for an
// operator to replay, which maps it afresh. rawSeq is the message's raw sequence, 0 when that
// is what could not be read; a message of a record older than the entry's is only history.
func (e *Entry) Unreadable(now time.Time, rawSeq uint64, detail string) {
	if rawSeq != 0 && e.RawSeq > rawSeq {
		e.Note(now, e.State, "older revision's outbox message unreadable: "+detail+"; a newer revision is queued", "")
		return
	}
	e.LastError = detail + "; replay it to map it afresh"
	e.Note(now, StateFailed, e.LastError, "")
}

// joinMax joins items with "; ", cut at limit bytes.
func joinMax(items []string, limit int) string {
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(it)
		if b.Len() > limit {
			return b.String()[:limit] + "…"
		}
	}
	return b.String()
}
