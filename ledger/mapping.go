package ledger

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/fhir/privacy"
)

// Mapping is one raw record as the mapper read, mapped and checked it: what the ledger needs to
// record it.
type Mapping struct {
	Source, LocalID string
	ReceivedAt      time.Time
	// RawSeq is the record's sequence in the raw stream.
	RawSeq uint64
	// RecordID is the record's message id: its revision, or with none a hash of its content
	// (docs/architecture.md).
	RecordID string
	// Revision is the revision the source gave; 0 when it gives none.
	Revision int
	// PayloadHash identifies the mapped resource; "" when Problems is set.
	PayloadHash string
	// Problems says why the record could not be mapped or validated, every problem naming its
	// field; "" for a valid resource.
	Problems string
	// Redacted counts the identifiers removed from the payload's free text, by kind.
	Redacted privacy.Counts
	// Warnings are what the mapping did not use or fell back on; they replace the entry's.
	Warnings []Warning
	// TaxonomyVersion is the taxonomy the resource follows, for the history.
	TaxonomyVersion int
	// Replay names the operator who asked for a replay; "" on the normal path.
	Replay string
	// Resend lets a replay go ahead for an incident waiting on a POST whose outcome is unknown:
	// an operator chose to resend it (resolve's resend).
	Resend bool
	// HeldReason, when set, holds the queued incident with this reason (no national endpoint).
	HeldReason string
}

// Mapped is what recording a Mapping decided.
type Mapped struct {
	// Publish: put the resource in the outbox; the incident is queued (or held).
	Publish bool
	// Republish: Publish for a record already recorded, redelivered after a crash between the
	// ledger write and the outbox publish; the outbox drops it if it got there.
	Republish bool
	// Quarantined: the record could not be mapped or validated.
	Quarantined bool
	// NewRecord: the first time this raw record is recorded (a replay of it is not).
	NewRecord bool
}

// Map records m for the incident at key (docs/architecture.md, "2. Map") and returns the entry
// as it now stands and what was decided.
func (l *Ledger) Map(ctx context.Context, key string, m Mapping) (*Entry, Mapped, error) {
	now := l.now().UTC()
	var res Mapped
	e, err := l.Update(ctx, key, func(e *Entry, exists bool) error {
		var err error
		res, err = e.RecordMapping(m, exists, now)
		if err == nil && res.Publish && !exists && m.Replay == "" && m.RawSeq <= l.restoredThrough {
			e.restoredUnmapped(now)
			res.Publish = false
		}
		return err
	})
	return e, res, err
}

// RecordMapping records m in the entry (exists false for an incident the ledger has not seen).
// A record older than the one the entry holds never overwrites it, a re-sent record changes
// nothing (both return ErrNoChange), and an older explicit revision is only noted. A replay
// (m.Replay set) records the record again whatever the entry holds, but an incident waiting on
// a POST whose outcome is unknown is refused with ErrAwaitingResolution unless m.Resend is
// set. A newer revision of such an incident is recorded and waits in unknown.
func (e *Entry) RecordMapping(m Mapping, exists bool, now time.Time) (Mapped, error) {
	var res Mapped
	if !exists {
		e.Source, e.LocalID, e.ReceivedAt = m.Source, m.LocalID, m.ReceivedAt
	}
	if m.Replay == "" {
		switch {
		case m.RawSeq < e.RawSeq:
			return res, ErrNoChange // an older record redelivered: already superseded
		case m.RawSeq == e.RawSeq:
			// Redelivered after a crash between the ledger write and the outbox publish:
			// publish again; the outbox drops it if it got there.
			res.Publish = e.State == StateQueued || e.State == StateHeld
			res.Republish = res.Publish
			return res, ErrNoChange
		case exists && m.RecordID != "" && m.RecordID == e.ContentHash:
			return res, ErrNoChange // the same record re-sent after the duplicate window
		case m.Revision > 0 && m.Revision < e.Revision:
			e.Note(now, e.State, fmt.Sprintf("revision %d ignored: revision %d is newer", m.Revision, e.Revision), "")
			return res, nil
		}
	}
	if m.Replay == "" || m.RawSeq > e.RawSeq {
		switch {
		case m.Revision > 0:
			e.Revision = m.Revision
		case m.Replay == "":
			// A source without revisions: its records are numbered from 1, up to
			// fhir.MaxRevision and never past it, so that no count can wrap.
			e.Revision = fhir.NextRevision(e.Revision)
		}
	}
	if m.Replay != "" && e.AwaitingResolution() {
		if !m.Resend {
			return res, fmt.Errorf("%w: %w; resolve it with its national id, or resend it", ErrNotResolvable, ErrAwaitingResolution)
		}
		// Resending after an unknown outcome: the national service may now hold it twice.
		e.PossibleDuplicate, e.UnknownHash, e.UnknownSend = true, "", nil
	}
	if res.NewRecord = m.RawSeq != e.RawSeq; res.NewRecord {
		// Counted once per record: a replay of the same record redacts the same strings.
		e.Redactions += m.Redacted.Total()
	}
	e.RawSeq, e.ContentHash, e.PayloadHash = m.RawSeq, m.RecordID, m.PayloadHash
	e.Attempts, e.FirstAttemptAt = 0, time.Time{}
	e.Warnings = keptWarnings(m.Warnings)
	if m.Problems != "" {
		e.LastError = m.Problems
		e.Note(now, StateQuarantined, e.LastError+warningsDetail(m.Warnings), m.Replay)
		res.Quarantined = true
		return res, nil
	}
	e.LastError = ""
	detail := "mapped to LFPSE taxonomy v" + strconv.Itoa(m.TaxonomyVersion) + redactionsDetail(m.Redacted) + warningsDetail(m.Warnings)
	if m.Replay != "" {
		detail = "replayed: " + detail
	}
	if m.Replay == "" && e.AwaitingResolution() {
		// An earlier POST's outcome is unknown: sending this revision could create a
		// duplicate, so it waits for an operator to resolve the unknown send.
		e.Note(now, StateUnknown, detail+"; revision "+strconv.Itoa(e.Revision)+" waits until the earlier unknown send is resolved", m.Replay)
		return res, nil
	}
	e.Note(now, StateQueued, detail, m.Replay)
	if m.HeldReason != "" {
		e.Note(now, StateHeld, m.HeldReason, "")
	}
	res.Publish = true
	return res, nil
}

