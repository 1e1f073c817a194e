package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/psgw/psgw/queue"
)

// restoredMark is the key in StoreBucket that `psgw restore` writes: the raw stream's last
// sequence in the backup. A record up to it with no ledger entry was stored but not yet mapped
// when the backup was taken; the gateway the backup came from may have delivered it since, so
// the mapper records it unknown rather than POST it again (docs/deploy.md, "What a restore
// brings back").
const restoredMark = "restored_raw_seq"

// MarkRestored records in the store that it was restored from a backup whose raw stream
// ended at rawSeq.
func MarkRestored(ctx context.Context, q *queue.Queue, rawSeq uint64) error {
	kv, err := q.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: StoreBucket, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, restoredMark, []byte(strconv.FormatUint(rawSeq, 10))); err != nil {
		return fmt.Errorf("marking the store as restored: %w", err)
	}
	return nil
}

// restoredThrough is what MarkRestored recorded, or 0 for a store never restored.
func restoredThrough(ctx context.Context, q *queue.Queue) (uint64, error) {
	kv, err := q.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: StoreBucket, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return 0, err
	}
	e, err := kv.Get(ctx, restoredMark)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("reading bucket %s: %w", StoreBucket, err)
	}
	n, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bucket %s, key %s: not a stream sequence", StoreBucket, restoredMark)
	}
	return n, nil
}
