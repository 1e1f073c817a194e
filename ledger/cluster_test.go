package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/test/jstest"
	"github.com/psgw/psgw/test/natstest"
	"github.com/psgw/psgw/test/wait"
)

// openOnCluster is a ledger of a gateway connected to url at replicas 3.
func openOnCluster(t *testing.T, url string) *Ledger {
	t.Helper()
	q, err := queue.Open(context.Background(), queue.Options{
		NATSURL: url, Replicas: 3, RawMaxBytes: 64 << 20, RawMaxAge: time.Hour,
		OutboxMaxBytes: 64 << 20, DuplicateWindow: time.Minute, Logger: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	return openLedger(t, q)
}

// TestCompareAndSetAcrossReplicas: two gateways on one three-node cluster, each connected to
// another node, update one entry at once; not one change is lost. A replicated bucket reports
// a lost compare-and-set with another error code than a single server does (10164, not
// 10071); taken for a failure, every conflict between two gateways failed the write.
func TestCompareAndSetAcrossReplicas(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	a := openOnCluster(t, c.NodeURL(0))
	b := openOnCluster(t, c.NodeURL(1))
	const writers, each = 4, 15
	ctx := context.Background()
	done := make(chan error, 2*writers)
	for _, l := range []*Ledger{a, b} {
		for range writers {
			go func() {
				for range each {
					if _, err := l.Update(ctx, "s.k", func(e *Entry, _ bool) error { e.Attempts++; return nil }); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
		}
	}
	for range 2 * writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// A read of a replicated bucket may come from a replica a write or two behind (it is
	// why every update is compare-and-set), so the count is awaited, not read once.
	wait.For(t, 10*time.Second, "every concurrent update from the two gateways counted", func() (bool, string) {
		e, err := b.Get(ctx, "s.k")
		if err != nil {
			t.Fatal(err)
		}
		return e.Attempts == 2*writers*each, fmt.Sprintf("got %d, want %d: concurrent updates lost?", e.Attempts, 2*writers*each)
	})
}

// TestReplicaNamedInHistory: each gateway's changes are recorded under its replica name,
// so an operator can see which replica did what.
func TestReplicaNamedInHistory(t *testing.T) {
	q := jstest.Open(t, t.TempDir())
	l, err := Open(context.Background(), q, Options{Logger: zerolog.Nop(), Replica: "psgw-a"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Update(ctx, "s.k", func(e *Entry, _ bool) error {
		e.Note(time.Now(), StateQueued, "mapped", "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e, err := l.Get(ctx, "s.k")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.History) != 1 || e.History[0].Replica != "psgw-a" {
		t.Fatalf("history %+v: want one step by replica psgw-a", e.History)
	}
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"replica":"psgw-a"`) {
		t.Error("the delivery record's JSON does not name the replica")
	}
}

// TestUndeliverableTwiceKeepsUnknown: every replica hears JetStream's max-deliveries
// advisory and records it. The first finds a POST in flight and makes the incident unknown;
// the second must leave it so, not turn it failed, which a replay would POST again.
func TestUndeliverableTwiceKeepsUnknown(t *testing.T) {
	now := time.Now()
	e := &Entry{RawSeq: 7, InFlight: &InFlight{Method: "POST", PayloadHash: "h", RawSeq: 7, StartedAt: now}}
	if st, err := e.Undeliverable(now, 7, "delivered 28 times"); err != nil || st != StateUnknown {
		t.Fatalf("first: got %s, %v; want unknown", st, err)
	}
	if st, err := e.Undeliverable(now, 7, "delivered 28 times"); err != ErrNoChange || st != StateUnknown {
		t.Fatalf("second: got %s, %v; want unknown unchanged", st, err)
	}
}
