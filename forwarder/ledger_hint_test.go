package forwarder

import (
	"context"
	"errors"
	"testing"
)

// TestAbsentHintWrongStillCompareAndSet: an absence hint that is wrong (it says every key is
// absent, as a stale one could for a key written moments ago) costs a failed create and a
// read, never a lost change or an overwritten entry.
func TestAbsentHintWrongStillCompareAndSet(t *testing.T) {
	ctx := context.Background()
	q := openQueue(t)
	l := NewLedger(q.Ledger(), nil)
	l.SetAbsentHint(func(string) bool { return true })
	const writers, each = 8, 25
	got := incrementConcurrently(t, l, writers, each, func(e *Entry, exists bool) error {
		if exists != (e.Attempts > 0) {
			return errors.New("exists does not match the entry")
		}
		return nil
	})
	if got != writers*each {
		t.Errorf("got %d, want %d: updates were lost", got, writers*each)
	}
	// LookupRecent takes the hint's word; Get reads.
	if _, err := l.LookupRecent(ctx, "s.k"); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupRecent with the hint saying absent: got %v, want ErrNotFound", err)
	}
	l.SetAbsentHint(func(string) bool { return false })
	if e, err := l.LookupRecent(ctx, "s.k"); err != nil || e.Attempts != writers*each {
		t.Errorf("LookupRecent with the hint not knowing: got %v, %v, want the entry", e, err)
	}
}
