package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/queue"
)

// queuePublisher is the ingest.Publisher that adapters see: it stores raw records in the raw
// stream and returns after the PubAck.
type queuePublisher struct {
	q *queue.Queue
	// ledger, when set, recognises an incident record re-sent after JetStream's duplicate
	// window: the ledger remembers the id and revision of the newest record mapped for each
	// incident (see ledger.Ledger.Resent).
	ledger *ledger.Ledger
	// received counts records durably stored, by source and kind; nil counts nothing.
	received *prometheus.CounterVec
	// labels bounds received's source label: sources beyond it are counted as "other".
	labels *ingest.SourceLabels
	// adtTTL is how long ADT records stay in the raw stream (queue.adt_max_age); 0 keeps
	// them for the stream's own limit.
	adtTTL time.Duration
}

// newReceivedCounter registers psgw_ingest_received_total: the events received per source
// that docs/api.md lists under "Metrics", counted where every adapter's records meet, after
// the PubAck.
func newReceivedCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "psgw_ingest_received_total",
		Help: "Records durably stored in the raw stream, by source and kind (incident, adt); re-sends dropped as duplicates are not counted. Sources beyond the configured ones and the first 32 others are counted as \"other\".",
	}, []string{"source", "kind"})
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}

func (p queuePublisher) Publish(ctx context.Context, rec ingest.Record) (ingest.PublishResult, error) {
	if rec.Kind == "" || rec.Source == "" || rec.Key == "" || rec.ID == "" {
		return ingest.PublishResult{}, errors.New("record needs kind, source, key and id")
	}
	if p.ledger != nil && rec.Kind == ingest.KindIncident {
		if seq, ok := p.ledger.Resent(ctx, ledger.Key(rec.Source, rec.Key), rec.ID, rec.Revision); ok {
			return ingest.PublishResult{Seq: seq, Duplicate: true}, nil
		}
	}
	at := rec.ReceivedAt
	if at.IsZero() {
		at = time.Now().UTC()
	}
	var ttl time.Duration
	if rec.Kind == ingest.KindADT {
		ttl = p.adtTTL
	}
	env := queue.RawEnvelope{Kind: rec.Kind, Source: rec.Source, LocalID: rec.LocalID, Key: rec.Key,
		RecordID: rec.ID, Revision: rec.Revision, ReceivedAt: at, RejectReason: rec.Reason, Origin: rec.Origin}
	if rec.Kind == ingest.KindIncident {
		if seq, dup := p.after(ctx, &env); dup {
			return ingest.PublishResult{Seq: seq, Duplicate: true}, nil
		}
	}
	res, err := p.q.PublishRaw(ctx, env, rec.Data, ttl)
	if err != nil {
		if errors.Is(err, queue.ErrUnavailable) {
			// The cause ("no JetStream quorum") goes on to the source in the 503 or AE.
			return ingest.PublishResult{}, ingest.Unavailable(queue.CauseOf(err), err)
		}
		if errors.Is(err, queue.ErrTooLarge) {
			return ingest.PublishResult{}, fmt.Errorf("%w: %v", ingest.ErrTooLarge, err)
		}
		return ingest.PublishResult{}, err
	}
	if p.received != nil && !res.Duplicate {
		p.received.WithLabelValues(p.labels.Label(rec.Source), rec.Kind).Inc()
	}
	return ingest.PublishResult{Seq: res.Seq, Duplicate: res.Duplicate}, nil
}

// after compares an incident record with the newest record the raw stream holds for its
// incident: the same record (or an older revision) is a re-send, answered as a duplicate
// without storing it; any other is stored after that one (env.After), so that JetStream's
// duplicate window drops a re-send of the newest record but not content that changed back to
// an earlier text, A then B then A (docs/architecture.md, "1. Ingest"). Two copies of a record
// stored at once name the same newest record, so JetStream still drops one of them. When the
// lookup fails the record is stored under its own id, as before the stream held any.
func (p queuePublisher) after(ctx context.Context, env *queue.RawEnvelope) (uint64, bool) {
	last, seq, err := p.q.LastRawEnvelope(ctx, env.Subject())
	if err != nil || last.RecordID == "" {
		return 0, false
	}
	if last.RecordID == env.RecordID || (env.Revision > 0 && env.Revision < last.Revision) {
		return seq, true
	}
	env.After = last.RecordID
	return 0, false
}
