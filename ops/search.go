package ops

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/psgw/psgw/ledger"
)

// parseQuery reads a search from URL parameters: source, local_id, state (comma-separated or
// repeated; "attention" means unknown, failed, rejected and quarantined), from and to
// (RFC 3339 or YYYY-MM-DD; to is exclusive, a bare date meaning the end of that day),
// reviewed (true or false), offset and limit. Errors name the parameter.
func parseQuery(v url.Values) (ledger.Query, error) {
	q := ledger.Query{Source: strings.TrimSpace(v.Get("source")), LocalID: strings.TrimSpace(v.Get("local_id"))}
	for _, s := range v["state"] {
		for _, one := range strings.Split(s, ",") {
			one = strings.TrimSpace(one)
			switch {
			case one == "":
			case one == "attention":
				q.States = append(q.States, ledger.AttentionStates()...)
			case ledger.State(one).Known():
				q.States = append(q.States, ledger.State(one))
			default:
				return q, fmt.Errorf("state: unknown state %q", one)
			}
		}
	}
	var err error
	if q.From, err = parseWhen(v.Get("from"), false); err != nil {
		return q, fmt.Errorf("from: %w", err)
	}
	if q.To, err = parseWhen(v.Get("to"), true); err != nil {
		return q, fmt.Errorf("to: %w", err)
	}
	if r := v.Get("reviewed"); r != "" {
		b, err := strconv.ParseBool(r)
		if err != nil {
			return q, fmt.Errorf("reviewed: must be true or false")
		}
		q.Reviewed = &b
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"offset", &q.Offset}, {"limit", &q.Limit}} {
		if s := v.Get(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return q, fmt.Errorf("%s: must be a whole number ≥ 0", p.name)
			}
			*p.dst = n
		}
	}
	return q, nil
}

// parseWhen reads RFC 3339 or a date; a date as an upper bound means the whole of that day.
func parseWhen(s string, end bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be RFC 3339 or YYYY-MM-DD, got %q", s)
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

func (s *Server) searchJSON(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	p, err := s.Ledger.Search(r.Context(), q)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "ledger unavailable: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, p)
}
