package ledger

import (
	"context"
	"errors"
	"hash/fnv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// shardedKV is the delivery ledger as one jetstream.KeyValue over several buckets. Operations
// on a key go to the key's bucket; listing, watching and purging span them all. Revisions are
// per bucket, which is all compare-and-set on one key needs.
type shardedKV struct {
	shards []jetstream.KeyValue
}

var _ jetstream.KeyValue = (*shardedKV)(nil)

func (s *shardedKV) shard(key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(len(s.shards)))
}

func (s *shardedKV) of(key string) jetstream.KeyValue { return s.shards[s.shard(key)] }

func (s *shardedKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	return s.of(key).Get(ctx, key)
}

func (s *shardedKV) GetRevision(ctx context.Context, key string, revision uint64) (jetstream.KeyValueEntry, error) {
	return s.of(key).GetRevision(ctx, key, revision)
}

func (s *shardedKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	return s.of(key).Put(ctx, key, value)
}

func (s *shardedKV) PutString(ctx context.Context, key string, value string) (uint64, error) {
	return s.of(key).PutString(ctx, key, value)
}

func (s *shardedKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	return s.of(key).Create(ctx, key, value, opts...)
}

func (s *shardedKV) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	return s.of(key).Update(ctx, key, value, revision)
}

func (s *shardedKV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	return s.of(key).Delete(ctx, key, opts...)
}

func (s *shardedKV) Purge(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	return s.of(key).Purge(ctx, key, opts...)
}

func (s *shardedKV) History(ctx context.Context, key string, opts ...jetstream.WatchOpt) ([]jetstream.KeyValueEntry, error) {
	return s.of(key).History(ctx, key, opts...)
}

func isPattern(keys string) bool { return strings.ContainsAny(keys, "*>") }

func (s *shardedKV) Watch(ctx context.Context, keys string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	if !isPattern(keys) {
		return s.of(keys).Watch(ctx, keys, opts...)
	}
	return s.watchEach(func(kv jetstream.KeyValue) (jetstream.KeyWatcher, error) { return kv.Watch(ctx, keys, opts...) })
}

func (s *shardedKV) WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	return s.watchEach(func(kv jetstream.KeyValue) (jetstream.KeyWatcher, error) { return kv.WatchAll(ctx, opts...) })
}

func (s *shardedKV) WatchFiltered(ctx context.Context, keys []string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	return s.watchEach(func(kv jetstream.KeyValue) (jetstream.KeyWatcher, error) { return kv.WatchFiltered(ctx, keys, opts...) })
}

func (s *shardedKV) Keys(ctx context.Context, opts ...jetstream.WatchOpt) ([]string, error) {
	var all []string
	for _, kv := range s.shards {
		keys, err := kv.Keys(ctx, opts...)
		if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, err
		}
		all = append(all, keys...)
	}
	if len(all) == 0 {
		return nil, jetstream.ErrNoKeysFound
	}
	return all, nil
}

func (s *shardedKV) ListKeys(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyLister, error) {
	return s.listEach(func(kv jetstream.KeyValue) (jetstream.KeyLister, error) { return kv.ListKeys(ctx, opts...) })
}

func (s *shardedKV) ListKeysFiltered(ctx context.Context, filters ...string) (jetstream.KeyLister, error) {
	return s.listEach(func(kv jetstream.KeyValue) (jetstream.KeyLister, error) { return kv.ListKeysFiltered(ctx, filters...) })
}

// Bucket names the ledger by its first bucket.
func (s *shardedKV) Bucket() string { return Bucket }

func (s *shardedKV) PurgeDeletes(ctx context.Context, opts ...jetstream.KVPurgeOpt) error {
	for _, kv := range s.shards {
		if err := kv.PurgeDeletes(ctx, opts...); err != nil {
			return err
		}
	}
	return nil
}

// Status is the first bucket's status; each shard has its own.
func (s *shardedKV) Status(ctx context.Context) (jetstream.KeyValueStatus, error) {
	return s.shards[0].Status(ctx)
}

// listEach chains the shards' listers, one after another.
func (s *shardedKV) listEach(open func(jetstream.KeyValue) (jetstream.KeyLister, error)) (jetstream.KeyLister, error) {
	listers := make([]jetstream.KeyLister, 0, len(s.shards))
	for _, kv := range s.shards {
		l, err := open(kv)
		if err != nil {
			for _, o := range listers {
				_ = o.Stop()
			}
			return nil, err
		}
		listers = append(listers, l)
	}
	out := &multiLister{keys: make(chan string, 256), listers: listers, stop: make(chan struct{})}
	go func() {
		defer close(out.keys)
		for _, l := range listers {
			for k := range l.Keys() {
				select {
				case out.keys <- k:
				case <-out.stop:
					return
				}
			}
		}
	}()
	return out, nil
}

type multiLister struct {
	keys     chan string
	listers  []jetstream.KeyLister
	stop     chan struct{}
	stopOnce sync.Once
}

func (m *multiLister) Keys() <-chan string { return m.keys }

func (m *multiLister) Stop() error {
	var err error
	m.stopOnce.Do(func() {
		close(m.stop)
		for _, l := range m.listers {
			err = errors.Join(err, l.Stop())
		}
	})
	return err
}

// watchEach merges the shards' watchers. Each shard sends its own nil marker once its initial
// values are delivered; the merged watcher sends one nil after all of them have.
func (s *shardedKV) watchEach(open func(jetstream.KeyValue) (jetstream.KeyWatcher, error)) (jetstream.KeyWatcher, error) {
	ws := make([]jetstream.KeyWatcher, 0, len(s.shards))
	for _, kv := range s.shards {
		w, err := open(kv)
		if err != nil {
			for _, o := range ws {
				_ = o.Stop()
			}
			return nil, err
		}
		ws = append(ws, w)
	}
	out := &multiWatcher{updates: make(chan jetstream.KeyValueEntry, 256), watchers: ws, stop: make(chan struct{})}
	var mu sync.Mutex
	initial := len(ws)
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() {
			for e := range w.Updates() {
				if e == nil {
					mu.Lock()
					initial--
					last := initial == 0
					mu.Unlock()
					if !last {
						continue
					}
				}
				select {
				case out.updates <- e:
				case <-out.stop:
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(out.updates) }()
	return out, nil
}

type multiWatcher struct {
	updates  chan jetstream.KeyValueEntry
	watchers []jetstream.KeyWatcher
	stop     chan struct{}
	stopOnce sync.Once
}

func (m *multiWatcher) Updates() <-chan jetstream.KeyValueEntry { return m.updates }

func (m *multiWatcher) Stop() error {
	var err error
	m.stopOnce.Do(func() {
		close(m.stop)
		for _, w := range m.watchers {
			err = errors.Join(err, w.Stop())
		}
	})
	return err
}
