package ledger

import "errors"

// ErrNotFound means the ledger has no entry for the incident: the gateway never mapped it
// (it may still wait in the raw stream).
var ErrNotFound = errors.New("no ledger entry")

// ErrNoChange, returned by an Update function, means there is nothing to write; Update then
// returns the entry as read, without error.
var ErrNoChange = errors.New("no change")

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
