package insights

import (
	"math"
	"sync"
	"time"
)

// The columns of a row; init checks them against dimensions.
const (
	singleCols = 10
	multiCols  = 2
)

func init() {
	if nSingle != singleCols || nMulti != multiCols {
		panic("insights: row columns do not match the dimensions")
	}
}

// noDay marks a date a fact does not have.
const noDay = math.MinInt32

// row is one fact in the index: every value a small number, so that a query over a million
// facts is a scan of a few tens of megabytes (docs/insights.md, "Speed").
type row struct {
	v     [singleCols]uint16 // each single-valued dimension's value, an index into its dictionary
	masks [multiCols]uint16  // each multi-valued dimension's values, one bit per fixed value
	// when is the day counted by: occurred, else received. The others are the fact's dates.
	when, occurred, reported, received, delivered int32
	// observed says the state and delivery date come from the ledger, not the fact.
	observed bool
	used     bool
}

// dictionary numbers one dimension's values; 0 is "no value" (NotRecorded).
type dictionary struct {
	values []string
	ids    map[string]uint16
}

func newDictionary(fixed []string) *dictionary {
	d := &dictionary{values: []string{""}, ids: map[string]uint16{"": 0}}
	for _, v := range fixed {
		d.id(v)
	}
	return d
}

// id returns v's number, adding it. Past 65,535 values a new one counts as no value.
func (d *dictionary) id(v string) uint16 {
	if n, ok := d.ids[v]; ok {
		return n
	}
	if len(d.values) > math.MaxUint16 {
		return 0
	}
	n := uint16(len(d.values))
	d.values = append(d.values, v)
	d.ids[v] = n
	return n
}

// observed is what the ledger last said of an incident whose fact the index does not hold yet.
type observed struct {
	state     string
	delivered int32
}

// index holds every fact in memory. Safe for concurrent use.
type index struct {
	mu      sync.RWMutex
	rows    []row
	slot    map[string]int32
	free    []int32
	dicts   [singleCols]*dictionary
	pending map[string]observed
	// loading is true until the bucket's facts have all been read once.
	loading bool
}

func newIndex() *index {
	x := &index{slot: map[string]int32{}, pending: map[string]observed{}, loading: true}
	for _, d := range dimensions {
		if !d.multi {
			x.dicts[d.col] = newDictionary(d.fixed)
		}
	}
	return x
}

// dayNumber is the number of days since 1970-01-01 of a YYYY-MM-DD date, noDay for "".
func dayNumber(s string) int32 {
	if s == "" {
		return noDay
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return noDay
	}
	return int32(t.Unix() / 86400)
}

func dayString(n int32) string {
	if n == noDay {
		return ""
	}
	return time.Unix(int64(n)*86400, 0).UTC().Format(time.DateOnly)
}

// put sets key's fact. The ledger's word on its state and delivery, when it has been heard,
// stands over the fact's.
func (x *index) put(key string, f *Fact) {
	x.mu.Lock()
	defer x.mu.Unlock()
	r := row{used: true, occurred: dayNumber(f.Occurred), reported: dayNumber(f.Reported),
		received: dayNumber(f.Received), delivered: dayNumber(f.Delivered)}
	r.when = r.occurred
	if r.when == noDay {
		r.when = r.received
	}
	for _, d := range dimensions {
		vals := d.of(f)
		if d.multi {
			for _, v := range vals {
				if i := indexOf(d.fixed, v); i >= 0 {
					r.masks[d.col] |= 1 << i
				}
			}
			continue
		}
		if len(vals) == 1 {
			r.v[d.col] = x.dicts[d.col].id(vals[0])
		}
	}
	i, ok := x.slot[key]
	switch {
	case ok && x.rows[i].observed:
		// The ledger's word on the state outlives a rewrite of the fact.
		r.observed, r.v[stateDim.col], r.delivered = true, x.rows[i].v[stateDim.col], x.rows[i].delivered
	case !ok:
		if o, found := x.pending[key]; found {
			delete(x.pending, key)
			r.observed, r.v[stateDim.col], r.delivered = true, x.dicts[stateDim.col].id(o.state), o.delivered
		}
	}
	if ok {
		x.rows[i] = r
	} else {
		x.slot[key] = x.add(r)
	}
}

func (x *index) add(r row) int32 {
	if n := len(x.free); n > 0 {
		i := x.free[n-1]
		x.free = x.free[:n-1]
		x.rows[i] = r
		return i
	}
	x.rows = append(x.rows, r)
	return int32(len(x.rows) - 1)
}

func (x *index) remove(key string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.pending, key)
	if i, ok := x.slot[key]; ok {
		delete(x.slot, key)
		x.rows[i] = row{}
		x.free = append(x.free, i)
	}
}

// observe records the ledger's state and delivery date of key, keeping it for a fact not yet
// read.
func (x *index) observe(key, state string, delivered int32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	i, ok := x.slot[key]
	if !ok {
		x.pending[key] = observed{state: state, delivered: delivered}
		return
	}
	r := &x.rows[i]
	r.observed, r.v[stateDim.col], r.delivered = true, x.dicts[stateDim.col].id(state), delivered
}

func (x *index) len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.slot)
}

func indexOf(list []string, v string) int {
	for i, s := range list {
		if s == v {
			return i
		}
	}
	return -1
}
