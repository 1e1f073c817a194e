package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The headers stages pass each other, beside a message's body. They are written and read only
// in this file, through RawEnvelope and OutboxEnvelope, so that every field is named, encoded
// and checked in one place (docs/architecture.md, "The envelope").
const (
	hdrSource       = "Psgw-Source"
	hdrLocalID      = "Psgw-Local-Id"
	hdrKey          = "Psgw-Key"
	hdrKind         = "Psgw-Kind"
	hdrRevision     = "Psgw-Revision"
	hdrReceived     = "Psgw-Received-At"
	hdrRejectReason = "Psgw-Reject-Reason"
	hdrOrigin       = "Psgw-Origin"
	hdrRawSeq       = "Psgw-Raw-Seq"
	hdrHash         = "Psgw-Payload-Hash"
	hdrReplay       = "Psgw-Replay"
	hdrRecordID     = "Psgw-Record-Id"
)

// RawEnvelope is what travels with a raw record in the raw stream: written by the ingest
// publisher, read by the mapper (and replay) and by the status API for a record not yet
// mapped.
type RawEnvelope struct {
	// Kind is the record's kind ("incident", "adt", ...), a part of its subject.
	Kind   string
	Source string
	// LocalID is the incident's id in its source; Key is the incident key derived from it,
	// which subjects and ledger keys use instead.
	LocalID string
	Key     string
	// RecordID is the record's id: its revision, or with none a hash of its content. It is
	// the Nats-Msg-Id, on which JetStream drops re-sends, unless After is set.
	RecordID string
	// After, when set, is the RecordID of the incident's newest record already in the stream
	// when this one was stored. The Nats-Msg-Id is then RecordID and a hash of After, so that
	// content changed back to an earlier text (A, B, A) is a new message while a re-send of
	// the newest record is still dropped (docs/architecture.md, "1. Ingest").
	After string
	// Revision is the source's revision of the incident; 0 when it sends none.
	Revision   int
	ReceivedAt time.Time
	// RejectReason, when set, is why the adapter could not read the source record: the
	// mapper quarantines the record with it, unless the record reads as the incident after
	// all (see mapper.Mapper.Map).
	RejectReason string
	// Origin says where in its source the record was read ("file F line N"), for the
	// reasons it is quarantined for; empty when the adapter says nothing.
	Origin string
}

// Subject is the record's subject in the raw stream.
func (e RawEnvelope) Subject() string { return RawSubject(e.Kind, e.Source, e.Key) }

func (e RawEnvelope) header() nats.Header {
	h := nats.Header{}
	h.Set(hdrKind, e.Kind)
	h.Set(hdrSource, e.Source)
	h.Set(hdrLocalID, e.LocalID)
	h.Set(hdrKey, e.Key)
	if e.Revision > 0 {
		h.Set(hdrRevision, strconv.Itoa(e.Revision))
	}
	if !e.ReceivedAt.IsZero() {
		h.Set(hdrReceived, e.ReceivedAt.Format(time.RFC3339Nano))
	}
	if e.RejectReason != "" {
		h.Set(hdrRejectReason, e.RejectReason)
	}
	if e.Origin != "" {
		h.Set(hdrOrigin, e.Origin)
	}
	if e.After != "" {
		h.Set(hdrRecordID, e.RecordID)
	}
	return h
}

// MsgID is the record's Nats-Msg-Id: RecordID, followed by a hash of After when it is set.
func (e RawEnvelope) MsgID() string {
	if e.After == "" {
		return e.RecordID
	}
	sum := sha256.Sum256([]byte(e.After))
	return e.RecordID + ".a" + hex.EncodeToString(sum[:8])
}

// PublishRaw stores a raw record durably with its envelope, on the envelope's subject with
// its RecordID as Nats-Msg-Id, and returns after the PubAck; see PublishTTL for ttl. The
// envelope needs a kind, source, key and record id.
func (q *Queue) PublishRaw(ctx context.Context, env RawEnvelope, data []byte, ttl time.Duration) (PubResult, error) {
	if env.Kind == "" || env.Source == "" || env.Key == "" || env.RecordID == "" {
		return PubResult{}, errors.New("raw record needs kind, source, key and record id")
	}
	return q.PublishTTL(ctx, env.Subject(), env.MsgID(), data, env.header(), ttl)
}

