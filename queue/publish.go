package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ShutdownNakDelay is how long a consumer that is stopping delays the messages it hands back.
// A plain Nak would send them straight back into the stopping consumer's own pull request,
// which is still open for up to a second; once that request is gone they go to the next start
// instead of waiting out AckWait.
const ShutdownNakDelay = 2 * time.Second

// RawSubject is the subject of a raw record of the given kind ("incident", "adt", ...).
func RawSubject(kind, source, key string) string {
	return "psgw.raw." + kind + "." + source + "." + key
}

// OutboxSubjectOf is the subject of a mapped resource awaiting delivery: the source alone.
// The incident it belongs to travels in its headers (see OutboxKey), not in the subject,
// because JetStream keeps an index entry in memory for every distinct subject a stream holds:
// with a subject per incident, a backlog of a million queued incidents held a million
// entries (about 200 bytes each) for nothing, since nothing looks outbox messages up by
// subject.
func OutboxSubjectOf(source string) string {
	return "psgw.outbox." + source
}

// OutboxSubjectFor is the subject outbox messages had before OutboxSubjectOf, with the
// incident key. The outbox stream still takes it, and the forwarder routes such messages by
// their headers like any other, so an outbox written by an older psgw drains unchanged.
func OutboxSubjectFor(source, key string) string {
	return "psgw.outbox." + source + "." + key
}

// PubResult is what JetStream said about a publish.
type PubResult struct {
	// Seq is the stream sequence of the stored message (of the original, for a duplicate).
	Seq uint64
	// Duplicate is true when a message with the same id was stored within the window.
	Duplicate bool
}

// Publish stores data durably on subject with msgID as Nats-Msg-Id and returns after the
// PubAck. Any failure to store wraps ErrUnavailable, so callers answer "try again later".
func (q *Queue) Publish(ctx context.Context, subject, msgID string, data []byte, hdr nats.Header) (PubResult, error) {
	return q.PublishTTL(ctx, subject, msgID, data, hdr, 0)
}

// PublishTTL is Publish for a message that the stream removes after ttl (at least 1s), sooner
// than the stream's own age limit; 0 keeps it for the stream's limit.
func (q *Queue) PublishTTL(ctx context.Context, subject, msgID string, data []byte, hdr nats.Header, ttl time.Duration) (PubResult, error) {
	m := &nats.Msg{Subject: subject, Data: data, Header: hdr}
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(msgID)}
	if ttl > 0 {
		opts = append(opts, jetstream.WithMsgTTL(ttl))
	}
	ack, err := q.js.PublishMsg(ctx, m, opts...)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return PubResult{}, err
		}
		if errors.Is(err, nats.ErrMaxPayload) {
			return PubResult{}, fmt.Errorf("%w: publishing %d bytes to %s", ErrTooLarge, len(data), subject)
		}
		if cause := Cause(q.nc, err); cause != "" {
			return PubResult{}, fmt.Errorf("%w: %s: publishing to %s: %v", ErrUnavailable, cause, subject, err)
		}
		return PubResult{}, fmt.Errorf("%w: publishing to %s: %v", ErrUnavailable, subject, err)
	}
	return PubResult{Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// RawMessage fetches one raw record by stream sequence, for replay.
func (q *Queue) RawMessage(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	s, err := q.js.Stream(ctx, RawStream)
	if err != nil {
		return nil, fmt.Errorf("opening raw stream: %w", err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("reading raw record %d: %w", seq, err)
	}
	return m, nil
}

// LastRaw returns the newest raw record on subject, or jetstream.ErrMsgNotFound.
func (q *Queue) LastRaw(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	s, err := q.js.Stream(ctx, RawStream)
	if err != nil {
		return nil, fmt.Errorf("opening raw stream: %w", err)
	}
	return s.GetLastMsgForSubject(ctx, subject)
}

// LastRawEnvelope returns the envelope and sequence of the newest raw record on subject, or
// jetstream.ErrMsgNotFound. It is on the ingest path (one per incident record stored), so the
// stream handle is looked up once, not per call.
func (q *Queue) LastRawEnvelope(ctx context.Context, subject string) (RawEnvelope, uint64, error) {
	s, err := q.rawStream(ctx)
	if err != nil {
		return RawEnvelope{}, 0, err
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return RawEnvelope{}, 0, err
	}
	env, _ := ReadRawEnvelope(m.Header)
	return env, m.Sequence, nil
}

func (q *Queue) rawStream(ctx context.Context) (jetstream.Stream, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.raw != nil {
		return q.raw, nil
	}
	s, err := q.js.Stream(ctx, RawStream)
	if err != nil {
		return nil, fmt.Errorf("opening raw stream: %w", err)
	}
	q.raw = s
	return s, nil
}

// Consumer creates or updates a durable consumer on stream.
func (q *Queue) Consumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := q.js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	return c, nil
}

// StreamInfo returns a stream's current state, for status and metrics.
func (q *Queue) StreamInfo(ctx context.Context, stream string) (*jetstream.StreamInfo, error) {
	s, err := q.js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}
