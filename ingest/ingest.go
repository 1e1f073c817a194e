// Package ingest is psgw's plug-in boundary for local source systems. An adapter receives or
// pulls records from one kind of source (HTTP push, HL7 v2 over MLLP, CSV drop folder, SQL
// polling) and hands each to a Publisher, which returns only once the record is durably stored.
// Only then may the adapter acknowledge the record to its source. Adapters never import the
// queue, the forwarder or the NATS client: the Publisher is all they see of the pipeline.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"
)

// Record kinds. The kind decides which stage consumes the record.
const (
	KindIncident = "incident"
	KindADT      = "adt"
)

// Record is one source record on its way to durable storage.
type Record struct {
	// Kind is KindIncident or KindADT.
	Kind string
	// Source is the sending system's name ([a-z0-9_-]{1,64}).
	Source string
	// LocalID identifies the record in the source (an incident id, an HL7 control id).
	LocalID string
	// Key is IncidentKey(Source, LocalID), safe for subjects and bucket keys.
	Key string
	// ID is the deduplication id (Nats-Msg-Id): the same source record always yields the same
	// ID, so a re-send is dropped. See IncidentRecordID.
	ID string
	// Revision is the source's revision of the record, 0 when it has none.
	Revision int
	// Data is the record exactly as received, kept for replay.
	Data []byte
	// ReceivedAt is when the gateway received it.
	ReceivedAt time.Time
	// Reason, when not empty, marks a source record the adapter could not read (a ragged CSV
	// row, a database row without an id). It is stored all the same, so that the operator can
	// see it, and the mapper quarantines it with this reason instead of mapping it. Say where
	// the record was ("file F line N: ...") and why; never quote record content. A record
	// the adapter read but whose content breaks the ingest rules (a word its source's code
	// maps lack) has no Reason: the mapper finds its problems each time it maps it, so a
	// fixed code map and a replay deliver it.
	Reason string
	// Origin, when not empty, says where in the source the record was read ("file F line
	// N"); the mapper puts it before the problems of a record it quarantines.
	Origin string
}

// PublishResult is the durable store's answer.
type PublishResult struct {
	// Seq is the record's position in the raw stream.
	Seq uint64
	// Duplicate is true when the same record was stored before; nothing new was stored.
	Duplicate bool
}

// Publisher stores records durably. Publish returns only after the write is durable (the
// JetStream PubAck), so an adapter may acknowledge its source as soon as it returns nil. An
// error wrapping ErrUnavailable means "not stored, try again later". Safe for concurrent use.
type Publisher interface {
	Publish(ctx context.Context, rec Record) (PublishResult, error)
}

// ErrUnavailable means the record was not stored because durable storage cannot take it now
// (queue down, storage full). Refuse the record with a retry hint (HTTP 503, HL7 AE) and do not
// acknowledge it to the source.
var ErrUnavailable = errors.New("durable storage unavailable")

// Unavailable returns an error wrapping ErrUnavailable (and err, when not nil) that names
// cause: a few words an adapter may tell its source ("server unreachable", "no JetStream
// quorum"; docs/cluster.md, "What each failure costs"), so that a 503 or an AE says why. cause
// must hold no record content and no address; "" names none.
func Unavailable(cause string, err error) error {
	return &unavailableError{cause: cause, err: err}
}

// UnavailableCause is the cause an error made by Unavailable names, or "" for any other.
func UnavailableCause(err error) string {
	var u *unavailableError
	if errors.As(err, &u) {
		return u.cause
	}
	return ""
}

type unavailableError struct {
	cause string
	err   error
}

func (e *unavailableError) Error() string {
	msg := ErrUnavailable.Error()
	if e.cause != "" {
		msg += ": " + e.cause
	}
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg
}

func (e *unavailableError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrUnavailable}
	}
	return []error{ErrUnavailable, e.err}
}

// ErrTooLarge means the record is larger than durable storage takes in one message. Retrying
// cannot help: refuse it for good (HTTP 413, HL7 AR, a quarantined row), never with a retry
// hint, or the source would send it again for ever.
var ErrTooLarge = errors.New("record too large to store")

// IncidentKey derives a subject- and key-safe token for one incident of one source. Local ids
// are free text, so they are hashed; 16 bytes of SHA-256 make a collision within a source
// practically impossible.
func IncidentKey(source, localID string) string {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(localID))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// IncidentRecordID is the deduplication id of an incident record: the same source, local id
// and revision are the same record; without a revision, the same content is (contentHash
// should hash a canonical form so that white space does not matter).
func IncidentRecordID(source, key string, revision int, contentHash string) string {
	if revision > 0 {
		return source + "." + key + ".r" + strconv.Itoa(revision)
	}
	return source + "." + key + ".h" + contentHash
}

// StateStore is durable storage for an adapter's own small state: a polling cursor, how far
// into a file it got. The gateway keeps it in JetStream (a KV bucket), so it survives restarts
// and lives beside the records it describes. Keys are any non-empty strings chosen by the
// adapter (the gateway scopes them by adapter name); values are small (at most a few KiB).
// Write state only after the Publish of every record it covers returned nil. Safe for
// concurrent use.
type StateStore interface {
	// Get returns the value stored under key, or nil and no error when there is none.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores value under key, durably, before it returns.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}
