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
// nothing that could identify a patient. Apart from its two strings (Source is shared by every
// row of a source) it holds no pointers: times are Unix nanoseconds and the state a one-byte
// code. With its key a row takes about 130 bytes of map space plus the local id, so a million
// incidents take about 150 MB and a trust's few thousand a year next to nothing. The rare
// extras (a last error, a state the index has no code for) live beside the rows, in
// ledgerView.extra.
type row struct {
	Source            string
	LocalID           string
	received          int64 // Unix nanoseconds; 0 for the zero time
	updated           int64
	delivered         int64
	Revision          int32
	Attempts          int32
	state             stateCode
	Reviewed          bool
	PossibleDuplicate bool
	used              bool // in a rowTable: the place holds a row
}

// rowExtra is what few rows have: the last error, kept only for states that need an operator,
// shortened, with NHS-number-shaped strings redacted; and the name of a state with no code.
type rowExtra struct {
	lastError string
	state     forwarder.State
}

// unixNano and unixTime keep a time in 8 bytes. The gateway writes every ledger time in UTC,
// so it comes back as it was; 0 stands for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func unixTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// stateCode is a State in one byte: its index in stateCodes. otherState marks a state with no
// code, whose name is kept in the row's extra.
type stateCode uint8

const otherState stateCode = 0

var stateCodes = []forwarder.State{"", forwarder.StateReceived, forwarder.StateQueued, forwarder.StateDelivering,
	forwarder.StateDelivered, forwarder.StateRetrying, forwarder.StateRejected, forwarder.StateQuarantined,
	forwarder.StateHeld, forwarder.StateUnknown, forwarder.StateFailed}

func codeOf(st forwarder.State) stateCode {
	for i, s := range stateCodes[1:] {
		if s == st {
			return stateCode(i + 1)
		}
	}
	return otherState
}

// rowKey is a ledger key in 20 bytes without pointers. The usual "<source>.<32 hex digits>" is
// the source's number in the view's name table and the 16 bytes the digits spell; any other
// key is kept whole in the name table, its number marked with oddKey.
type rowKey struct {
	name uint32
	id   [16]byte
}

const oddKey = 1 << 31

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

// entry is one ledger entry as the index takes it: the row and its extras.
type entry struct {
	row   row
	extra rowExtra
}

func rowOf(e slimEntry) *entry {
	r := &entry{row: row{Source: e.Source, LocalID: e.LocalID, Revision: int32(e.Revision), Attempts: int32(e.Attempts),
		Reviewed: e.Reviewed, PossibleDuplicate: e.PossibleDuplicate, received: unixNano(e.ReceivedAt),
		updated: unixNano(e.UpdatedAt), delivered: unixNano(e.DeliveredAt), state: codeOf(e.State)}}
	if r.row.state == otherState {
		r.extra.state = e.State
	}
	if e.LastError != "" && (needsAttention(e.State) || e.State == forwarder.StateRetrying || e.State == forwarder.StateHeld) {
		r.extra.lastError = cleanText(e.LastError, maxShownError)
	}
	return r
}

// rateWindow is how far back the delivery rate looks, one bucket a minute.
const rateWindow = 60

// ledgerView is one consistent picture of the ledger.
type ledgerView struct {
	// table holds every row, in fixed chunks so that growing never copies them; a deleted
	// row's place is reused. slot finds a key's row.
	table      rowTable
	slot       map[rowKey]uint32
	counts     map[forwarder.State]int
	unreviewed map[forwarder.State]int
	// extra holds the rows' rare extras, by their place in rows; absent means none.
	extra map[uint32]rowExtra
	// names numbers sources and odd keys for rowKey; a source's name is also every row's
	// Source, so a source's name is stored once.
	names   []string
	nameIDs map[string]uint32
	// perMinute counts deliveries by the Unix minute of their delivered_at, over the last
	// rateWindow minutes.
	perMinute [rateWindow]struct {
		minute int64
		n      int
	}
}

