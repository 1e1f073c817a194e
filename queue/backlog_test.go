package queue

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// TestHeartbeatsIgnoreTheBacklog: with 100,000 messages queued, a short AckWait and handlers
// that outlast it, the messages in hand are kept by heartbeats and the backlog behind them is
// never delivered twice: only the messages Dispatch holds (MaxHeld) are ever pending an ack,
// so the heartbeats cost the same whatever is queued (docs/delivery.md, "Recovery after a
// crash"). It prints the drain rate.
func TestHeartbeatsIgnoreTheBacklog(t *testing.T) {
	if testing.Short() {
		t.Skip("backlog test skipped in -short mode")
	}
	n := 100000
	if raceDetector {
		n = 20000 // the race detector makes publishing and acking many times slower
	}
	q := openAt(t, t.TempDir())
	defer q.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js, err := jetstream.New(q.Conn(), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range n {
		subj := OutboxSubjectFor("datix", fmt.Sprintf("k%06d", i))
		if _, err := js.PublishAsync(subj, []byte("x"), jetstream.WithStallWait(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		t.Fatal("publishing the backlog did not complete")
	}
	published := time.Since(start)
	const ackWait = time.Second
	cons, err := q.Consumer(ctx, OutboxStream, jetstream.ConsumerConfig{Durable: "backlog", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: ackWait, MaxAckPending: 100000})
	if err != nil {
		t.Fatal(err)
	}
	var handled, redelivered atomic.Int64
	var once sync.Once
	all := make(chan struct{})
	done := make(chan struct{})
	start = time.Now()
	go func() {
		defer close(done)
		_ = Dispatch(ctx, cons, DispatchOptions{Workers: 8, AckWait: ackWait, Logger: zerolog.Nop()}, func(_ context.Context, m jetstream.Msg) {
			md, _ := m.Metadata()
			if md.NumDelivered > 1 {
				redelivered.Add(1)
			}
			if md.Sequence.Stream <= 8 {
				time.Sleep(ackWait * 5 / 2) // the first eight outlast AckWait twice over, in hand
			}
			_ = m.Ack()
			if handled.Add(1) == int64(n) {
				once.Do(func() { close(all) })
			}
		})
	}()
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		t.Fatalf("handled %d of %d", handled.Load(), n)
	}
	drained := time.Since(start)
	cancel()
	<-done
	fmt.Printf("backlog of %d: published in %.1f s; drained by 8 workers with a %s AckWait in %.1f s (%.0f messages/s), %d redelivered\n",
		n, published.Seconds(), ackWait, drained.Seconds(), float64(n)/drained.Seconds(), redelivered.Load())
	if r := redelivered.Load(); r != 0 {
		t.Errorf("%d messages delivered twice: a heartbeat lapsed, or the backlog waited out AckWait", r)
	}
}
