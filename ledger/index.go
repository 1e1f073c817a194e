package ledger

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/internal/backoff"
	"github.com/psgw/psgw/internal/supervise"
)

// index keeps a view of the ledger current. RunIndex feeds it from a watch on the ledger's
// buckets, so that page renders, searches, scrapes and the ingest path's "is this key new?"
// never read the whole ledger: a watch delivers every entry once at start (one stream, not a
// request per key) and then each change as it happens. Without RunIndex (a ledger used on its
// own, in a test or a command), the view is rebuilt with Ledger.List at most every listTTL.
type index struct {
	ledger *Ledger
	now    func() time.Time

	mu      sync.RWMutex
	view    *view
	live    bool // RunIndex is feeding the view from a watch
	loading bool // RunIndex has started but the watch has not yet delivered every entry
	// following is true while a watch that has delivered every entry is running, so the view
	// misses at most the changes in flight; false while a watch is loaded or reopened.
	following bool
	listedAt  time.Time
}

// listTTL is how long a List-built view is reused.
const listTTL = 3 * time.Second

func newIndex(l *Ledger) *index {
	return &index{ledger: l, now: time.Now, view: newView()}
}

// RunIndex keeps the ledger's index current from a watch on its buckets until ctx ends,
// rebuilding it whenever the watch has to be reopened. Until its first pass is complete,
// Counts says Loading; meanwhile, and without RunIndex, every answer is read from the ledger
// itself. It returns nil when ctx ends.
func (l *Ledger) RunIndex(ctx context.Context) error {
	return l.index.run(ctx, l.kv, l.log)
}

func (x *index) run(ctx context.Context, kv jetstream.KeyValue, log zerolog.Logger) error {
	x.mu.Lock()
	x.live, x.loading = true, true
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		x.live = false
		x.mu.Unlock()
	}()
	sup := supervise.Supervisor{
		Run:     func(ctx context.Context) error { return x.watchOnce(ctx, kv) },
		Backoff: backoff.Backoff{Initial: time.Second, Max: 30 * time.Second},
		Failed: func(err error, wait time.Duration) {
			log.Warn().Err(err).Dur("retry_in", wait).Msg("ledger watch ended; reopening")
		},
	}
	sup.Supervise(ctx)
	return nil
}

func (x *index) watchOnce(ctx context.Context, kv jetstream.KeyValue) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer func() {
		x.mu.Lock()
		x.following = false
		x.mu.Unlock()
		_ = w.Stop()
	}()
	// The first pass builds a fresh view beside the current one, so a reopened watch never
	// shows half-counted numbers; it is swapped in at the end-of-initial-values marker.
	building := newView()
	initial := true
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errWatchClosed
			}
			if e == nil {
				x.mu.Lock()
				x.view, x.loading, x.following = building, false, true
				x.mu.Unlock()
				initial = false
				continue
			}
			r := decodeRow(e)
			x.tell(e.Key(), r)
			if initial {
				building.apply(e.Key(), r, x.now())
				continue
			}
			x.mu.Lock()
			x.view.apply(e.Key(), r, x.now())
			x.mu.Unlock()
		}
	}
}

// tell passes an entry the watch read to the ledger's observer (Options.Observe).
func (x *index) tell(key string, r *indexed) {
	if x.ledger.observe == nil || r == nil {
		return
	}
	st := stateCodes[r.row.state]
	if r.row.state == otherState {
		st = r.extra.state
	}
	var delivered time.Time
	if r.row.delivered != 0 {
		delivered = time.Unix(0, r.row.delivered)
	}
	x.ledger.observe(key, st, delivered)
}

type watchError string

func (e watchError) Error() string { return string(e) }

const errWatchClosed = watchError("ledger watch closed")

// decodeRow turns a watch entry into a row; nil for a deleted key or a value it cannot read.
func decodeRow(e jetstream.KeyValueEntry) *indexed {
	if e.Operation() != jetstream.KeyValuePut {
		return nil
	}
	var s slimEntry
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return nil
	}
	return rowOf(s)
}

// absent reports whether the watched ledger had no entry for key at its last update: false
// when it does not know (no watch running, or one loading or being reopened). It may miss a
// write of the last few milliseconds, so the ledger takes its word only where that is
// harmless: Update starts a new key with a create, which fails and falls back to a read if
// the entry is there after all; LookupRecent is documented for its callers.
func (x *index) absent(key string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.following {
		return false
	}
	k, ok := x.view.findKey(key)
	if !ok {
		return true // no row has its source (or odd key)
	}
	_, present := x.view.slot[k]
	return !present
}

// read calls fn with a current view, holding it steady for fn's duration. fn must not keep
// the view or its rows.
func (x *index) read(ctx context.Context, fn func(v *view, loading bool)) error {
	x.mu.RLock()
	live := x.live
	fresh := x.now().Sub(x.listedAt) < listTTL
	if live || fresh {
		defer x.mu.RUnlock()
		fn(x.view, x.loading)
		return nil
	}
	x.mu.RUnlock()

	v := newView()
	now := x.now()
	err := x.ledger.List(ctx, func(key string, e *Entry) bool {
		v.apply(key, rowOf(slimOf(e)), now)
		return true
	})
	if err != nil {
		return err
	}
	x.mu.Lock()
	if !x.live {
		x.view, x.listedAt = v, now
	}
	x.mu.Unlock()
	x.mu.RLock()
	defer x.mu.RUnlock()
	fn(x.view, x.loading)
	return nil
}

// Counts is the ledger at a glance, from its index.
type Counts struct {
	// States counts incidents per state; a state with none may be missing or 0.
	States map[State]int
	// NeedsReview counts, per state that needs an operator, the incidents no operator has
	// marked reviewed.
	NeedsReview map[State]int
	// Loading is true while the index is still reading the ledger at start-up: the counts are
	// then incomplete.
	Loading bool
	// PerMinute holds deliveries per minute over the last RateWindow minutes, oldest first;
	// the last is the current, partial minute. It is counted from delivered_at, so it
	// survives a restart.
	PerMinute []int
	// Sources counts each source's incidents, and those mapped with warnings and with
	// fallbacks, by source name.
	Sources map[string]SourceCounts
}

// Counts returns the counts of the ledger's entries, from its index.
func (l *Ledger) Counts(ctx context.Context) (Counts, error) {
	c := Counts{States: map[State]int{}, NeedsReview: map[State]int{}, Sources: map[string]SourceCounts{}}
	err := l.index.read(ctx, func(v *view, loading bool) {
		c.Loading = loading
		for st, n := range v.counts {
			c.States[st] = n
		}
		for st, n := range v.unreviewed {
			c.NeedsReview[st] = n
		}
		c.PerMinute = v.lastMinutes(RateWindow, l.index.now())
		for name, sc := range v.sources {
			c.Sources[name] = *sc
		}
	})
	if err != nil {
		return Counts{}, err
	}
	return c, nil
}

// Sources returns the names of up to limit sources that have incidents in the ledger, in no
// particular order.
func (l *Ledger) Sources(ctx context.Context, limit int) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	err := l.index.read(ctx, func(v *view, _ bool) {
		for _, r := range v.rows {
			if !seen[r.Source] && len(out) < limit {
				seen[r.Source] = true
				out = append(out, r.Source)
			}
		}
	})
	return out, err
}
