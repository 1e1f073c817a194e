package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/queue"
)

// Bucket is the ledger's first bucket; the others are Bucket_1 to Bucket_<Shards-1>. These
// names, and the keys (Key) in them, are what existing data directories hold.
const Bucket = "psgw_ledger"

// Shards is how many buckets the delivery ledger is spread over. Every write to a bucket is a
// write to its stream, and with queue.sync always each stream fsyncs under its own lock, one
// write after another. An incident costs three ledger writes (mapped, in flight, delivered),
// so one bucket would cap end-to-end delivery at a third of one stream's fsync rate; spread
// over four, the writes of different incidents fsync in parallel (docs/performance.md has the
// measurements). One incident's key always lives in the same bucket, so compare-and-set per
// key is unchanged.
const Shards = 4

// shardsMeta marks the first bucket once every key in it that belongs to another shard has
// been moved there, so that later starts skip the scan.
const shardsMeta = "psgw_ledger_shards"

// bucketName is the bucket of shard i: psgw_ledger for shard 0, which is also where an
// unsharded ledger lived, so an upgrade finds its entries there.
func bucketName(i int) string {
	if i == 0 {
		return Bucket
	}
	return Bucket + "_" + strconv.Itoa(i)
}

// openKV creates the ledger's buckets and opens each on a connection of its own
// (queue.KeyValueOwnConn): a read waits while its bucket fsyncs a write, and must not stall
// every publish and ack of the gateway meanwhile.
func openKV(ctx context.Context, q *queue.Queue, log zerolog.Logger) (*shardedKV, error) {
	shards := make([]jetstream.KeyValue, Shards)
	for i := range shards {
		kv, err := q.KeyValueOwnConn(ctx, "psgw-ledger-"+strconv.Itoa(i), jetstream.KeyValueConfig{
			Bucket:      bucketName(i),
			Description: "delivery ledger: one entry per incident (shard " + strconv.Itoa(i) + " of " + strconv.Itoa(Shards) + ")",
			History:     1,
			Storage:     jetstream.FileStorage,
		})
		if err != nil {
			return nil, err
		}
		shards[i] = kv
	}
	l := &shardedKV{shards: shards}
	if err := spread(ctx, q.JetStream(), l, log); err != nil {
		return nil, err
	}
	return l, nil
}

// spread moves the entries of a ledger written before it was sharded from the first bucket to
// their own shard: copy first, then delete, so that a crash in between leaves a copy in both
// places and the next start finishes the move.
func spread(ctx context.Context, js jetstream.JetStream, l *shardedKV, log zerolog.Logger) error {
	s, err := js.Stream(ctx, "KV_"+Bucket)
	if err != nil {
		return fmt.Errorf("opening ledger bucket: %w", err)
	}
	cfg := s.CachedInfo().Config
	if cfg.Metadata[shardsMeta] == strconv.Itoa(Shards) {
		return nil
	}
	lister, err := l.shards[0].ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("listing ledger: %w", err)
	}
	moved := 0
	if lister != nil {
		for key := range lister.Keys() {
			i := l.shard(key)
			if i == 0 {
				continue
			}
			e, err := l.shards[0].Get(ctx, key)
			if err != nil {
				if errors.Is(err, jetstream.ErrKeyNotFound) {
					continue
				}
				_ = lister.Stop()
				return fmt.Errorf("reading ledger entry to move: %w", err)
			}
			if _, err := l.shards[i].Create(ctx, key, e.Value()); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
				_ = lister.Stop()
				return fmt.Errorf("moving ledger entry: %w", err)
			}
			if err := l.shards[0].Purge(ctx, key, jetstream.LastRevision(e.Revision())); err != nil {
				_ = lister.Stop()
				return fmt.Errorf("removing moved ledger entry: %w", err)
			}
			moved++
		}
	}
	if moved > 0 {
		log.Info().Int("entries", moved).Int("shards", Shards).Msg("spread the delivery ledger over its shards")
	}
	if cfg.Metadata == nil {
		cfg.Metadata = map[string]string{}
	}
	cfg.Metadata[shardsMeta] = strconv.Itoa(Shards)
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("marking ledger as sharded: %w", err)
	}
	return nil
}
