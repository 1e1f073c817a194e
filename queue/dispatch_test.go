package queue

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/test/wait"
)

// TestDispatchSlowKeyHoldsUpOnlyItself: while the messages of one incident wait behind a
// handler that does not return, every other incident's messages are still handled, one key
// is never handled twice at once, and each key's messages are handled in the order stored.
func TestDispatchSlowKeyHoldsUpOnlyItself(t *testing.T) {
	q := openAt(t, t.TempDir())
	defer q.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// More messages per key than workers and more keys than the held limit, so that a
	// dispatcher that blocked on a busy key would stall.
	const keys, perKey = 30, 3
	for i := range perKey {
		for k := range keys {
			subj := OutboxSubjectFor("datix", fmt.Sprintf("k%02d", k))
			if _, err := q.Publish(ctx, subj, fmt.Sprintf("%d-%d", k, i), []byte(fmt.Sprint(i)), nats.Header{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	cons, err := q.Consumer(ctx, OutboxStream, jetstream.ConsumerConfig{Durable: "t", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	slow := OutboxSubjectFor("datix", "k00")
	release := make(chan struct{})
	var mu sync.Mutex
	busy := map[string]bool{}
	seen := map[string][]string{}
	othersDone := make(chan struct{})
	handled := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Dispatch(ctx, cons, DispatchOptions{Workers: 4, MaxHeld: 8, Logger: zerolog.Nop()}, func(ctx context.Context, m jetstream.Msg) {
			subj := m.Subject()
			mu.Lock()
			if busy[subj] {
				t.Errorf("%s handled twice at once", subj)
			}
			busy[subj] = true
			seen[subj] = append(seen[subj], string(m.Data()))
			mu.Unlock()
			if subj == slow {
				<-release
			}
			_ = m.Ack()
			mu.Lock()
			busy[subj] = false
			if subj != slow {
				if handled++; handled == (keys-1)*perKey {
					close(othersDone)
				}
			}
			mu.Unlock()
		})
	}()
	select {
	case <-othersDone:
	case <-time.After(30 * time.Second):
		mu.Lock()
		t.Fatalf("other incidents stalled behind the slow one: %d of %d handled", handled, (keys-1)*perKey)
	}
	close(release)
	wait.For(t, 30*time.Second, "every message of the slow incident handled after release", func() (bool, string) {
		mu.Lock()
		n := len(seen[slow])
		mu.Unlock()
		return n == perKey, fmt.Sprintf("%d of %d", n, perKey)
	})
	cancel()
	<-done
	for subj, got := range seen {
		if fmt.Sprint(got) != "[0 1 2]" {
			t.Errorf("%s: handled in order %v, want [0 1 2]", subj, got)
		}
	}
}

// TestDispatchReturnsWhenTheConsumerIsDeleted: fetching from a deleted consumer can never
// work again, so Dispatch returns an error and its stage can be started afresh, creating the
// consumer again, instead of logging the same failure for ever.
func TestDispatchReturnsWhenTheConsumerIsDeleted(t *testing.T) {
	q := openAt(t, t.TempDir())
	defer q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := q.Consumer(ctx, OutboxStream, jetstream.ConsumerConfig{Durable: "gone", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- Dispatch(ctx, cons, DispatchOptions{Workers: 2, Logger: zerolog.Nop()}, func(_ context.Context, m jetstream.Msg) { _ = m.Ack() })
	}()
	if err := q.JetStream().DeleteConsumer(ctx, OutboxStream, "gone"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !ConsumerGone(err) {
			t.Errorf("got %v, want an error saying the consumer is gone", err)
		}
	case <-ctx.Done():
		t.Fatal("Dispatch kept fetching from a deleted consumer")
	}
}

// TestDispatchKeepsHeldMessagesInHand: messages waiting behind a slow one, and the slow one
// itself, outlast the consumer's AckWait; Dispatch reports them in progress, so JetStream
// does not deliver any of them again: each is handled once, on its first delivery.
func TestDispatchKeepsHeldMessagesInHand(t *testing.T) {
	q := openAt(t, t.TempDir())
	defer q.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Long enough that a stalled heartbeat on a loaded machine under -race does not let it
	// lapse: the beat goes every third of it, so a stall of two thirds is survived.
	const ackWait = time.Second
	subj := OutboxSubjectFor("datix", "slow")
	for i := range 4 {
		if _, err := q.Publish(ctx, subj, fmt.Sprint("m", i), []byte(fmt.Sprint(i)), nats.Header{}); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := q.Consumer(ctx, OutboxStream, jetstream.ConsumerConfig{Durable: "beat", AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var handled []string
	all := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = Dispatch(ctx, cons, DispatchOptions{Workers: 2, AckWait: ackWait, Logger: zerolog.Nop()}, func(_ context.Context, m jetstream.Msg) {
			md, _ := m.Metadata()
			mu.Lock()
			handled = append(handled, fmt.Sprintf("%s/%d", m.Data(), md.NumDelivered))
			n := len(handled)
			mu.Unlock()
			time.Sleep(ackWait * 3 / 2) // each one outlasts AckWait, so those behind it wait 1.5, 3, 4.5 times as long
			_ = m.Ack()
			if n == 4 {
				close(all)
			}
		})
	}()
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		t.Fatal("the four messages were not all handled")
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if got := fmt.Sprint(handled); got != "[0/1 1/1 2/1 3/1]" {
		t.Errorf("handled (message/delivery): %s, want each once, on its first delivery, in order", got)
	}
}
