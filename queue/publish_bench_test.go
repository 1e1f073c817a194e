package queue

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// benchPayload is the size of a typical incident (the load tool's incident is 614 bytes).
var benchPayload = make([]byte, 614)

func openBench(b *testing.B, syncAlways bool) *Queue {
	b.Helper()
	q, err := Open(context.Background(), Options{
		DataDir: b.TempDir(), MaxStoreBytes: 8 << 30, MaxMemoryBytes: 64 << 20, RawMaxBytes: 4 << 30,
		RawMaxAge: time.Hour, OutboxMaxBytes: 1 << 30, DuplicateWindow: time.Minute,
		SyncAlways: syncAlways, SyncInterval: time.Second, Logger: zerolog.Nop(),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(q.Close)
	return q
}

// BenchmarkPublish is the publish path as ingest uses it: one record with a Nats-Msg-Id and
// its envelope, waiting for the PubAck, from 16 concurrent publishers (-cpu sets GOMAXPROCS, not
// the publisher count). sync=always fsyncs every write; sync=1s is the interval policy.
func BenchmarkPublish(b *testing.B) {
	for _, syncAlways := range []bool{true, false} {
		name := "sync=always"
		if !syncAlways {
			name = "sync=1s"
		}
		b.Run(name, func(b *testing.B) {
			q := openBench(b, syncAlways)
			ctx := context.Background()
			var n atomic.Int64
			b.SetParallelism(8) // 8 × GOMAXPROCS(2) = 16 publishers on the test machine
			b.SetBytes(int64(len(benchPayload)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					s := strconv.FormatInt(i, 10)
					env := RawEnvelope{Kind: "incident", Source: "datix", LocalID: "INC-" + s, Key: strconv.FormatInt(i%1024, 16),
						RecordID: "bench-" + s, ReceivedAt: time.Now()}
					if _, err := q.PublishRaw(ctx, env, benchPayload, 0); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkPublishStreams spreads the same publishes over several streams. With sync=always
// each stream fsyncs under its own lock, so this shows how much a disk gains from fsyncs in
// parallel: the case for sharding the ledger over several buckets.
func BenchmarkPublishStreams(b *testing.B) {
	for _, streams := range []int{1, 2, 4, 8} {
		b.Run("streams="+strconv.Itoa(streams), func(b *testing.B) {
			q := openBench(b, true)
			ctx := context.Background()
			for s := range streams {
				if _, err := q.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
					Name: "BENCH" + strconv.Itoa(s), Subjects: []string{"bench." + strconv.Itoa(s) + ".>"},
					Storage: jetstream.FileStorage, Duplicates: time.Minute,
				}); err != nil {
					b.Fatal(err)
				}
			}
			var n atomic.Int64
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					subj := "bench." + strconv.Itoa(int(i)%streams) + ".x"
					if _, err := q.Publish(ctx, subj, "b-"+strconv.FormatInt(i, 10), benchPayload, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
