package queue

import "errors"

// ErrUnavailable means JetStream cannot durably store a record right now (not connected, no
// answer, or storage full). Callers refuse the record with a retry hint (HTTP 503, HL7 AE) and
// must not acknowledge it to the source.
var ErrUnavailable = errors.New("jetstream unavailable")
