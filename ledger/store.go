package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/internal/backoff"
	"github.com/psgw/psgw/queue"
)

// Ledger is the delivery ledger: one JetStream KV entry per incident, keyed by Key, spread over
// Shards buckets (kv.go). Updates are compare-and-set, so the stages never overwrite each
// other's changes. It keeps an index of its entries (index.go) for the status page, searches
// and a quick answer to "has this key no entry?". Safe for concurrent use.
type Ledger struct {
	kv    jetstream.KeyValue
	now   func() time.Time
	index *index
	log   zerolog.Logger
	// observe is Options.Observe.
	observe func(key string, state State, deliveredAt time.Time)
	// absent says quickly that a key has no entry: the index's answer (see index.absent),
	// replaced in tests.
	absent func(key string) bool
	// replica and instance name this gateway in the entries it changes (Options).
	replica, instance string
	// restoredThrough is Options.RestoredThrough.
	restoredThrough uint64
}

// Options configure Open.
type Options struct {
	// Now is the clock of history entries (default time.Now).
	Now    func() time.Time
	Logger zerolog.Logger
	// Replica names this gateway in the history of every entry it changes, and Instance
	// this run of it, in the in-flight marker of every send (docs/cluster.md).
	Replica, Instance string
	// Observe, when set, is called by RunIndex with every entry its watch reads (all of them
	// at start, then each change): its key, state and delivery time (zero when not
	// delivered). It runs on the watch's goroutine and must return quickly. The learning
	// store follows delivery states through it (docs/insights.md).
	Observe func(key string, state State, deliveredAt time.Time)
	// RestoredThrough, when above 0, is the raw stream's last sequence in the backup the store
	// was restored from (`psgw restore`): a record up to it that is not yet in the ledger may
	// have been delivered after the backup was taken, so Map records it unknown instead of
	// queueing it (docs/deploy.md, "What a restore brings back").
	RestoredThrough uint64
	// WrapKV, when set, wraps the ledger's bucket: tests use it to serve the reads a
	// replicated bucket can give, a write behind (see ErrNoChangeIfCurrent).
	WrapKV func(jetstream.KeyValue) jetstream.KeyValue
}

// Open creates the ledger's buckets in q, or opens them (moving the entries of a ledger
// written before it was sharded to their shards), and returns the ledger. Call RunIndex to
// keep its index current.
func Open(ctx context.Context, q *queue.Queue, o Options) (*Ledger, error) {
	kv, err := openKV(ctx, q, o.Logger)
	if err != nil {
		return nil, err
	}
	if o.WrapKV != nil {
		return newLedger(o.WrapKV(kv), o), nil
	}
	return newLedger(kv, o), nil
}

func newLedger(kv jetstream.KeyValue, o Options) *Ledger {
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Ledger{kv: kv, now: o.Now, log: o.Logger, observe: o.Observe, restoredThrough: o.RestoredThrough,
		replica: o.Replica, instance: o.Instance}
	l.index = newIndex(l)
	l.absent = l.index.absent
	return l
}

// Key is the ledger key of an incident: its source and incident key (docs/architecture.md).
func Key(source, incidentKey string) string { return source + "." + incidentKey }

// Get returns the entry for key, or ErrNotFound.
func (l *Ledger) Get(ctx context.Context, key string) (*Entry, error) {
	e, snap, err := l.Read(ctx, key)
	if err != nil {
		return nil, err
	}
	if !snap.exists {
		return nil, ErrNotFound
	}
	return e, nil
}

// LookupRecent is Get, except that a key the index says has no entry is answered ErrNotFound
// without a read. An entry written in the last few milliseconds may be missed, so the answer
// is one Get could have given a moment earlier: use it only where that is an acceptable
// answer, such as spotting a record re-sent long after it was mapped (Resent).
func (l *Ledger) LookupRecent(ctx context.Context, key string) (*Entry, error) {
	if l.absent(key) {
		return nil, ErrNotFound
	}
	return l.Get(ctx, key)
}

// Update applies fn to the entry for key (a zero Entry with exists false when there is none)
// and writes the result with compare-and-set, retrying on conflict. fn may be called more than
// once and must not have side effects. Returning ErrNoChange skips the write; Update then
// returns the entry as read, without error.
func (l *Ledger) Update(ctx context.Context, key string, fn func(e *Entry, exists bool) error) (*Entry, error) {
	var snap *Snapshot
	if l.absent(key) {
		// Most updates of a new incident's key are its first: try the create without reading.
		// If the entry is there after all the create fails as a conflict and update reads it.
		snap = &Snapshot{}
	}
	e, _, err := l.UpdateFrom(ctx, key, snap, fn)
	return e, err
}

