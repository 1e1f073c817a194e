package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/queue"
)

// openQueue is a real embedded JetStream with its data in dir, closed when the test ends.
func openQueue(t testing.TB, dir string) *queue.Queue {
	t.Helper()
	q, err := queue.Open(context.Background(), queue.Options{
		DataDir: dir, MaxStoreBytes: 1 << 30, MaxMemoryBytes: 64 << 20, RawMaxBytes: 64 << 20,
		RawMaxAge: time.Hour, OutboxMaxBytes: 64 << 20, DuplicateWindow: time.Minute, SyncInterval: time.Second,
		Logger: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	return q
}

// openLedger opens the ledger in q.
func openLedger(t testing.TB, q *queue.Queue) *Ledger {
	t.Helper()
	l, err := Open(context.Background(), q, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// openAt is a ledger on a fresh embedded JetStream with its data in dir.
func openAt(t testing.TB, dir string) *Ledger { return openLedger(t, openQueue(t, dir)) }
