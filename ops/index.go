package ops

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir/privacy"
	"github.com/psgw/psgw/forwarder"
)

// row is what the index keeps of one ledger entry: enough to count, search and list it, and
// nothing that could identify a patient. About 200 bytes each, so a million incidents take
// about 200 MB; a trust's few thousand a year take next to nothing.
type row struct {
	Source            string
	LocalID           string
	State             forwarder.State
	Revision          int
	Attempts          int
	Reviewed          bool
	PossibleDuplicate bool
	// LastError is kept only for states that need an operator, shortened, with
	// NHS-number-shaped strings redacted.
	LastError   string
	ReceivedAt  time.Time
	UpdatedAt   time.Time
	DeliveredAt time.Time
}

// slimEntry decodes only what the index keeps; the history, often most of an entry, is
// skipped by the decoder without being built.
type slimEntry struct {
	Source            string          `json:"source"`
	LocalID           string          `json:"local_id"`
	Revision          int             `json:"revision"`
	State             forwarder.State `json:"state"`
	Attempts          int             `json:"attempts"`
	LastError         string          `json:"last_error"`
	PossibleDuplicate bool            `json:"possible_duplicate"`
	Reviewed          bool            `json:"reviewed"`
	ReceivedAt        time.Time       `json:"received_at"`
	UpdatedAt         time.Time       `json:"updated_at"`
	DeliveredAt       time.Time       `json:"delivered_at"`
}

// attentionStates are the states where an incident stays until a person acts.
var attentionStates = []forwarder.State{forwarder.StateUnknown, forwarder.StateFailed, forwarder.StateRejected, forwarder.StateQuarantined}

func needsAttention(st forwarder.State) bool {
	for _, a := range attentionStates {
		if a == st {
			return true
		}
	}
	return false
}

// maxShownError bounds a last error kept in the index and shown in lists.
const maxShownError = 300

// cleanText makes free text from the national service or the mapper fit to show: NHS
// numbers redacted (they should never be there, but an echoed payload could carry one) and
// shortened to max runes.
func cleanText(s string, max int) string {
	s, _ = privacy.RedactText(s)
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return s
}

func rowOf(e slimEntry) *row {
	r := &row{Source: e.Source, LocalID: e.LocalID, State: e.State, Revision: e.Revision, Attempts: e.Attempts,
		Reviewed: e.Reviewed, PossibleDuplicate: e.PossibleDuplicate, ReceivedAt: e.ReceivedAt,
		UpdatedAt: e.UpdatedAt, DeliveredAt: e.DeliveredAt}
	if e.LastError != "" && (needsAttention(e.State) || e.State == forwarder.StateRetrying || e.State == forwarder.StateHeld) {
		r.LastError = cleanText(e.LastError, maxShownError)
	}
	return r
}

// rateWindow is how far back the delivery rate looks, one bucket a minute.
const rateWindow = 60

// ledgerView is one consistent picture of the ledger.
type ledgerView struct {
	rows       map[string]*row
	counts     map[forwarder.State]int
	unreviewed map[forwarder.State]int
	// perMinute counts deliveries by the Unix minute of their delivered_at, over the last
	// rateWindow minutes.
	perMinute [rateWindow]struct {
		minute int64
		n      int
	}
}

func newLedgerView() *ledgerView {
	return &ledgerView{rows: map[string]*row{}, counts: map[forwarder.State]int{}, unreviewed: map[forwarder.State]int{}}
}

// apply replaces the row for key (nil removes it), keeping the counts in step.
func (v *ledgerView) apply(key string, r *row, now time.Time) {
	old := v.rows[key]
	if old != nil {
		v.counts[old.State]--
		if needsAttention(old.State) && !old.Reviewed {
			v.unreviewed[old.State]--
		}
	}
	if r == nil {
		delete(v.rows, key)
		return
	}
	v.rows[key] = r
	v.counts[r.State]++
	if needsAttention(r.State) && !r.Reviewed {
		v.unreviewed[r.State]++
	}
	if !r.DeliveredAt.IsZero() && (old == nil || !old.DeliveredAt.Equal(r.DeliveredAt)) {
		v.countDelivery(r.DeliveredAt, now)
	}
}

