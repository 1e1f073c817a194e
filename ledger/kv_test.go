package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/test/jstest"
)

// TestLedgerShards: keys spread over every shard, each key reads back from where it was
// written, compare-and-set still refuses a stale revision, and listing sees every key once.
func TestLedgerShards(t *testing.T) {
	ctx := context.Background()
	kv := openAt(t, t.TempDir()).kv
	var want []string
	used := map[int]bool{}
	for i := range 40 {
		key := fmt.Sprintf("datix.%032x", i*7919)
		want = append(want, key)
		used[kv.(*shardedKV).shard(key)] = true
		if _, err := kv.Create(ctx, key, []byte(`{"n":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	if len(used) != Shards {
		t.Errorf("got keys in %d shards, want %d", len(used), Shards)
	}
	e, err := kv.Get(ctx, want[3])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, want[3], []byte(`{"n":2}`), e.Revision()); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, want[3], []byte(`{"n":3}`), e.Revision()); err == nil {
		t.Error("got a write with a stale revision accepted, want it refused")
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range lister.Keys() {
		got = append(got, k)
	}
	_ = lister.Stop()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got %d keys listed, want %d", len(got), len(want))
	}
}

// TestLedgerSpreadsAnUnshardedLedger: entries written by a gateway whose ledger was one bucket
// are moved to their shard on the next start, and read back unchanged.
func TestLedgerSpreadsAnUnshardedLedger(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	q := jstest.Open(t, dir)
	if _, err := Open(ctx, q, Options{Logger: zerolog.Nop()}); err != nil {
		t.Fatal(err)
	}
	// Write as an unsharded gateway did: everything in psgw_ledger, bucket not yet marked.
	old, err := q.JetStream().KeyValue(ctx, Bucket)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := range 20 {
		key := fmt.Sprintf("datix.%032x", i)
		keys = append(keys, key)
		if _, err := old.Put(ctx, key, []byte(key)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := q.JetStream().Stream(ctx, "KV_"+Bucket)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	delete(cfg.Metadata, shardsMeta)
	if _, err := q.JetStream().UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	q.Close()

	q = jstest.Open(t, dir)
	kv := openLedger(t, q).kv
	old, err = q.JetStream().KeyValue(ctx, Bucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		e, err := kv.Get(ctx, key)
		if err != nil {
			t.Fatalf("%s: got %v, want the moved entry", key, err)
		}
		if string(e.Value()) != key {
			t.Errorf("%s: got %q, want %q", key, e.Value(), key)
		}
		_, err = old.Get(ctx, key)
		if shard := kv.(*shardedKV).shard(key); shard != 0 && !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("%s (shard %d): got %v from the first bucket, want it moved out", key, shard, err)
		}
	}
}

// TestLedgerWatchAll: a watch over the sharded ledger delivers every existing entry, then one
// end-of-initial-values marker (nil) once every shard has sent its own, then live updates.
func TestLedgerWatchAll(t *testing.T) {
	ctx := context.Background()
	kv := openAt(t, t.TempDir()).kv
	for i := range 12 {
		if _, err := kv.Put(ctx, fmt.Sprintf("datix.%032x", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	initial, markers := 0, 0
	timeout := time.After(10 * time.Second)
	for markers == 0 {
		select {
		case e := <-w.Updates():
			if e == nil {
				markers++
				continue
			}
			initial++
		case <-timeout:
			t.Fatalf("got %d initial values and no marker after 10s", initial)
		}
	}
	if initial != 12 {
		t.Errorf("got %d initial values before the marker, want 12", initial)
	}
	if _, err := kv.Put(ctx, "datix.new", []byte("y")); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-w.Updates():
		if e == nil || e.Key() != "datix.new" {
			t.Errorf("got %v, want the update of datix.new", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no live update after 10s")
	}
}
