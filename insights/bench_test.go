package insights

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkQueryMillion answers the API's heaviest questions over 1,000,000 facts held in the
// index: two dimensions (one multi-valued) with a weekly series over two years, and a filtered
// count. docs/insights.md, "Speed", has the figures.
func BenchmarkQueryMillion(b *testing.B) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newStore(nil, Options{})
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	types := []string{"incident", "incident", "incident", "risk", "outcome", "good_care"}
	for i := range 1_000_000 {
		f := Fact{Source: []string{"datix", "ulysses", "epr"}[i%3], EventType: types[i%len(types)],
			PhysicalHarm: harms[i%5], PsychologicalHarm: harms[i%4], Organisation: fmt.Sprintf("R%02d", i%40),
			ServiceArea: fmt.Sprint(1 + i%12), ReporterRole: fmt.Sprint(1 + i%20), Agents: []string{"medications", "devices", "people"}[:i%3],
			AgeBands: []string{ageBands[i%12]}, Occurred: base.AddDate(0, 0, i%730).Format(time.DateOnly),
			Received: base.AddDate(0, 0, i%730+1).Format(time.DateOnly), State: "delivered"}
		s.index.put(fmt.Sprintf("src.%032x", i), &f)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perFact := float64(after.HeapAlloc-before.HeapAlloc) / 1e6
	from, to := base, base.AddDate(0, 0, 729)
	for _, q := range []Query{
		{By: []string{"event_type", "agent"}, From: from, To: to, Interval: "week", Threshold: 7},
		{By: []string{"organisation"}, From: from, To: to, Interval: "month", Threshold: 7, Filters: map[string][]string{"physical_harm": {"moderate", "severe", "fatal"}}},
	} {
		b.Run(fmt.Sprint(q.By), func(b *testing.B) {
			for b.Loop() {
				if a := s.Query(q); len(a.Groups) == 0 {
					b.Fatal("no groups")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
			b.ReportMetric(perFact, "heap-bytes/fact")
		})
	}
}
