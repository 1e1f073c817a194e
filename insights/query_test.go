package insights

import (
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestQueryCounts checks groups, multi-valued dimensions, filters, series and suppression
// against facts counted by hand, with dense and with sparse counting.
func TestQueryCounts(t *testing.T) {
	facts := []Fact{
		{Source: "a", EventType: "incident", PhysicalHarm: "low", Agents: []string{"medications", "devices"}, Occurred: "2025-01-06", State: "delivered"},
		{Source: "a", EventType: "incident", PhysicalHarm: "low", Agents: []string{"medications"}, Occurred: "2025-01-12", State: "delivered"},
		{Source: "b", EventType: "incident", PhysicalHarm: "severe", Occurred: "2025-01-13", State: "queued"},
		{Source: "b", EventType: "risk", Received: "2025-01-20", State: "delivered"},
		{Source: "b", EventType: "risk", Received: "2025-02-20", State: "delivered"}, // after to
	}
	for _, dense := range []bool{true, false} {
		old := maxDense
		if !dense {
			maxDense = 0
		}
		s := newStore(nil, Options{})
		for i, f := range facts {
			s.index.put(string(rune('k'+i)), &f)
		}
		q, err := ParseQuery(url.Values{"by": {"event_type,agent"}, "from": {"2025-01-06"}, "to": {"2025-01-26"}, "interval": {"week"}}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		a := s.Query(q)
		got := map[string][]int{}
		for _, g := range a.Groups {
			var series []int
			for _, p := range g.Series {
				series = append(series, *p.Value)
			}
			got[g.Key] = append([]int{*g.Value}, series...)
		}
		want := map[string][]int{
			"incident,medications":  {2, 2, 0, 0},
			"incident,devices":      {1, 1, 0, 0},
			"incident,not_recorded": {1, 0, 1, 0},
			"risk,not_recorded":     {1, 0, 0, 1},
		}
		if diff := cmp.Diff(want, got); diff != "" || *a.Total.Value != 4 {
			t.Errorf("dense %v: total %d, groups (-want +got):\n%s", dense, *a.Total.Value, diff)
		}
		q.By, q.Interval, q.Threshold = []string{"source"}, "", 2
		q.Filters = map[string][]string{"state": {"delivered"}}
		a = s.Query(q)
		if len(a.Groups) != 2 || a.Groups[0].Key != "a" || !a.Groups[0].Suppressed || a.Groups[1].Key != "b" || !a.Groups[1].Suppressed || *a.Total.Value != 3 {
			t.Errorf("dense %v: delivered by source %+v total %v, want a and b suppressed (2 and 1 of threshold 2), total 3", dense, a.Groups, a.Total.Value)
		}
		maxDense = old
	}
}
