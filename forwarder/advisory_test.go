package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/queue"
)

func openQueue(t *testing.T) *queue.Queue {
	t.Helper()
	q, err := queue.Open(context.Background(), queue.Options{
		DataDir: t.TempDir(), MaxStoreBytes: 1 << 30, MaxMemoryBytes: 64 << 20, RawMaxBytes: 64 << 20,
		RawMaxAge: time.Hour, OutboxMaxBytes: 64 << 20, DuplicateWindow: time.Minute, SyncInterval: time.Second,
		Logger: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	return q
}

// TestMaxDeliveriesAdvisoryFailsTheIncident: when JetStream gives up redelivering an outbox
// message, the advisory marks its incident failed (visible, replayable) and the message is
// removed rather than left sitting unnoticed.
func TestMaxDeliveriesAdvisoryFailsTheIncident(t *testing.T) {
	ctx := context.Background()
	q := openQueue(t)
	l := NewLedger(q.Ledger(), nil)
	f := New(Config{MaxAttempts: 3}, q, l, nil, zerolog.Nop())

	lkey := LedgerKey("datix", "k1")
	if _, err := l.Update(ctx, lkey, func(e *Entry, _ bool) error {
		e.Source, e.LocalID, e.RawSeq = "datix", "INC-1", 7
		e.Note(time.Now(), StateRetrying, "HTTP 503", "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	hdr := nats.Header{}
	hdr.Set(queue.HeaderSource, "datix")
	hdr.Set(queue.HeaderKey, "k1")
	hdr.Set(queue.HeaderRawSeq, "7")
	pub, err := q.Publish(ctx, queue.OutboxSubjectFor("datix", "k1"), "raw-7", []byte(`{}`), hdr)
	if err != nil {
		t.Fatal(err)
	}
	stop, err := f.watchMaxDeliveries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	adv, _ := json.Marshal(maxDeliveriesAdvisory{Stream: queue.OutboxStream, Consumer: consumerName, StreamSeq: pub.Seq, Deliveries: 28})
	if err := q.Conn().Publish("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+queue.OutboxStream+"."+consumerName, adv); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		e, err := l.Get(ctx, lkey)
		if err != nil {
			t.Fatal(err)
		}
		if e.State == StateFailed {
			if e.LastError == "" {
				t.Error("failed without a reason")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incident is %s, want failed after the advisory", e.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s, err := q.JetStream().Stream(ctx, queue.OutboxStream)
	if err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, err := s.GetMsg(ctx, pub.Seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox message still there after the advisory: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLedgerUpdateIsCompareAndSet(t *testing.T) {
	l := NewLedger(openQueue(t).Ledger(), nil)
	const writers, each = 8, 25
	if got := incrementConcurrently(t, l, writers, each, nil); got != writers*each {
		t.Errorf("got %d, want %d: concurrent updates were lost", got, writers*each)
	}
}

// incrementConcurrently has writers goroutines each add 1 to entry s.k's Attempts each times
// through Ledger.Update, checking every call's view with check (nil: none), and returns the
// Attempts the ledger holds afterwards.
func incrementConcurrently(t *testing.T, l *Ledger, writers, each int, check func(e *Entry, exists bool) error) int {
	t.Helper()
	ctx := context.Background()
	done := make(chan error, writers)
	for range writers {
		go func() {
			for range each {
				if _, err := l.Update(ctx, "s.k", func(e *Entry, exists bool) error {
					if check != nil {
						if err := check(e, exists); err != nil {
							return err
						}
					}
					e.Attempts++
					return nil
				}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	e, err := l.Get(ctx, "s.k")
	if err != nil {
		t.Fatal(err)
	}
	return e.Attempts
}
