package ledger

import "errors"

// ErrNotFound means the ledger has no entry for the incident: the gateway never mapped it
// (it may still wait in the raw stream).
var ErrNotFound = errors.New("no ledger entry")

// ErrNoChange, returned by an Update function, means there is nothing to write; Update then
// returns the entry as read, without error.
var ErrNoChange = errors.New("no change")

// ErrNoChangeIfCurrent, returned by an Update function, means there is nothing to write
// provided the entry as read is the entry as it is: a decision that something is absent
// (such as "this send's in-flight marker is gone, its outcome is recorded") must not be made
// on a read that may be stale (a replicated bucket's reads can come from a replica a write
// behind). Update then writes the entry back unchanged with compare-and-set: if it was
// current the write succeeds and Update returns the entry without error, as for ErrNoChange;
// if not, the write fails as a conflict and the function is called again on a fresh read.
var ErrNoChangeIfCurrent = errors.New("no change, if the entry read is current")

// ErrNotResolvable means the incident is not in a state that the requested action applies to.
// Tell the operator its current state; nothing was changed.
var ErrNotResolvable = errors.New("incident is not in a state this action applies to")

// ErrAwaitingResolution, always wrapped with ErrNotResolvable, means a replay was refused
// because a POST of the incident had an unknown outcome: only resolve (resend, or delivered
// with the national id) may act on it.
var ErrAwaitingResolution = errors.New("an earlier POST's outcome is unknown")

// ErrNoRawRecord, from a replay, means the incident's raw record is no longer kept (older than
// queue.raw_max_age), so it cannot be re-mapped; the source must send it again.
var ErrNoRawRecord = errors.New("raw record no longer kept")