func (v *ledgerView) countDelivery(at, now time.Time) {
	m, cur := at.Unix()/60, now.Unix()/60
	if m <= cur-rateWindow || m > cur {
		return
	}
	b := &v.perMinute[m%rateWindow]
	if b.minute != m {
		b.minute, b.n = m, 0
	}
	b.n++
}

// lastMinutes returns deliveries per minute for the last n minutes, oldest first; the last
// element is the current, partial minute.
func (v *ledgerView) lastMinutes(n int, now time.Time) []int {
	cur := now.Unix() / 60
	out := make([]int, n)
	for i := range n {
		m := cur - int64(n-1-i)
		if b := v.perMinute[((m%rateWindow)+rateWindow)%rateWindow]; b.minute == m {
			out[i] = b.n
		}
	}
	return out
}

// ledgerIndex keeps ledgerView current. Run feeds it from a watch on the ledger bucket, so
// page renders, searches and scrapes never read the whole ledger: a watch delivers every
// entry once at start (one stream, not a request per key) and then each change as it
// happens. Without Run (a Server used on its own), the view is rebuilt with Ledger.List at
// most every listTTL.
type ledgerIndex struct {
	ledger *forwarder.Ledger
	now    func() time.Time

	mu       sync.RWMutex
	view     *ledgerView
	live     bool // Run is feeding the view from a watch
	loading  bool // Run has started but the watch has not yet delivered every entry
	listedAt time.Time
}

// listTTL is how long a List-built view is reused.
const listTTL = 3 * time.Second

func newLedgerIndex(l *forwarder.Ledger) *ledgerIndex {
	return &ledgerIndex{ledger: l, now: time.Now, view: newLedgerView()}
}

// run watches kv until ctx ends, rebuilding the view whenever the watch has to be reopened.
func (x *ledgerIndex) run(ctx context.Context, kv jetstream.KeyValue, log zerolog.Logger) error {
	x.mu.Lock()
	x.live, x.loading = true, true
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		x.live = false
		x.mu.Unlock()
	}()
	delay := time.Second
	for ctx.Err() == nil {
		err := x.watchOnce(ctx, kv)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn().Err(err).Dur("retry_in", delay).Msg("ledger watch ended; reopening")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
	return nil
}

func (x *ledgerIndex) watchOnce(ctx context.Context, kv jetstream.KeyValue) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	// The first pass builds a fresh view beside the current one, so a reopened watch never
	// shows half-counted numbers; it is swapped in at the end-of-initial-values marker.
	building := newLedgerView()
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
				x.view, x.loading = building, false
				x.mu.Unlock()
				initial = false
				continue
			}
			r := decodeRow(e)
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

type watchError string

func (e watchError) Error() string { return string(e) }

const errWatchClosed = watchError("ledger watch closed")

// decodeRow turns a watch entry into a row; nil for a deleted key or a value it cannot read.
func decodeRow(e jetstream.KeyValueEntry) *row {
	if e.Operation() != jetstream.KeyValuePut {
		return nil
	}
	var s slimEntry
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return nil
	}
	return rowOf(s)
}

