package ledger

import (
	"strings"
	"time"

	"github.com/psgw/psgw/fhir/privacy"
)

// row is what the index keeps of one ledger entry: enough to count, search and list it, and
// nothing that could identify a patient. Apart from its two strings (Source is shared by every
// row of a source) it holds no pointers: times are Unix nanoseconds and the state a one-byte
// code. With its key a row takes about 140 bytes of map space plus the local id, so a million
// incidents take about 150 MB and a trust's few thousand a year next to nothing. The rare
// extras (a last error, a state the index has no code for) live beside the rows, in
// view.extra.
type row struct {
	Source    string
	LocalID   string
	received  int64 // Unix nanoseconds; 0 for the zero time
	updated   int64
	delivered int64
	// Revision is as wide as the entry's: a source may number its revisions up to
	// fhir.MaxRevision, far beyond 32 bits.
	Revision          int64
	Attempts          int32
	state             stateCode
	Reviewed          bool
	PossibleDuplicate bool
	// warned and fallbacks: the newest mapping had warnings, and some were fallbacks
	// (Entry.Warnings), counted per source for the status page.
	warned    bool
	fallbacks bool
	used      bool // in a rowTable: the place holds a row
}

// rowExtra is what few rows have: the last error, kept only for states that need an operator,
// shortened, with NHS-number-shaped strings redacted; and the name of a state with no code.
type rowExtra struct {
	lastError string
	state     State
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

// stateCodes are the codes' states: every known state, so that a new one gets a code.
var stateCodes = append([]State{""}, States()...)

func codeOf(st State) stateCode {
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
	Source            string    `json:"source"`
	LocalID           string    `json:"local_id"`
	Revision          int       `json:"revision"`
	State             State     `json:"state"`
	Attempts          int       `json:"attempts"`
	LastError         string    `json:"last_error"`
	PossibleDuplicate bool      `json:"possible_duplicate"`
	Reviewed          bool      `json:"reviewed"`
	ReceivedAt        time.Time `json:"received_at"`
	UpdatedAt         time.Time `json:"updated_at"`
	DeliveredAt       time.Time `json:"delivered_at"`
	// Warnings is decoded only for whether each is a fallback; the rest of each is skipped.
	Warnings []struct {
		Fallback bool `json:"fallback"`
	} `json:"warnings"`
}

// slimOf is what the index keeps of an entry already decoded.
func slimOf(e *Entry) slimEntry {
	s := slimEntry{Source: e.Source, LocalID: e.LocalID, Revision: e.Revision, State: e.State,
		Attempts: e.Attempts, LastError: e.LastError, PossibleDuplicate: e.PossibleDuplicate, Reviewed: e.Reviewed,
		ReceivedAt: e.ReceivedAt, UpdatedAt: e.UpdatedAt, DeliveredAt: e.DeliveredAt}
	s.Warnings = make([]struct {
		Fallback bool `json:"fallback"`
	}, len(e.Warnings))
	for i, w := range e.Warnings {
		s.Warnings[i].Fallback = w.Fallback
	}
	return s
}

// maxShownError bounds a last error kept in the index and shown in lists.
const maxShownError = 300

// ShowableText makes free text from the national service or the mapper (a last error, a
// history detail) fit to show: NHS numbers redacted (they should never be there, but an echoed
// payload could carry one) and shortened to max runes. The index keeps last errors only so.
func ShowableText(s string, max int) string {
	s, _ = privacy.RedactText(s)
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return s
}

// indexed is one ledger entry as the index takes it: the row and its extras.
type indexed struct {
	row   row
	extra rowExtra
}

func rowOf(e slimEntry) *indexed {
	r := &indexed{row: row{Source: e.Source, LocalID: e.LocalID, Revision: int64(e.Revision), Attempts: int32(e.Attempts),
		Reviewed: e.Reviewed, PossibleDuplicate: e.PossibleDuplicate, received: unixNano(e.ReceivedAt),
		updated: unixNano(e.UpdatedAt), delivered: unixNano(e.DeliveredAt), state: codeOf(e.State),
		warned: len(e.Warnings) > 0}}
	for _, w := range e.Warnings {
		r.row.fallbacks = r.row.fallbacks || w.Fallback
	}
	if r.row.state == otherState {
		r.extra.state = e.State
	}
	if e.LastError != "" && (e.State.NeedsOperator() || e.State == StateRetrying || e.State == StateHeld) {
		r.extra.lastError = ShowableText(e.LastError, maxShownError)
	}
	return r
}

// RateWindow is how many minutes back the delivery rate looks (Counts.PerMinute), one bucket
// a minute.
const RateWindow = 60

// view is one consistent picture of the ledger.
type view struct {
	// table holds every row, in fixed chunks so that growing never copies them; a deleted
	// row's place is reused. slot finds a key's row.
	table      rowTable
	slot       map[rowKey]uint32
	counts     map[State]int
	unreviewed map[State]int
	// sources counts the rows of each source, and those whose newest mapping warned or fell
	// back, by the source's interned name.
	sources map[string]*SourceCounts
	// extra holds the rows' rare extras, by their place in rows; absent means none.
	extra map[uint32]rowExtra
	// names numbers sources and odd keys for rowKey; a source's name is also every row's
	// Source, so a source's name is stored once.
	names   []string
	nameIDs map[string]uint32
	// perMinute counts deliveries by the Unix minute of their delivered_at, over the last
	// RateWindow minutes.
	perMinute [RateWindow]struct {
		minute int64
		n      int
	}
}

func newView() *view {
	return &view{slot: map[rowKey]uint32{}, extra: map[uint32]rowExtra{}, counts: map[State]int{},
		unreviewed: map[State]int{}, nameIDs: map[string]uint32{}, sources: map[string]*SourceCounts{}}
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
func (v *view) rows(yield func(uint32, *row) bool) { v.table.all(yield) }

// name returns the number of s in the name table, adding it.
func (v *view) name(s string) uint32 {
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
func (v *view) interned(s string) string {
	return v.names[v.name(s)]
}

// keyOf turns a ledger key into its rowKey.
func (v *view) keyOf(key string) rowKey {
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
func (v *view) findKey(key string) (rowKey, bool) {
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
func (v *view) state(i uint32, r *row) State {
	if r.state == otherState {
		return v.extra[i].state
	}
	return stateCodes[r.state]
}

// apply replaces the row for key (nil removes it), keeping the counts in step.
func (v *view) apply(key string, e *indexed, now time.Time) {
	k := v.keyOf(key)
	i, ok := v.slot[k]
	if ok {
		old := v.table.at(i)
		st := v.state(i, old)
		v.counts[st]--
		v.countSource(old, -1)
		if st.NeedsOperator() && !old.Reviewed {
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
	v.countSource(&r, 1)
	if st.NeedsOperator() && !r.Reviewed {
		v.unreviewed[st]++
	}
}

// SourceCounts are one source's incidents in the ledger, and how many of them were mapped, at
// their newest record, with warnings and with fallbacks (Entry.Warnings).
type SourceCounts struct {
	Incidents int `json:"incidents"`
	Warned    int `json:"with_warnings"`
	Fallbacks int `json:"with_fallbacks"`
}

// countSource adds d (1 or -1) of row r to its source's counts; a source whose count falls
// to none is forgotten.
func (v *view) countSource(r *row, d int) {
	c := v.sources[r.Source]
	if c == nil {
		c = &SourceCounts{}
		v.sources[r.Source] = c
	}
	c.Incidents += d
	if r.warned {
		c.Warned += d
	}
	if r.fallbacks {
		c.Fallbacks += d
	}
	if c.Incidents <= 0 {
		delete(v.sources, r.Source)
	}
}

func (v *view) countDelivery(atNano int64, now time.Time) {
	m, cur := unixTime(atNano).Unix()/60, now.Unix()/60
	if m <= cur-RateWindow || m > cur {
		return
	}
	b := &v.perMinute[m%RateWindow]
	if b.minute != m {
		b.minute, b.n = m, 0
	}
	b.n++
}

// lastMinutes returns deliveries per minute for the last n minutes, oldest first; the last
// element is the current, partial minute.
func (v *view) lastMinutes(n int, now time.Time) []int {
	cur := now.Unix() / 60
	out := make([]int, n)
	for i := range n {
		m := cur - int64(n-1-i)
		if b := v.perMinute[((m%RateWindow)+RateWindow)%RateWindow]; b.minute == m {
			out[i] = b.n
		}
	}
	return out
}
