package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/test/jstest"
	"github.com/psgw/psgw/test/wait"
)

// openLedger opens the delivery ledger in q.
func openLedger(t *testing.T, q *queue.Queue) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(context.Background(), q, ledger.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestMaxDeliveriesAdvisoryFailsTheIncident: when JetStream gives up redelivering an outbox
// message, the advisory marks its incident failed (visible, replayable) and the message is
// removed rather than left sitting unnoticed.
func TestMaxDeliveriesAdvisoryFailsTheIncident(t *testing.T) {
	ctx := context.Background()
	q := jstest.Open(t, t.TempDir())
	l := openLedger(t, q)
	f := New(Config{MaxAttempts: 3}, q, l, nil, zerolog.Nop())

	lkey := ledger.Key("datix", "k1")
	if _, err := l.Update(ctx, lkey, func(e *ledger.Entry, _ bool) error {
		e.Source, e.LocalID, e.RawSeq = "datix", "INC-1", 7
		e.Note(time.Now(), ledger.StateRetrying, "HTTP 503", "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pub := publishOutbox(t, q)
	stop, err := f.watchMaxDeliveries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	adv, _ := json.Marshal(maxDeliveriesAdvisory{Stream: queue.OutboxStream, Consumer: consumerName, StreamSeq: pub, Deliveries: 28})
	if err := q.Conn().Publish("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+queue.OutboxStream+"."+consumerName, adv); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "the incident failed after the advisory", func() (bool, string) {
		e, err := l.Get(ctx, lkey)
		if err != nil {
			t.Fatal(err)
		}
		return e.State == ledger.StateFailed, "state " + string(e.State)
	})
	if e, _ := l.Get(ctx, lkey); e.LastError == "" {
		t.Error("failed without a reason")
	}
	s, err := q.JetStream().Stream(ctx, queue.OutboxStream)
	if err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 5*time.Second, "the outbox message removed after the advisory", func() bool {
		_, err := s.GetMsg(ctx, pub)
		return errors.Is(err, jetstream.ErrMsgNotFound)
	})
}
