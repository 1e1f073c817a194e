package insights

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/internal/backoff"
	"github.com/psgw/psgw/internal/supervise"
	"github.com/psgw/psgw/queue"
)

// Bucket is the learning store's key-value bucket. Its keys are the ledger's
// (<source>.<incident key>, a hash, never the local id).
const Bucket = "psgw_insights"

// Store is the learning store: the facts in their bucket and the index over them. The mapper
// writes facts (Put), the ledger's index tells it every delivery state (Observe), and Run keeps
// the index current from a watch on the bucket. Safe for concurrent use.
type Store struct {
	kv    jetstream.KeyValue
	index *index
	log   zerolog.Logger
	now   func() time.Time
}

// Options configure Open.
type Options struct {
	Logger zerolog.Logger
}

// Open creates the store's bucket in q, or opens it.
func Open(ctx context.Context, q *queue.Queue, o Options) (*Store, error) {
	kv, err := q.KeyValueOwnConn(ctx, "psgw-insights", jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "learning store: one identifier-free fact per incident (docs/insights.md)",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, err
	}
	return newStore(kv, o), nil
}

func newStore(kv jetstream.KeyValue, o Options) *Store {
	return &Store{kv: kv, index: newIndex(), log: o.Logger, now: time.Now}
}

// Put writes key's fact. The mapper calls it for every record it maps, before it acknowledges
// the record, so a crash redoes it.
func (s *Store) Put(ctx context.Context, key string, f Fact) error {
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, key, data); err != nil {
		return fmt.Errorf("writing insights fact: %w", err)
	}
	return nil
}

// Delete removes key's fact (a rebuild drops facts of incidents the ledger no longer has).
func (s *Store) Delete(ctx context.Context, key string) error {
	err := s.kv.Delete(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// Keys calls fn with every key the bucket holds.
func (s *Store) Keys(ctx context.Context, fn func(key string)) error {
	l, err := s.kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil
		}
		return err
	}
	defer func() { _ = l.Stop() }()
	for k := range l.Keys() {
		fn(k)
	}
	return nil
}

// Get returns key's stored fact.
func (s *Store) Get(ctx context.Context, key string) (Fact, error) {
	var f Fact
	e, err := s.kv.Get(ctx, key)
	if err != nil {
		return f, err
	}
	err = json.Unmarshal(e.Value(), &f)
	return f, err
}

// Observe is told the delivery ledger's state of an incident and when it was delivered; the
// ledger's index calls it for every entry it reads (ledger.Options.Observe), all of them at
// start and then each change. The index answers with these, not with the state the fact was
// written with: the ledger is where delivery states are kept durably, and writing each change
// again into the learning store's bucket would cost an fsynced write per incident on a stream
// that every incident passes (docs/insights.md, "Who writes it"). It only updates memory, so it
// never holds up the ledger's watch.
func (s *Store) Observe(key, state string, delivered time.Time) {
	s.index.observe(key, state, dayNumber(day(delivered)))
}

// Run keeps the index current from a watch on the bucket until ctx ends. It reopens the watch
// when it ends. It returns nil when ctx ends.
func (s *Store) Run(ctx context.Context) error {
	sup := supervise.Supervisor{
		Run:     s.watch,
		Backoff: backoff.Backoff{Initial: time.Second, Max: 30 * time.Second},
		Failed: func(err error, wait time.Duration) {
			s.log.Warn().Err(err).Dur("retry_in", wait).Msg("insights watch ended; reopening")
		},
	}
	sup.Supervise(ctx)
	return nil
}

func (s *Store) watch(ctx context.Context) error {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("insights watch closed")
			}
			if e == nil {
				s.index.mu.Lock()
				s.index.loading = false
				s.index.mu.Unlock()
				continue
			}
			s.apply(e)
		}
	}
}

func (s *Store) apply(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		s.index.remove(e.Key())
		return
	}
	var f Fact
	if err := json.Unmarshal(e.Value(), &f); err != nil {
		s.log.Warn().Str("key", e.Key()).Msg("unreadable insights fact; left out")
		return
	}
	s.index.put(e.Key(), &f)
}

// Len is how many facts the index holds.
func (s *Store) Len() int { return s.index.len() }

// Loading reports whether the index is still reading the bucket.
func (s *Store) Loading() bool {
	s.index.mu.RLock()
	defer s.index.mu.RUnlock()
	return s.index.loading
}

// Rebuilt is what a rebuild of the store from the raw stream did (mapper.RebuildInsights).
type Rebuilt struct {
	// Written counts the facts written, one per incident the ledger holds a raw record for.
	Written int `json:"written"`
	// Deleted counts facts of incidents the ledger no longer holds.
	Deleted int `json:"deleted"`
	// Missing counts incidents whose raw record is gone (past queue.raw_max_age): their
	// facts, if any, are kept as they are.
	Missing int `json:"missing"`
}
