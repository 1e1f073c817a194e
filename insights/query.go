package insights

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Query is one question to the insights API (docs/insights.md, "The API").
type Query struct {
	// By names up to two dimensions to group by; none counts everything as one group.
	By []string
	// From and To are the first and last UK calendar days counted (inclusive).
	From, To time.Time
	// Interval is "", "week" (weeks from Monday) or "month": the series each group gets.
	Interval string
	// Filters keep only facts with one of the listed values of each dimension named.
	Filters map[string][]string
	// Threshold suppresses counts from 1 to Threshold; 0 turns suppression off.
	Threshold int
}

// Answer is the API's answer: one group per key, each with its count and, when an interval
// was asked for, its series.
type Answer struct {
	By       []string `json:"by"`
	From     string   `json:"from"`
	To       string   `json:"to"`
	Interval string   `json:"interval,omitempty"`
	// Suppression is the threshold applied: counts from 1 to it are null; 0 means none.
	Suppression int `json:"suppression_threshold"`
	// Total is the number of incidents counted (each once, whatever its groups).
	Total Count `json:"total"`
	// Starts are the first days of the series' intervals.
	Starts []string `json:"starts,omitempty"`
	Groups []Group  `json:"groups"`
	// Loading is true while the store is still reading its facts at start-up.
	Loading bool `json:"loading,omitempty"`
}

// Group is one group of the answer.
type Group struct {
	// Key is the group's value, the values of two dimensions joined by a comma.
	Key string `json:"key"`
	// Keys are the values one by one, in the order of By.
	Keys []string `json:"keys,omitempty"`
	// Label names the value(s) for people, where the key is a code.
	Label  string  `json:"label,omitempty"`
	Count          // count (null when suppressed) and suppressed
	Series []Point `json:"series,omitempty"`
	// raw is the count before suppression, for ordering and the page's own charts.
	raw    int
	rawSer []int
}

// Count is a count that may be suppressed: Value is nil then.
type Count struct {
	Value      *int `json:"count"`
	Suppressed bool `json:"suppressed,omitempty"`
}

// Point is one interval of a series.
type Point struct {
	Start string `json:"start"`
	Count
}

// Raw is the count before suppression; only code that never shows it to people (the SPC
// calculation, which then hides what it must) reads it.
func (g Group) Raw() int { return g.raw }

// RawSeries is the series before suppression (see Raw).
func (g Group) RawSeries() []int { return g.rawSer }

func countOf(n, threshold int) Count {
	if n >= 1 && n <= threshold {
		return Count{Suppressed: true}
	}
	return Count{Value: &n}
}

// BadParameter is a query parameter that breaks its rule: the API answers it with 400.
type BadParameter struct {
	Param, Rule string
}

func (e *BadParameter) Error() string { return e.Param + ": " + e.Rule }

func bad(param, format string, args ...any) error {
	return &BadParameter{Param: param, Rule: fmt.Sprintf(format, args...)}
}

// MaxDays bounds the span of one query, so that a series is at most a few hundred points.
const MaxDays = 20 * 366

// ParseQuery reads a query from URL parameters: by, from, to, interval, and any dimension's
// name as a filter (comma-separated or repeated values). today is the default end; the
// default start is 52 weeks before it. Each error names the parameter and its rule.
func ParseQuery(v url.Values, today time.Time) (Query, error) {
	q := Query{Filters: map[string][]string{}}
	known := map[string]bool{"by": true, "from": true, "to": true, "interval": true, "suppress": true}
	for _, s := range v["by"] {
		for _, d := range strings.Split(s, ",") {
			d = strings.TrimSpace(d)
			if d == "" {
				continue
			}
			if dimensionNamed(d) == nil {
				return q, bad("by", "unknown dimension %q; one of %s", d, strings.Join(Dimensions(), ", "))
			}
			if slices.Contains(q.By, d) {
				return q, bad("by", "dimension %q given twice", d)
			}
			q.By = append(q.By, d)
		}
	}
	if len(q.By) > 2 {
		return q, bad("by", "at most two dimensions, got %d", len(q.By))
	}
	var err error
	to := today
	if s := v.Get("to"); s != "" {
		if to, err = time.Parse(time.DateOnly, s); err != nil {
			return q, bad("to", "must be a date YYYY-MM-DD, got %q", s)
		}
	}
	from := to.AddDate(0, 0, -7*52+1)
	if s := v.Get("from"); s != "" {
		if from, err = time.Parse(time.DateOnly, s); err != nil {
			return q, bad("from", "must be a date YYYY-MM-DD, got %q", s)
		}
	}
	if from.After(to) {
		return q, bad("from", "must not be after to (%s)", to.Format(time.DateOnly))
	}
	if to.Sub(from) > MaxDays*24*time.Hour {
		return q, bad("from", "the span from from to to must be at most %d days", MaxDays)
	}
	q.From, q.To = from, to
	switch i := v.Get("interval"); i {
	case "", "week", "month":
		q.Interval = i
	default:
		return q, bad("interval", "must be week or month, got %q", i)
	}
	for name, vals := range v {
		if known[name] {
			continue
		}
		d := dimensionNamed(name)
		if d == nil {
			return q, bad(name, "unknown parameter; the parameters are by, from, to, interval, suppress and the dimensions %s", strings.Join(Dimensions(), ", "))
		}
		for _, s := range vals {
			for _, one := range strings.Split(s, ",") {
				if one = strings.TrimSpace(one); one != "" {
					if d.fixed != nil && one != NotRecorded && !slices.Contains(d.fixed, one) {
						return q, bad(name, "unknown value %q; one of %s, %s", one, strings.Join(d.fixed, ", "), NotRecorded)
					}
					q.Filters[name] = append(q.Filters[name], one)
				}
			}
		}
	}
	return q, nil
}

