package ledger

import (
	"context"
	"fmt"
	"strings"
)

// The rules of the operator's actions on a stuck incident (docs/delivery.md, "Ambiguous
// sends" and "Actions"; docs/api.md, "Actions"): which incidents may be replayed, resolved,
// resent or marked reviewed, and what resolving records.

// Codes of a refused replay (ReplayRefusal), as the API gives them.
const (
	// RefusalNeedsResolve: a POST of the incident had an unknown outcome. Replaying it would
	// POST it again and could create a second national record, so only the explicit resolve
	// action may do that (resend), or record the national id that LFPSE holds (delivered).
	RefusalNeedsResolve = "needs_resolve"
	// RefusalPostInFlight: a POST of the incident is being sent right now; try again once its
	// outcome is known.
	RefusalPostInFlight = "post_in_flight"
)

// AwaitingReason is why a replay of an incident waiting on an unknown POST is refused.
const AwaitingReason = "an earlier POST of it had an unknown outcome: a replay could create a duplicate national record"

// ReplayRefusal says why a replay must not touch the incident: a replay sends it again, and
// for an incident that may already be held nationally without the gateway knowing its id,
// that would be a silent second POST, a possible duplicate national record. It returns a
// code (RefusalNeedsResolve, RefusalPostInFlight) and a short reason, or two empty strings
// when a replay is safe.
func (e *Entry) ReplayRefusal() (code, reason string) {
	switch {
	case e.State == StateUnknown:
		return RefusalNeedsResolve, "is unknown: a POST of it may have reached the national service, so a replay could create a duplicate national record"
	case e.AwaitingResolution():
		return RefusalNeedsResolve, "is " + string(e.State) + ", but " + AwaitingReason
	case e.postInFlight():
		return RefusalPostInFlight, "is being POSTed to the national service right now: a replay could send it twice"
	}
	return "", ""
}

// Resolvable reports whether the resolve actions (delivered, resend) apply to the incident:
// it is unknown or failed, or its newest revision waits on an unresolved unknown POST.
func (e *Entry) Resolvable() bool {
	return e.State == StateUnknown || e.State == StateFailed || e.AwaitingResolution()
}

// CheckResend returns an error wrapping ErrNotResolvable unless an operator may resend the
// incident (Resolvable).
func (e *Entry) CheckResend() error {
	if !e.Resolvable() {
		return fmt.Errorf("%w: it is %s; resend applies to unknown or failed incidents (use replay otherwise)", ErrNotResolvable, e.State)
	}
	return nil
}

// ResolveDelivered records an operator's confirmation that the national service holds an
// incident whose send had an unknown outcome, under nationalID. Later revisions are then PUT to
// that id. An incident that already holds a national id keeps it: resolving it with a different
// one fails with ErrNotResolvable, since its amendments have gone to the id it holds. It
// reports whether the newest mapped payload differs from the one the national service holds,
// in which case the caller should replay the incident so the difference is sent.
func (l *Ledger) ResolveDelivered(ctx context.Context, key, nationalID, reference, actor string) (*Entry, bool, error) {
	nationalID = strings.TrimSpace(nationalID)
	if nationalID == "" || strings.ContainsAny(nationalID, "/?# ") || len(nationalID) > 128 {
		return nil, false, fmt.Errorf("national_id must be the id the national service gave the event (no spaces or slashes, at most 128 characters)")
	}
	var stale bool
	e, err := l.Update(ctx, key, func(e *Entry, exists bool) error {
		if !exists {
			return ErrNotFound
		}
		if !e.Resolvable() {
			return fmt.Errorf("%w: it is %s; only unknown or failed incidents can be resolved as delivered", ErrNotResolvable, e.State)
		}
		if e.NationalID != "" && e.NationalID != nationalID {
			return fmt.Errorf("%w: it already holds national id %s, and the gateway never replaces one (its amendments go to that id); "+
				"resolve it with national_id %s, or replay it to send its newest revision as a PUT to that id", ErrNotResolvable, e.NationalID, e.NationalID)
		}
		held := e.UnknownHash
		if held == "" {
			held = e.PayloadHash
		}
		e.NationalID, e.NationalReference = nationalID, strings.TrimSpace(reference)
		e.DeliveredHash, e.DeliveredRevision, e.DeliveredAt = held, e.Revision, l.now().UTC()
		e.InFlight, e.UnknownHash, e.UnknownSend, e.LastError = nil, "", nil, ""
		stale = e.PayloadHash != "" && e.PayloadHash != held
		e.Note(l.now().UTC(), StateDelivered, "resolved: the national service holds it as "+nationalID, actor)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return e, stale, nil
}

// MarkReviewed records that an operator has looked at a stuck incident (a Reviewable state).
func (l *Ledger) MarkReviewed(ctx context.Context, key, actor string) (*Entry, error) {
	return l.Update(ctx, key, func(e *Entry, exists bool) error {
		if !exists {
			return ErrNotFound
		}
		if !e.State.Reviewable() {
			return fmt.Errorf("%w: it is %s; only stuck incidents are reviewed", ErrNotResolvable, e.State)
		}
		e.Reviewed = true
		e.Note(l.now().UTC(), e.State, "marked reviewed", actor)
		return nil
	})
}