func newLedgerView() *ledgerView {
	return &ledgerView{slot: map[rowKey]uint32{}, extra: map[uint32]rowExtra{}, counts: map[forwarder.State]int{},
		unreviewed: map[forwarder.State]int{}, nameIDs: map[string]uint32{}}
}

// rowChunk is how many rows a chunk of a rowTable holds.
const rowChunk = 4096

// rowTable stores rows by number. Ranging over it (for i, r := range t.all) yields each row in
// use with its number.
type rowTable struct {
	chunks [][]row
	n      uint32 // numbers below n have been handed out
	free   []uint32
}

func (t *rowTable) at(i uint32) *row { return &t.chunks[i/rowChunk][i%rowChunk] }

// add stores r and returns its number.
func (t *rowTable) add(r row) uint32 {
	r.used = true
	var i uint32
	if n := len(t.free); n > 0 {
		i, t.free = t.free[n-1], t.free[:n-1]
	} else {
		i = t.n
		t.n++
		if int(i/rowChunk) == len(t.chunks) {
			t.chunks = append(t.chunks, make([]row, rowChunk))
		}
	}
	*t.at(i) = r
	return i
}

// remove frees row i.
func (t *rowTable) remove(i uint32) {
	*t.at(i) = row{}
	t.free = append(t.free, i)
}

// all yields every row in use with its number.
func (t *rowTable) all(yield func(uint32, *row) bool) {
	for c, chunk := range t.chunks {
		for j := range chunk {
			if r := &chunk[j]; r.used && !yield(uint32(c*rowChunk+j), r) {
				return
			}
		}
	}
}

// rows yields every row with its number: for i, r := range v.rows.
func (v *ledgerView) rows(yield func(uint32, *row) bool) { v.table.all(yield) }

// name returns the number of s in the name table, adding it.
func (v *ledgerView) name(s string) uint32 {
	if id, ok := v.nameIDs[s]; ok {
		return id
	}
	id := uint32(len(v.names))
	s = strings.Clone(s) // not a slice of a larger buffer
	v.names = append(v.names, s)
	v.nameIDs[s] = id
	return id
}

// interned returns s as stored in the name table, so that rows share it.
func (v *ledgerView) interned(s string) string {
	return v.names[v.name(s)]
}

// keyOf turns a ledger key into its rowKey.
func (v *ledgerView) keyOf(key string) rowKey {
	if i := strings.LastIndexByte(key, '.'); i > 0 && len(key)-i-1 == 32 {
		var k rowKey
		if decodeLowerHex(k.id[:], key[i+1:]) {
			k.name = v.name(key[:i])
			return k
		}
	}
	return rowKey{name: v.name(key) | oddKey}
}

// findKey is keyOf for a lookup: it adds nothing to the name table, and reports false when
// the key's name is not in it (so no row can have that key).
func (v *ledgerView) findKey(key string) (rowKey, bool) {
	if i := strings.LastIndexByte(key, '.'); i > 0 && len(key)-i-1 == 32 {
		var k rowKey
		if decodeLowerHex(k.id[:], key[i+1:]) {
			id, ok := v.nameIDs[key[:i]]
			k.name = id
			return k, ok
		}
	}
	id, ok := v.nameIDs[key]
	return rowKey{name: id | oddKey}, ok
}

