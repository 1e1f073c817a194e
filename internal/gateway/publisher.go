package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/psgw/psgw/forwarder"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/mapper"
	"github.com/psgw/psgw/queue"
)

// queuePublisher is the ingest.Publisher that adapters see: it stores raw records in the raw
// stream and returns after the PubAck.
type queuePublisher struct {
	q *queue.Queue
	// ledger, when set, recognises an incident record re-sent after JetStream's duplicate
	// window: the ledger remembers the id and revision of the newest record mapped for each
	// incident (see resentRecord).
	ledger *forwarder.Ledger
	// received counts records durably stored, by source and kind; nil counts nothing.
	received *prometheus.CounterVec
	// adtTTL is how long ADT records stay in the raw stream (queue.adt_max_age); 0 keeps
	// them for the stream's own limit.
	adtTTL time.Duration
}

// newReceivedCounter registers psgw_ingest_received_total: the events received per source
// of CONTRACT §5, counted where every adapter's records meet, after the PubAck.
func newReceivedCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "psgw_ingest_received_total",
		Help: "Records durably stored in the raw stream, by source and kind (incident, adt); re-sends dropped as duplicates are not counted.",
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
		// An incident the ledger has never held (most of them) costs no read: see
		// Ledger.LookupRecent. A record whose incident was mapped moments ago is not a re-send
		// from after the duplicate window, which is what this check is for.
		e, err := p.ledger.LookupRecent(ctx, forwarder.LedgerKey(rec.Source, rec.Key))
		if err == nil && resentRecord(e, rec) {
			return ingest.PublishResult{Seq: e.RawSeq, Duplicate: true}, nil
		}
	}
	hdr := nats.Header{}
	hdr.Set(queue.HeaderKind, rec.Kind)
	hdr.Set(queue.HeaderSource, rec.Source)
	hdr.Set(queue.HeaderLocalID, rec.LocalID)
	hdr.Set(queue.HeaderKey, rec.Key)
	if rec.Revision > 0 {
		hdr.Set(queue.HeaderRevision, strconv.Itoa(rec.Revision))
	}
	at := rec.ReceivedAt
	if at.IsZero() {
		at = time.Now().UTC()
	}
	hdr.Set(queue.HeaderReceived, at.Format(time.RFC3339Nano))
	if rec.Reason != "" {
		hdr.Set(mapper.HeaderRejectReason, rec.Reason)
	}
	var ttl time.Duration
	if rec.Kind == ingest.KindADT {
		ttl = p.adtTTL
	}
	res, err := p.q.PublishTTL(ctx, queue.RawSubject(rec.Kind, rec.Source, rec.Key), rec.ID, rec.Data, hdr, ttl)
	if err != nil {
		if errors.Is(err, queue.ErrUnavailable) {
			return ingest.PublishResult{}, fmt.Errorf("%w: %v", ingest.ErrUnavailable, err)
		}
		if errors.Is(err, queue.ErrTooLarge) {
			return ingest.PublishResult{}, fmt.Errorf("%w: %v", ingest.ErrTooLarge, err)
		}
		return ingest.PublishResult{}, err
	}
	if p.received != nil && !res.Duplicate {
		p.received.WithLabelValues(rec.Source, rec.Kind).Inc()
	}
	return ingest.PublishResult{Seq: res.Seq, Duplicate: res.Duplicate}, nil
}

// resentRecord reports whether rec, an incident record, is one the ledger entry e already
// accounts for, so that storing it again would add nothing: the newest record mapped, sent
// again (the same id: the same revision, or with no revision the same content); or an explicit
// revision older than the newest mapped one, which the mapper would only note as ignored.
// A record without a revision that differs from the newest is an amendment, even if it
// repeats older content. Records stored but not yet mapped are not in the ledger yet; for
// those JetStream's own duplicate window answers.
func resentRecord(e *forwarder.Entry, rec ingest.Record) bool {
	switch {
	case e.ContentHash == rec.ID:
		return true
	case rec.Revision > 0 && rec.Revision < e.Revision:
		return true
	}
	return false
}
