package forwarder

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrNotResolvable means the incident is not in a state that the requested action applies to.
// Tell the operator its current state; nothing was changed.
var ErrNotResolvable = errors.New("incident is not in a state this action applies to")

// ErrAwaitingResolution, always wrapped with ErrNotResolvable, means a replay was refused
// because a POST of the incident had an unknown outcome: only resolve (resend, or delivered
// with the national id) may act on it.
var ErrAwaitingResolution = errors.New("an earlier POST's outcome is unknown")

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
		if e.State != StateUnknown && e.State != StateFailed && !e.AwaitingResolution() {
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
		e.InFlight, e.UnknownHash, e.LastError = nil, "", ""
		stale = e.PayloadHash != "" && e.PayloadHash != held
		e.Note(l.now().UTC(), StateDelivered, "resolved: the national service holds it as "+nationalID, actor)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return e, stale, nil
}

// MarkReviewed records that an operator has looked at a stuck incident.
func (l *Ledger) MarkReviewed(ctx context.Context, key, actor string) (*Entry, error) {
	return l.Update(ctx, key, func(e *Entry, exists bool) error {
		if !exists {
			return ErrNotFound
		}
		switch e.State {
		case StateRejected, StateQuarantined, StateFailed, StateUnknown, StateHeld:
		default:
			return fmt.Errorf("%w: it is %s; only stuck incidents are reviewed", ErrNotResolvable, e.State)
		}
		e.Reviewed = true
		e.Note(l.now().UTC(), e.State, "marked reviewed", actor)
		return nil
	})
}
