package ledger

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/test/jstest"
)

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
func openAt(t testing.TB, dir string) *Ledger { return openLedger(t, jstest.Open(t, dir)) }
