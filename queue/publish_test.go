package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestPublishTTLExpiresOnlyThatRecord(t *testing.T) {
	q := openAt(t, t.TempDir())
	ctx := context.Background()
	hdr := func() nats.Header { return nats.Header{HeaderSource: []string{"epr"}} }
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := q.LastRaw(ctx, adt)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ADT record with a 1s TTL still there after 10s (err %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