// Query answers q from the index.
func (s *Store) Query(q Query) Answer { return s.index.query(q) }

// intervals returns the first days (day numbers) of the intervals covering from..to.
func intervals(interval string, from, to time.Time) []int32 {
	if interval == "" {
		return nil
	}
	start := from
	switch interval {
	case "week":
		start = from.AddDate(0, 0, -((int(from.Weekday()) + 6) % 7))
	case "month":
		start = time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	var out []int32
	for t := start; !t.After(to); {
		out = append(out, int32(t.Unix()/86400))
		if interval == "week" {
			t = t.AddDate(0, 0, 7)
		} else {
			t = t.AddDate(0, 1, 0)
		}
	}
	return out
}

type groupAcc struct {
	n      int
	series []int
}

func (x *index) query(q Query) Answer {
	dims := make([]*dimension, len(q.By))
	for i, name := range q.By {
		dims[i] = dimensionNamed(name)
	}
	from, to := int32(q.From.Unix()/86400), int32(q.To.Unix()/86400)
	starts := intervals(q.Interval, q.From, q.To)
	// Each day's interval, looked up rather than searched for every fact.
	var slotOf []int16
	if starts != nil {
		slotOf = make([]int16, to-from+1)
		k := 0
		for d := range slotOf {
			for k+1 < len(starts) && starts[k+1] <= from+int32(d) {
				k++
			}
			slotOf[d] = int16(k)
		}
	}

	x.mu.RLock()
	defer x.mu.RUnlock()
	match := x.matcher(q.Filters)
	acc := x.newAccumulator(dims, len(starts))
	total := 0
	var keys [2][16]uint16 // a multi-valued dimension gives up to 16 values
	var nk [2]int
	for i := range x.rows {
		r := &x.rows[i]
		if !r.used || r.when < from || r.when > to || !match(r) {
			continue
		}
		total++
		for j, d := range dims {
			nk[j] = 0
			if !d.multi {
				keys[j][0], nk[j] = r.v[d.col], 1
				continue
			}
			m := r.masks[d.col]
			if m == 0 {
				keys[j][0], nk[j] = 0, 1
				continue
			}
			for b := range len(d.fixed) {
				if m&(1<<b) != 0 {
					keys[j][nk[j]] = uint16(b + 1)
					nk[j]++
				}
			}
		}
		slot := -1
		if slotOf != nil {
			slot = int(slotOf[r.when-from])
		}
		switch len(dims) {
		case 0:
			acc.add(0, 0, slot)
		case 1:
			for a := range nk[0] {
				acc.add(keys[0][a], 0, slot)
			}
		default:
			for a := range nk[0] {
				for b := range nk[1] {
					acc.add(keys[0][a], keys[1][b], slot)
				}
			}
		}
	}
	ans := Answer{By: q.By, From: q.From.Format(time.DateOnly), To: q.To.Format(time.DateOnly), Interval: q.Interval,
		Suppression: q.Threshold, Total: countOf(total, q.Threshold), Groups: []Group{}, Loading: x.loading}
	for _, st := range starts {
		ans.Starts = append(ans.Starts, dayString(st))
	}
	acc.each(func(k uint32, g *groupAcc) {
		ans.Groups = append(ans.Groups, x.group(dims, k, g, ans.Starts, q.Threshold))
	})
	sort.Slice(ans.Groups, func(i, j int) bool {
		a, b := ans.Groups[i], ans.Groups[j]
		if a.raw != b.raw {
			return a.raw > b.raw
		}
		return a.Key < b.Key
	})
	return ans
}

// accumulator counts groups: in dense arrays indexed by the values' numbers when the
// dimensions have few values between them (the usual case, and a scan's hot path), else in a
// map.
type accumulator struct {
	n2, nSlots int
	counts     []int
	series     []int
	sparse     map[uint32]*groupAcc
}

// maxDense bounds the cells of a dense accumulator (groups × intervals).
var maxDense = 1 << 22

func (x *index) cardinality(d *dimension) int {
	if d.multi {
		return len(d.fixed) + 1
	}
	return len(x.dicts[d.col].values)
}

func (x *index) newAccumulator(dims []*dimension, nSlots int) *accumulator {
	n1, n2 := 1, 1
	if len(dims) > 0 {
		n1 = x.cardinality(dims[0])
	}
	if len(dims) > 1 {
		n2 = x.cardinality(dims[1])
	}
	a := &accumulator{n2: n2, nSlots: nSlots}
	if cells := n1 * n2 * max(nSlots, 1); cells <= maxDense {
		a.counts = make([]int, n1*n2)
		a.series = make([]int, n1*n2*nSlots)
		return a
	}
	a.sparse = map[uint32]*groupAcc{}
	return a
}

func (a *accumulator) add(k1, k2 uint16, slot int) {
	if a.counts != nil {
		i := int(k1)*a.n2 + int(k2)
		a.counts[i]++
		if slot >= 0 {
			a.series[i*a.nSlots+slot]++
		}
		return
	}
	k := uint32(k1)<<16 | uint32(k2)
	g := a.sparse[k]
	if g == nil {
		g = &groupAcc{}
		if a.nSlots > 0 {
			g.series = make([]int, a.nSlots)
		}
		a.sparse[k] = g
	}
	g.n++
	if slot >= 0 {
		g.series[slot]++
	}
}

// each calls fn with every group counted, its key packed as the map's.
func (a *accumulator) each(fn func(k uint32, g *groupAcc)) {
	if a.counts == nil {
		for k, g := range a.sparse {
			fn(k, g)
		}
		return
	}
	for i, n := range a.counts {
		if n == 0 {
			continue
		}
		g := &groupAcc{n: n}
		if a.nSlots > 0 {
			g.series = a.series[i*a.nSlots : (i+1)*a.nSlots]
		}
		fn(uint32(i/a.n2)<<16|uint32(i%a.n2), g)
	}
}

// value is the key of value number id of dimension d.
func (x *index) value(d *dimension, id uint16) string {
	var v string
	if d.multi {
		if id > 0 {
			v = d.fixed[id-1]
		}
	} else {
		v = x.dicts[d.col].values[id]
	}
	if v == "" {
		return NotRecorded
	}
	return v
}

func (x *index) group(dims []*dimension, k uint32, acc *groupAcc, starts []string, threshold int) Group {
	g := Group{Count: countOf(acc.n, threshold), raw: acc.n, rawSer: acc.series}
	ids := []uint16{uint16(k >> 16), uint16(k)}
	var labels []string
	for i, d := range dims {
		v := x.value(d, ids[i])
		g.Keys = append(g.Keys, v)
		if d.label != nil && v != NotRecorded {
			if l := d.label(v); l != "" {
				labels = append(labels, l)
			}
		}
	}
	switch len(dims) {
	case 0:
		g.Key = "all"
		g.Keys = nil
	default:
		g.Key = strings.Join(g.Keys, ",")
	}
	if len(dims) < 2 {
		g.Keys = nil
	}
	g.Label = strings.Join(labels, ", ")
	for i, n := range acc.series {
		g.Series = append(g.Series, Point{Start: starts[i], Count: countOf(n, threshold)})
	}
	return g
}

// matcher returns a test of the filters against a row. Values the index has never seen match
// nothing.
func (x *index) matcher(filters map[string][]string) func(*row) bool {
	type single struct {
		col int
		ok  []bool // by value number
	}
	type multi struct {
		col  int
		mask uint16
		none bool // NotRecorded: no value at all
	}
	var ss []single
	var ms []multi
	for name, vals := range filters {
		d := dimensionNamed(name)
		if d.multi {
			m := multi{col: d.col}
			for _, v := range vals {
				if v == NotRecorded {
					m.none = true
				} else if i := indexOf(d.fixed, v); i >= 0 {
					m.mask |= 1 << i
				}
			}
			ms = append(ms, m)
			continue
		}
		s := single{col: d.col, ok: make([]bool, len(x.dicts[d.col].values))}
		for _, v := range vals {
			if v == NotRecorded {
				v = ""
			}
			if id, found := x.dicts[d.col].ids[v]; found {
				s.ok[id] = true
			}
		}
		ss = append(ss, s)
	}
	return func(r *row) bool {
		for _, s := range ss {
			if !s.ok[r.v[s.col]] {
				return false
			}
		}
		for _, m := range ms {
			v := r.masks[m.col]
			if v&m.mask == 0 && !(m.none && v == 0) {
				return false
			}
		}
		return true
	}
}

// ThresholdParam reads the suppress parameter: "off" (or "false", "0") turns suppression off.
func ThresholdParam(v url.Values) (off bool, err error) {
	s := v.Get("suppress")
	if s == "" {
		return false, nil
	}
	on, perr := strconv.ParseBool(s)
	if s == "off" || s == "on" {
		on, perr = s == "on", nil
	}
	if perr != nil {
		return false, bad("suppress", "must be on or off, got %q", s)
	}
	return !on, nil
}
