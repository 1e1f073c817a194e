package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/queue"
)

// queuePublisher is the ingest.Publisher that adapters see: it stores raw records in the raw
// stream and returns after the PubAck.
type queuePublisher struct{ q *queue.Queue }

func (p queuePublisher) Publish(ctx context.Context, rec ingest.Record) (ingest.PublishResult, error) {
	if rec.Kind == "" || rec.Source == "" || rec.Key == "" || rec.ID == "" {
		return ingest.PublishResult{}, errors.New("record needs kind, source, key and id")
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
	res, err := p.q.Publish(ctx, queue.RawSubject(rec.Kind, rec.Source, rec.Key), rec.ID, rec.Data, hdr)
	if err != nil {
		if errors.Is(err, queue.ErrUnavailable) {
			return ingest.PublishResult{}, fmt.Errorf("%w: %v", ingest.ErrUnavailable, err)
		}
		return ingest.PublishResult{}, err
	}
	return ingest.PublishResult{Seq: res.Seq, Duplicate: res.Duplicate}, nil
}
