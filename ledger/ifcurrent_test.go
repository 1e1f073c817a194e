package ledger

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/test/jstest"
)

// onceStale answers the next Get with a value saved earlier, as a replica a write behind does.
type onceStale struct {
	jetstream.KeyValue
	old jetstream.KeyValueEntry
}

func (s *onceStale) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if old := s.old; old != nil {
		s.old = nil
		return old, nil
	}
	return s.KeyValue.Get(ctx, key)
}

// TestNoChangeIfCurrentConfirmsTheRead (issue 19): ErrNoChangeIfCurrent writes nothing new
// when the entry read is current, and when the read was stale calls the function again on a
// fresh read instead of deciding on the old value.
func TestNoChangeIfCurrentConfirmsTheRead(t *testing.T) {
	ctx := context.Background()
	s := &onceStale{}
	l, err := Open(ctx, jstest.Open(t, t.TempDir()), Options{Logger: zerolog.Nop(),
		WrapKV: func(kv jetstream.KeyValue) jetstream.KeyValue { s.KeyValue = kv; return s }})
	if err != nil {
		t.Fatal(err)
	}
	const key = "datix.k1"
	set := func(v string) {
		t.Helper()
		if _, err := l.Update(ctx, key, func(e *Entry, _ bool) error { e.LastError = v; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	set("old")
	old, err := s.KeyValue.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	set("new")
	s.old = old

	var seen []string
	e, err := l.Update(ctx, key, func(e *Entry, _ bool) error {
		seen = append(seen, e.LastError)
		return ErrNoChangeIfCurrent
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] != "old" || seen[1] != "new" || e.LastError != "new" {
		t.Errorf("the function saw %q and Update returned %q; want [old new] and new (the stale read confirmed, then read again)", seen, e.LastError)
	}
	if got, _ := l.Get(ctx, key); got.LastError != "new" {
		t.Errorf("entry holds %q after the confirming write, want new, unchanged", got.LastError)
	}

	// No entry: nothing to confirm against, and nothing is created.
	_, err = l.Update(ctx, "datix.none", func(*Entry, bool) error { return ErrNoChangeIfCurrent })
	if !errors.Is(err, ErrNoChangeIfCurrent) {
		t.Errorf("on a missing entry: %v, want ErrNoChangeIfCurrent", err)
	}
	if _, err := l.Get(ctx, "datix.none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing entry after the update: %v, want ErrNotFound", err)
	}
}