// decodeLowerHex decodes 2×len(dst) lower-case hex digits (only those, so that no two keys
// share a rowKey) into dst.
func decodeLowerHex(dst []byte, s string) bool {
	nibble := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		}
		return 0, false
	}
	for i := range dst {
		hi, ok1 := nibble(s[2*i])
		lo, ok2 := nibble(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

// state returns row i's state, by name.
func (v *ledgerView) state(i uint32, r *row) forwarder.State {
	if r.state == otherState {
		return v.extra[i].state
	}
	return stateCodes[r.state]
}

// apply replaces the row for key (nil removes it), keeping the counts in step.
func (v *ledgerView) apply(key string, e *entry, now time.Time) {
	k := v.keyOf(key)
	i, ok := v.slot[k]
	if ok {
		old := v.table.at(i)
		st := v.state(i, old)
		v.counts[st]--
		if needsAttention(st) && !old.Reviewed {
			v.unreviewed[st]--
		}
		if e == nil {
			delete(v.slot, k)
			delete(v.extra, i)
			v.table.remove(i)
			return
		}
		if e.row.delivered != 0 && old.delivered != e.row.delivered {
			v.countDelivery(e.row.delivered, now)
		}
	} else if e == nil {
		return
	} else if e.row.delivered != 0 {
		v.countDelivery(e.row.delivered, now)
	}
	r := e.row
	r.Source = v.interned(r.Source)
	if ok {
		r.used = true
		*v.table.at(i) = r
	} else {
		i = v.table.add(r)
		v.slot[k] = i
	}
	if e.extra != (rowExtra{}) {
		v.extra[i] = e.extra
	} else {
		delete(v.extra, i)
	}
	st := v.state(i, &r)
	v.counts[st]++
	if needsAttention(st) && !r.Reviewed {
		v.unreviewed[st]++
	}
}

func (v *ledgerView) countDelivery(atNano int64, now time.Time) {
	m, cur := unixTime(atNano).Unix()/60, now.Unix()/60
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

	mu      sync.RWMutex
	view    *ledgerView
	live    bool // Run is feeding the view from a watch
	loading bool // Run has started but the watch has not yet delivered every entry
	// following is true while a watch that has delivered every entry is running, so the view
	// misses at most the changes in flight; false while a watch is loaded or reopened.
	following bool
	listedAt  time.Time
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
	defer func() {
		x.mu.Lock()
		x.following = false
		x.mu.Unlock()
		_ = w.Stop()
	}()
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
				x.view, x.loading, x.following = building, false, true
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
func decodeRow(e jetstream.KeyValueEntry) *entry {
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
// when it does not know (no watch running, or one loading or being reopened).
func (x *ledgerIndex) absent(key string) bool {
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

// LedgerAbsent reports whether the ledger had no entry for key a moment ago, by the status
// index, without a read; false when the index does not know (see forwarder.SetAbsentHint).
func (s *Server) LedgerAbsent(key string) bool { return s.index().absent(key) }

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

func (q *Query) matches(v *ledgerView, i uint32, r *row) bool {
	if q.Source != "" && r.Source != q.Source {
		return false
	}
	if q.LocalID != "" && !strings.Contains(strings.ToLower(r.LocalID), strings.ToLower(q.LocalID)) {
		return false
	}
	if len(q.States) > 0 {
		st := v.state(i, r)
		found := false
		for _, s := range q.States {
			if s == st {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if !q.From.IsZero() && unixTime(r.updated).Before(q.From) {
		return false
	}
	if !q.To.IsZero() && !unixTime(r.updated).Before(q.To) {
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
	type hit struct {
		i uint32
		r *row
	}
	var hits []hit
	err := x.read(ctx, func(v *ledgerView, _ bool) {
		for i, r := range v.rows {
			if q.matches(v, i, r) {
				hits = append(hits, hit{i, r})
			}
		}
		sort.Slice(hits, func(i, j int) bool {
			a, b := hits[i].r, hits[j].r
			if a.updated != b.updated {
				return a.updated > b.updated
			}
			if a.Source != b.Source {
				return a.Source < b.Source
			}
			return a.LocalID < b.LocalID
		})
		p.Total = len(hits)
		for _, h := range hits[min(q.Offset, len(hits)):min(q.Offset+q.Limit, len(hits))] {
			r := h.r
			p.Items = append(p.Items, Summary{Source: r.Source, LocalID: r.LocalID, Revision: int(r.Revision), State: v.state(h.i, r),
				Attempts: int(r.Attempts), LastError: v.extra[h.i].lastError, Reviewed: r.Reviewed, PossibleDuplicate: r.PossibleDuplicate,
				ReceivedAt: unixTime(r.received), UpdatedAt: unixTime(r.updated), DeliveredAt: unixTime(r.delivered)})
		}
	})
	return p, err
}
