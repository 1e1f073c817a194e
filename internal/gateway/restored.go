package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
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
	e, err := getFresh(ctx, kv, restoredMark)
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

// getFresh is kv.Get on a bucket that may have been created a moment ago: on a cluster its
// replicas answer direct gets only once each has set the bucket's stream up, and until then
// a read finds no responders, which failed a gateway's start on a fresh three-node cluster
// (test/e2e, TestTwoReplicasOneCluster under load). It asks again for up to 10 s.
func getFresh(ctx context.Context, kv jetstream.KeyValue, key string) (jetstream.KeyValueEntry, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		e, err := kv.Get(ctx, key)
		if !errors.Is(err, nats.ErrNoResponders) || time.Now().After(deadline) {
			return e, err
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}
