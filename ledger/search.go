package ledger

import (
	"context"
	"sort"
	"strings"
	"time"
)

// Query selects incidents for a search (GET /api/v1/incidents, docs/api.md). Empty fields do
// not filter.
type Query struct {
	Source string
	// LocalID matches any incident whose local id contains it, ignoring case.
	LocalID string
	States  []State
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
	Source            string    `json:"source"`
	LocalID           string    `json:"local_id"`
	Revision          int       `json:"revision"`
	State             State     `json:"state"`
	Attempts          int       `json:"attempts"`
	LastError         string    `json:"last_error,omitempty"`
	Reviewed          bool      `json:"reviewed"`
	PossibleDuplicate bool      `json:"possible_duplicate,omitempty"`
	ReceivedAt        time.Time `json:"received_at,omitzero"`
	UpdatedAt         time.Time `json:"updated_at,omitzero"`
	DeliveredAt       time.Time `json:"delivered_at,omitzero"`
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

func (q *Query) matches(v *view, i uint32, r *row) bool {
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

// Search returns one page of the incidents q selects, from the index: newest change first.
func (l *Ledger) Search(ctx context.Context, q Query) (Page, error) { return l.index.search(ctx, q) }

func (x *index) search(ctx context.Context, q Query) (Page, error) {
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
	err := x.read(ctx, func(v *view, _ bool) {
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
