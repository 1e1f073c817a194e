package ledger

import (
	"context"
	"time"
)

// RestoredDetail is the history line of an incident a restore moved to unknown.
const RestoredDetail = "restored from a backup: it was not delivered when the backup was taken and may have reached the national service after that. Check LFPSE, then resolve it with its national id or resend"

// RestoredUnmappedDetail is the history line of an incident whose record was in a backup's raw
// stream but not yet in its ledger, mapped after a restore and moved to unknown.
const RestoredUnmappedDetail = "restored from a backup: its record was stored but not yet mapped when the backup was taken, and may have reached the national service after that. Check LFPSE, then resolve it with its national id or resend"

// restoredUnmapped moves a new entry, just mapped and queued (or held) from a record the
// backup the store was restored from held but its ledger did not (Options.RestoredThrough),
// to unknown: the gateway the backup was taken from may have mapped and delivered it after
// the backup, and the ledger that said so is lost. Sending it could create a duplicate
// (docs/deploy.md, "What a restore brings back").
func (e *Entry) restoredUnmapped(now time.Time) {
	e.restoredUnknown(now, e.PayloadHash, RestoredUnmappedDetail)
}

// restoredUnknown moves the entry to unknown, waiting on a send of the payload hash (one is
// made up when there is none, so that the entry awaits resolution), with detail in its history.
func (e *Entry) restoredUnknown(now time.Time, hash, detail string) {
	if hash == "" {
		hash = "restored"
	}
	e.UnknownHash = hash
	e.InFlight = nil
	e.LastError = "restored from a backup: outcome of any send after it unknown"
	e.Note(now, StateUnknown, detail, "")
}

// RestoredUnsure moves an incident to unknown when the backup it was restored from cannot say
// whether the national service has it: it was queued, being sent or waiting to retry, with no
// national id yet, so a POST of it may have been answered after the backup was taken. Sending
// it again could create a duplicate (docs/deploy.md, "What a restore brings back"). An
// amendment waiting to be PUT to the id the entry holds is left to go: a PUT again to the same
// id creates nothing. It returns ErrNoChange for an entry it leaves.
func (e *Entry) RestoredUnsure(now time.Time) error {
	switch e.State {
	case StateQueued, StateDelivering, StateRetrying:
	default:
		return ErrNoChange
	}
	if e.NationalID != "" {
		return ErrNoChange
	}
	hash := e.PayloadHash
	if e.InFlight != nil && e.InFlight.PayloadHash != "" {
		hash = e.InFlight.PayloadHash
	}
	e.restoredUnknown(now, hash, RestoredDetail)
	return nil
}

// MarkRestored applies RestoredUnsure to every entry, for `psgw restore`, and returns how many
// it moved to unknown.
func (l *Ledger) MarkRestored(ctx context.Context) (int, error) {
	var keys []string
	err := l.List(ctx, func(key string, e *Entry) bool {
		switch e.State {
		case StateQueued, StateDelivering, StateRetrying:
			if e.NationalID == "" {
				keys = append(keys, key)
			}
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, key := range keys {
		moved := false
		_, err := l.Update(ctx, key, func(e *Entry, exists bool) error {
			if !exists {
				return ErrNoChange
			}
			err := e.RestoredUnsure(l.now().UTC())
			moved = err == nil
			return err
		})
		if err != nil {
			return n, err
		}
		if moved {
			n++
		}
	}
	return n, nil
}