// Snapshot is an entry as last read or written, with its revision. Passed to UpdateFrom, it
// stands in for the first read: if the entry changed since, the compare-and-set fails and the
// update reads it afresh, so a stale snapshot costs a retry, never a lost change.
type Snapshot struct {
	data   []byte
	rev    uint64
	exists bool
}

// Read returns the entry for key with its snapshot, or a zero entry when there is none (with a
// snapshot of its absence).
func (l *Ledger) Read(ctx context.Context, key string) (*Entry, *Snapshot, error) {
	kve, err := l.kv.Get(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return &Entry{}, &Snapshot{}, nil
		}
		return nil, nil, fmt.Errorf("reading ledger entry: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return nil, nil, fmt.Errorf("decoding ledger entry: %w", err)
	}
	return &e, &Snapshot{data: kve.Value(), rev: kve.Revision(), exists: true}, nil
}

// UpdateFrom is Update starting from snap (nil: read first), returning the snapshot of what it
// wrote, for the next update of the same entry: a send's three writes cost one read.
func (l *Ledger) UpdateFrom(ctx context.Context, key string, snap *Snapshot, fn func(e *Entry, exists bool) error) (*Entry, *Snapshot, error) {
	for attempt := 0; ; attempt++ {
		var e Entry
		cur := snap
		snap = nil
		if cur == nil {
			kve, err := l.kv.Get(ctx, key)
			switch {
			case err == nil:
				cur = &Snapshot{data: kve.Value(), rev: kve.Revision(), exists: true}
			case errors.Is(err, jetstream.ErrKeyNotFound):
				cur = &Snapshot{}
			default:
				return nil, nil, fmt.Errorf("reading ledger entry: %w", err)
			}
		}
		if cur.exists {
			if err := json.Unmarshal(cur.data, &e); err != nil {
				return nil, nil, fmt.Errorf("decoding ledger entry: %w", err)
			}
		}
		e.replica, e.instance = l.replica, l.instance
		var data []byte
		if err := fn(&e, cur.exists); err != nil {
			switch {
			case errors.Is(err, ErrNoChange):
				return &e, cur, nil
			case errors.Is(err, ErrNoChangeIfCurrent) && !cur.exists:
				// Nothing to write back: a read of nothing is confirmed by a create
				// that must fail, which would leave an empty entry if it did not.
				return nil, nil, fmt.Errorf("%w: the entry is not there to confirm", err)
			case errors.Is(err, ErrNoChangeIfCurrent):
				// Written back as read, byte for byte: the compare-and-set decides
				// whether the read was current (docs/cluster.md, "Two gateways, one
				// incident").
				data = cur.data
			default:
				return nil, nil, err
			}
		}
		if data == nil {
			var err error
			if data, err = json.Marshal(&e); err != nil {
				return nil, nil, fmt.Errorf("encoding ledger entry: %w", err)
			}
		}
		var rev uint64
		var err error
		if cur.exists {
			rev, err = l.kv.Update(ctx, key, data, cur.rev)
		} else {
			rev, err = l.kv.Create(ctx, key, data)
		}
		if err == nil {
			return &e, &Snapshot{data: data, rev: rev, exists: true}, nil
		}
		if !isConflict(err) || attempt >= 50 {
			return nil, nil, fmt.Errorf("writing ledger entry: %w", err)
		}
		if err := conflictPause(ctx, attempt); err != nil {
			return nil, nil, err
		}
	}
}

// conflictBackoff draws a conflicting writer's pause from [0, attempt ms], at most 10 ms.
var conflictBackoff = backoff.Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond, Linear: true, Jitter: true}

// conflictPause spreads writers that keep losing the compare-and-set on one entry: the first
// retries go at once, since a conflict is usually one other writer, and later ones wait a
// random few milliseconds so that a crowd of writers stops colliding in lockstep.
func conflictPause(ctx context.Context, attempt int) error {
	if attempt < 2 {
		return nil
	}
	if err := backoff.Sleep(ctx, conflictBackoff.Delay(attempt)); err != nil {
		return fmt.Errorf("writing ledger entry: %w", err)
	}
	return nil
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		// A replicated bucket (queue.replicas > 1) answers a lost compare-and-set so.
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return true
	}
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// List calls fn for every entry, in key order within each bucket, until fn returns false.
func (l *Ledger) List(ctx context.Context, fn func(key string, e *Entry) bool) error {
	lister, err := l.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("listing ledger: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	for key := range lister.Keys() {
		e, err := l.Get(ctx, key)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return err
		}
		if !fn(key, e) {
			return nil
		}
	}
	return nil
}