// keptWarnings is ws as an entry keeps it: at most MaxWarnings, the last of them counting
// those left out.
func keptWarnings(ws []Warning) []Warning {
	if len(ws) <= MaxWarnings {
		return slices.Clone(ws)
	}
	out := slices.Clone(ws[:MaxWarnings-1])
	return append(out, Warning{Message: strconv.Itoa(len(ws)-MaxWarnings+1) + " more warnings not kept"})
}

// shownWarnings is how many warnings a history entry lists; the rest are in the entry's
// warnings.
const shownWarnings = 3

// warningsDetail is the part of a history entry that lists the mapping's warnings: their
// number and the first few, so that the history says what each mapping left out.
func warningsDetail(ws []Warning) string {
	if len(ws) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "; %d %s", len(ws), plural(len(ws), "warning", "warnings"))
	if n := Fallbacks(ws); n > 0 {
		fmt.Fprintf(&b, " (%d %s)", n, plural(n, "fallback", "fallbacks"))
	}
	for i, w := range ws[:min(len(ws), shownWarnings)] {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString(" | ")
		}
		b.WriteString(ShowableText(w.String(), 200))
	}
	if len(ws) > shownWarnings {
		fmt.Fprintf(&b, " | and %d more", len(ws)-shownWarnings)
	}
	return b.String()
}

// redactionsDetail is the part of a history entry that says what was redacted, by kind.
func redactionsDetail(c privacy.Counts) string {
	total := c.Total()
	if total == 0 {
		return ""
	}
	var parts []string
	for _, k := range privacy.Kinds() {
		if n := c[k]; n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+plural(n, kindWords[k][0], kindWords[k][1]))
		}
	}
	return fmt.Sprintf("; %d %s redacted from free text (%s)", total, plural(total, "identifier", "identifiers"), strings.Join(parts, ", "))
}

// kindWords names each kind of identifier in a history entry.
var kindWords = map[privacy.Kind][2]string{
	privacy.KindNHSNumber:   {"NHS number", "NHS numbers"},
	privacy.KindLocalID:     {"local patient id", "local patient ids"},
	privacy.KindDateOfBirth: {"date of birth", "dates of birth"},
	privacy.KindName:        {"name", "names"},
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// AccountsFor reports whether a record of the incident with this id and revision (0: none) is
// one the entry already accounts for, so that storing it again would add nothing: the newest
// record mapped, sent again (the same id: the same revision, or with no revision the same
// content); or an explicit revision older than the newest mapped one, which mapping would
// only note as ignored. A record without a revision that differs from the newest is an
// amendment, even if it repeats older content.
func (e *Entry) AccountsFor(recordID string, revision int) bool {
	return e.ContentHash == recordID || (revision > 0 && revision < e.Revision)
}

// Resent reports whether a record about to be stored for the incident at key is one its
// entry already accounts for (AccountsFor), with the raw sequence of the record the entry
// holds: a re-send after JetStream's duplicate window, answered as a duplicate
// (docs/delivery.md, "No duplicates from re-sends"). It reads with LookupRecent, so an
// incident the ledger has never held (most of them) costs no read; a record whose incident was
// mapped moments ago is not a re-send from after the window. Records stored but not yet
// mapped are not in the ledger yet: for those JetStream's own window answers. Any error
// answers false: the record is stored, and mapping it catches a re-send.
func (l *Ledger) Resent(ctx context.Context, key, recordID string, revision int) (uint64, bool) {
	e, err := l.LookupRecent(ctx, key)
	if err != nil || !e.AccountsFor(recordID, revision) {
		return 0, false
	}
	return e.RawSeq, true
}
