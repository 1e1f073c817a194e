package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/psgw/psgw/test/wait"
)

func TestPublishTTLExpiresOnlyThatRecord(t *testing.T) {
	q := openAt(t, t.TempDir())
	ctx := context.Background()
	hdr := func() nats.Header { return nats.Header{hdrSource: []string{"epr"}} }
	adt := RawSubject("adt", "epr", "k1")
	inc := RawSubject("incident", "datix", "k2")
	if _, err := q.PublishTTL(ctx, adt, "adt-1", []byte("MSH|..."), hdr(), time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Publish(ctx, inc, "inc-1", []byte(`{}`), hdr()); err != nil {
		t.Fatal(err)
	}
	if _, err := q.LastRaw(ctx, adt); err != nil {
		t.Fatalf("ADT record just stored: got %v, want it readable", err)
	}
	wait.For(t, 10*time.Second, "the ADT record with a 1s TTL gone", func() (bool, string) {
		_, err := q.LastRaw(ctx, adt)
		return errors.Is(err, jetstream.ErrMsgNotFound), fmt.Sprint(err)
	})
	if _, err := q.LastRaw(ctx, inc); err != nil {
		t.Fatalf("incident record without a TTL: got %v, want it kept", err)
	}
}

// TestPublishTooLargeIsNotUnavailable: a message over the server's max_payload can never be
// stored, so it must not read as "try again later".
func TestPublishTooLargeIsNotUnavailable(t *testing.T) {
	q := openAt(t, t.TempDir())
	_, err := q.Publish(context.Background(), RawSubject("incident", "datix", "k"), "big", make([]byte, q.MaxPayload()+1), nats.Header{})
	if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnavailable) {
		t.Errorf("got %v, want ErrTooLarge and not ErrUnavailable", err)
	}
}

// TestOutboxKeyAcrossLayouts: an outbox written before subjects lost the incident key drains
// beside new messages, and one incident's old and new messages share a Dispatch key, so they
// are still delivered one at a time, in order.
func TestOutboxKeyAcrossLayouts(t *testing.T) {
	q := openAt(t, t.TempDir())
	ctx := context.Background()
	hdr := func(key string) nats.Header {
		return nats.Header{hdrSource: []string{"datix"}, hdrKey: []string{key}}
	}
	for i, m := range []struct{ subject, key string }{
		{OutboxSubjectFor("datix", "k1"), "k1"}, // the old layout
		{OutboxSubjectOf("datix"), "k1"},
		{OutboxSubjectOf("datix"), "k2"},
	} {
		if _, err := q.Publish(ctx, m.subject, "m"+string(rune('0'+i)), []byte(`{}`), hdr(m.key)); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := q.Consumer(ctx, OutboxStream, jetstream.ConsumerConfig{Durable: "test", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(3, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for m := range batch.Messages() {
		keys = append(keys, OutboxKey(m))
	}
	if want := []string{"datix.k1", "datix.k1", "datix.k2"}; !slices.Equal(keys, want) {
		t.Errorf("got keys %q, want %q", keys, want)
	}
}
