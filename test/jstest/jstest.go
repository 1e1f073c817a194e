// Package jstest gives a test a real embedded JetStream, as psgw runs it, in a folder of its
// own: the tests' one copy of nats-server's RunBasicJetStreamServer. Only tests import it.
package jstest

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/queue"
)

// Options are the queue settings of a test's JetStream with its data in dir: limits small
// enough for a test machine, large enough for every test's records, and a one-second sync so
// that tests do not wait on fsync (tests of durability set queue.Options.SyncAlways).
func Options(dir string) queue.Options {
	return queue.Options{
		DataDir: dir, MaxStoreBytes: 1 << 30, MaxMemoryBytes: 64 << 20, RawMaxBytes: 256 << 20,
		RawMaxAge: time.Hour, OutboxMaxBytes: 256 << 20, DuplicateWindow: time.Minute, SyncInterval: time.Second,
		Logger: zerolog.Nop(),
	}
}

// Open opens the queue with Options(dir) and closes it when the test ends. A test that
// reopens a store after a restart passes the same dir again.
func Open(t testing.TB, dir string) *queue.Queue {
	t.Helper()
	return OpenWith(t, Options(dir))
}

// OpenWith opens the queue with o, e.g. Options changed, and closes it when the test ends.
func OpenWith(t testing.TB, o queue.Options) *queue.Queue {
	t.Helper()
	q, err := queue.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("opening the test JetStream: %v", err)
	}
	t.Cleanup(q.Close)
	return q
}