// ReadRawEnvelope reads a stored raw record's envelope. Source and key are required; the other
// fields may be absent (a record without a revision, say) but must parse when present. An
// error wraps ErrBadEnvelope and names each header at fault, and the envelope holds every
// field that could be read, so that a reader with a source and key can still record the
// problem against the incident.
func ReadRawEnvelope(h nats.Header) (RawEnvelope, error) {
	e := RawEnvelope{Kind: h.Get(hdrKind), Source: h.Get(hdrSource), LocalID: h.Get(hdrLocalID), Key: h.Get(hdrKey),
		RecordID: h.Get(nats.MsgIdHdr), RejectReason: h.Get(hdrRejectReason), Origin: h.Get(hdrOrigin)}
	if id := h.Get(hdrRecordID); id != "" {
		e.RecordID = id // stored after another record: the message id also names that one
	}
	var errs []error
	errs = append(errs, required(hdrSource, e.Source), required(hdrKey, e.Key))
	if v := h.Get(hdrRevision); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, badHeader(hdrRevision, "is not a whole number of at least 1"))
		} else {
			e.Revision = n
		}
	}
	if v := h.Get(hdrReceived); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			errs = append(errs, badHeader(hdrReceived, "is not an RFC 3339 time"))
		} else {
			e.ReceivedAt = t
		}
	}
	return e, errors.Join(errs...)
}

// OutboxEnvelope is what travels with a mapped resource in the outbox: written by the mapper,
// read by the forwarder.
type OutboxEnvelope struct {
	Source string
	Key    string
	// RawSeq is the raw stream sequence of the record the resource was mapped from: a newer
	// record of the incident supersedes this message.
	RawSeq uint64
	// Revision is the incident's revision as the ledger numbered it.
	Revision int
	// PayloadHash identifies the resource, to spot one the national service already holds.
	PayloadHash string
	// Replay names the operator who asked for a replay, which sends the resource even where
	// the ledger says the record has settled; "" otherwise.
	Replay string
}

func (e OutboxEnvelope) header() nats.Header {
	h := nats.Header{}
	h.Set(hdrSource, e.Source)
	h.Set(hdrKey, e.Key)
	h.Set(hdrRawSeq, strconv.FormatUint(e.RawSeq, 10))
	h.Set(hdrRevision, strconv.Itoa(e.Revision))
	h.Set(hdrHash, e.PayloadHash)
	if e.Replay != "" {
		h.Set(hdrReplay, e.Replay)
	}
	return h
}

// PublishOutbox stores a mapped resource durably in the outbox with its envelope, on the
// source's outbox subject with msgID as Nats-Msg-Id, and returns after the PubAck.
func (q *Queue) PublishOutbox(ctx context.Context, env OutboxEnvelope, msgID string, payload []byte) (PubResult, error) {
	if env.Source == "" || env.Key == "" || env.RawSeq == 0 || env.PayloadHash == "" {
		return PubResult{}, errors.New("outbox message needs source, key, raw sequence and payload hash")
	}
	return q.Publish(ctx, OutboxSubjectOf(env.Source), msgID, payload, env.header())
}

// ReadOutboxEnvelope reads an outbox message's envelope. Every field but Replay is required.
// An error wraps ErrBadEnvelope and names each header at fault; the envelope holds every
// field that could be read.
func ReadOutboxEnvelope(h nats.Header) (OutboxEnvelope, error) {
	e := OutboxEnvelope{Source: h.Get(hdrSource), Key: h.Get(hdrKey), PayloadHash: h.Get(hdrHash), Replay: h.Get(hdrReplay)}
	errs := []error{required(hdrSource, e.Source), required(hdrKey, e.Key), required(hdrHash, e.PayloadHash)}
	if n, err := strconv.ParseUint(h.Get(hdrRawSeq), 10, 64); err != nil || n == 0 {
		errs = append(errs, badHeader(hdrRawSeq, "is not a stream sequence"))
	} else {
		e.RawSeq = n
	}
	if n, err := strconv.Atoi(h.Get(hdrRevision)); err != nil || n < 0 {
		errs = append(errs, badHeader(hdrRevision, "is not a whole number"))
	} else {
		e.Revision = n
	}
	return e, errors.Join(errs...)
}

// OutboxKey names the incident an outbox message belongs to, from its envelope's source and
// key, which every outbox message carries (whichever subject it was published on): the unit
// of ordering when delivering (DispatchOptions.Key).
func OutboxKey(m jetstream.Msg) string {
	h := m.Headers()
	return h.Get(hdrSource) + "." + h.Get(hdrKey)
}

func required(name, v string) error {
	if v == "" {
		return badHeader(name, "is missing")
	}
	return nil
}

// badHeader names the header and the rule it breaks, never its value: a corrupt header could
// hold anything, and the error is shown to operators.
func badHeader(name, rule string) error {
	return fmt.Errorf("%w: header %s %s", ErrBadEnvelope, name, rule)
}
