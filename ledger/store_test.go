package ledger

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
	l := openAt(t, t.TempDir())
	l.absent = func(string) bool { return true }
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
	l.absent = func(string) bool { return false }
	if e, err := l.LookupRecent(ctx, "s.k"); err != nil || e.Attempts != writers*each {
		t.Errorf("LookupRecent with the hint not knowing: got %v, %v, want the entry", e, err)
	}
}

func TestLedgerUpdateIsCompareAndSet(t *testing.T) {
	l := openAt(t, t.TempDir())
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