// read calls fn with a current view, holding it steady for fn's duration. fn must not keep
// the view or its rows.
func (x *ledgerIndex) read(ctx context.Context, fn func(v *ledgerView, loading bool)) error {
	x.mu.RLock()
	live := x.live
	fresh := x.now().Sub(x.listedAt) < listTTL
	if live || fresh {
		defer x.mu.RUnlock()
		fn(x.view, x.loading)
		return nil
	}
	x.mu.RUnlock()

	v := newLedgerView()
	now := x.now()
	err := x.ledger.List(ctx, func(key string, e *forwarder.Entry) bool {
		v.apply(key, rowOf(slimEntry{Source: e.Source, LocalID: e.LocalID, Revision: e.Revision, State: e.State,
			Attempts: e.Attempts, LastError: e.LastError, PossibleDuplicate: e.PossibleDuplicate, Reviewed: e.Reviewed,
			ReceivedAt: e.ReceivedAt, UpdatedAt: e.UpdatedAt, DeliveredAt: e.DeliveredAt}), now)
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

// Query selects incidents for GET /api/v1/incidents. Empty fields do not filter.
type Query struct {
	Source string
	// LocalID matches any incident whose local id contains it, ignoring case.
	LocalID string
	States  []forwarder.State
	// From and To bound updated_at (the last change), as the bulk replay's filters do, so
	// that a search and a bulk replay with the same filters select the same incidents.
	From, To time.Time
	// Reviewed, when not nil, keeps only incidents whose reviewed flag equals it.
	Reviewed *bool
	Offset   int
	Limit    int
}

// Summary is one incident in a list: its delivery record without the history.
type Summary struct {
	Source            string          `json:"source"`
	LocalID           string          `json:"local_id"`
	Revision          int             `json:"revision"`
	State             forwarder.State `json:"state"`
	Attempts          int             `json:"attempts"`
	LastError         string          `json:"last_error,omitempty"`
	Reviewed          bool            `json:"reviewed"`
	PossibleDuplicate bool            `json:"possible_duplicate,omitempty"`
	ReceivedAt        time.Time       `json:"received_at,omitzero"`
	UpdatedAt         time.Time       `json:"updated_at,omitzero"`
	DeliveredAt       time.Time       `json:"delivered_at,omitzero"`
}

// Page is a page of search results, newest change first.
type Page struct {
	Total  int       `json:"total"`
	Offset int       `json:"offset"`
	Limit  int       `json:"limit"`
	Items  []Summary `json:"items"`
}

// Limits on a page of results.
const (
	DefaultPageSize = 25
	MaxPageSize     = 500
)

func (q *Query) matches(r *row) bool {
	if q.Source != "" && r.Source != q.Source {
		return false
	}
	if q.LocalID != "" && !strings.Contains(strings.ToLower(r.LocalID), strings.ToLower(q.LocalID)) {
		return false
	}
	if len(q.States) > 0 {
		found := false
		for _, s := range q.States {
			if s == r.State {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if !q.From.IsZero() && r.UpdatedAt.Before(q.From) {
		return false
	}
	if !q.To.IsZero() && !r.UpdatedAt.Before(q.To) {
		return false
	}
	if q.Reviewed != nil && r.Reviewed != *q.Reviewed {
		return false
	}
	return true
}

// search returns one page of the incidents q selects.
func (x *ledgerIndex) search(ctx context.Context, q Query) (Page, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultPageSize
	}
	q.Limit = min(q.Limit, MaxPageSize)
	q.Offset = max(q.Offset, 0)
	p := Page{Offset: q.Offset, Limit: q.Limit, Items: []Summary{}}
	var hits []*row
	err := x.read(ctx, func(v *ledgerView, _ bool) {
		for _, r := range v.rows {
			if q.matches(r) {
				hits = append(hits, r)
			}
		}
		sort.Slice(hits, func(i, j int) bool {
			if !hits[i].UpdatedAt.Equal(hits[j].UpdatedAt) {
				return hits[i].UpdatedAt.After(hits[j].UpdatedAt)
			}
			if hits[i].Source != hits[j].Source {
				return hits[i].Source < hits[j].Source
			}
			return hits[i].LocalID < hits[j].LocalID
		})
		p.Total = len(hits)
		for _, r := range hits[min(q.Offset, len(hits)):min(q.Offset+q.Limit, len(hits))] {
			p.Items = append(p.Items, Summary{Source: r.Source, LocalID: r.LocalID, Revision: r.Revision, State: r.State,
				Attempts: r.Attempts, LastError: r.LastError, Reviewed: r.Reviewed, PossibleDuplicate: r.PossibleDuplicate,
				ReceivedAt: r.ReceivedAt, UpdatedAt: r.UpdatedAt, DeliveredAt: r.DeliveredAt})
		}
	})
	return p, err
}
