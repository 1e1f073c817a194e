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
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(seen[slow])
		mu.Unlock()
		if n == perKey {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slow incident: %d of %d messages handled after release", n, perKey)
		}
		time.Sleep(10 * time.Millisecond)
	}
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
