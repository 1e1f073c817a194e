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
	done := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			for i := 0; i < each; i++ {
				if _, err := l.Update(ctx, "s.k", func(e *Entry, exists bool) error {
					if exists != (e.Attempts > 0) {
						return errors.New("exists does not match the entry")
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
	for w := 0; w < writers; w++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	e, err := l.Get(ctx, "s.k")
	if err != nil {
		t.Fatal(err)
	}
	if e.Attempts != writers*each {
		t.Errorf("got %d, want %d: updates were lost", e.Attempts, writers*each)
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
