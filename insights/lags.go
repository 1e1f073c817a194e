package insights

import (
	"slices"
	"strconv"
)

// Lags are the reporting lags of the incidents a query matches, in whole days: from when it
// occurred to when it was first reported locally, and from then (or, without a report date,
// from when the gateway received it) to its delivery to the national service.
type Lags struct {
	Reported  LagStats `json:"occurred_to_reported"`
	Delivered LagStats `json:"reported_to_delivered"`
}

// LagStats summarise one lag: how many incidents have it, its median and 90th percentile, and
// counts per band of days (suppressed like every count).
type LagStats struct {
	N      int    `json:"n"`
	Median int    `json:"median_days"`
	P90    int    `json:"p90_days"`
	Bands  []Band `json:"bands"`
	values []int32
}

// Band is one band of days.
type Band struct {
	Label string `json:"label"`
	Count
	raw int
}

// Raw is the band's count before suppression.
func (b Band) Raw() int { return b.raw }

// lagBands are the bands' upper bounds in days.
var lagBands = []int32{0, 2, 7, 30, 90}

func bandLabel(i int) string {
	switch {
	case i == 0:
		return "same day"
	case i == len(lagBands):
		return "over " + strconv.Itoa(int(lagBands[i-1])) + " days"
	}
	return strconv.Itoa(int(lagBands[i-1])+1) + "–" + strconv.Itoa(int(lagBands[i])) + " days"
}

// Lags answers the lags of q's incidents.
func (s *Store) Lags(q Query) Lags {
	x := s.index
	from, to := int32(q.From.Unix()/86400), int32(q.To.Unix()/86400)
	var out Lags
	x.mu.RLock()
	match := x.matcher(q.Filters)
	for i := range x.rows {
		r := &x.rows[i]
		if !r.used || r.when < from || r.when > to || !match(r) {
			continue
		}
		if r.occurred != noDay && r.reported != noDay && r.reported >= r.occurred {
			out.Reported.values = append(out.Reported.values, r.reported-r.occurred)
		}
		start := r.reported
		if start == noDay {
			start = r.received
		}
		if start != noDay && r.delivered != noDay && r.delivered >= start {
			out.Delivered.values = append(out.Delivered.values, r.delivered-start)
		}
	}
	x.mu.RUnlock()
	out.Reported.summarise(q.Threshold)
	out.Delivered.summarise(q.Threshold)
	return out
}

func (l *LagStats) summarise(threshold int) {
	v := l.values
	l.values = nil
	l.N = len(v)
	counts := make([]int, len(lagBands)+1)
	for _, d := range v {
		i, _ := slices.BinarySearch(lagBands, d)
		counts[i]++
	}
	for i, n := range counts {
		l.Bands = append(l.Bands, Band{Label: bandLabel(i), Count: countOf(n, threshold), raw: n})
	}
	if len(v) == 0 || (threshold > 0 && len(v) <= threshold) {
		return // a median of a handful would say too much about each
	}
	slices.Sort(v)
	l.Median, l.P90 = int(v[len(v)/2]), int(v[len(v)*9/10])
}
