package queue

import "errors"

// ErrUnavailable means JetStream cannot durably store a record right now (not connected, no
// answer, or storage full). Callers refuse the record with a retry hint (HTTP 503, HL7 AE) and
// must not acknowledge it to the source.
var ErrUnavailable = errors.New("jetstream unavailable")

// ErrTooLarge means a message is larger than the NATS server takes in one message
// (max_payload). Sending it again cannot help: callers refuse the record for good (HTTP 413,
// HL7 AR, a quarantined row) instead of answering "try again later".
var ErrTooLarge = errors.New("larger than the queue takes in one message")

// ErrBadEnvelope means a message's envelope (the psgw headers beside its body) lacks a field
// it needs or holds one that does not parse: the message cannot be trusted to say what it is.
// The reader quarantines it, or reports it where there is no incident to record it against;
// it never guesses the field.
var ErrBadEnvelope = errors.New("unreadable message envelope")
