package queue

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func openAt(t *testing.T, dir string) *Queue {
	t.Helper()
	q, err := Open(context.Background(), Options{
		DataDir: dir, MaxStoreBytes: 1 << 30, MaxMemoryBytes: 64 << 20, RawMaxBytes: 64 << 20,
		RawMaxAge: time.Hour, OutboxMaxBytes: 64 << 20, DuplicateWindow: time.Minute, SyncInterval: time.Second,
		Logger: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return q
}
