package ops

import (
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/insights"
)

// InsightsReader is the learning store as the API and the page read it (insights.Store).
type InsightsReader interface {
	Query(q insights.Query) insights.Answer
	Lags(q insights.Query) insights.Lags
}

// InsightsRebuilder rebuilds the learning store from the raw stream (the mapper).
type InsightsRebuilder interface {
	RebuildInsights(ctx context.Context) (insights.Rebuilt, error)
}

func (s *Server) insightsRoutes(mux *http.ServeMux, handle func(string, Role, http.HandlerFunc)) {
	handle("GET /api/v1/insights", RoleViewer, s.insightsAPI)
	handle("GET /insights", RoleViewer, s.insightsPage)
	mux.Handle("POST /api/v1/insights/rebuild", s.guard(RoleOperator, http.HandlerFunc(s.insightsRebuild)))
}

// insightsQuery reads an insights query from the request: the parameters of docs/insights.md,
// the configured suppression, and suppress=off, which only an operator may ask.
func (s *Server) insightsQuery(r *http.Request) (insights.Query, int, error) {
	v := r.URL.Query()
	q, err := insights.ParseQuery(v, ukToday())
	if err != nil {
		return q, http.StatusBadRequest, err
	}
	off, err := insights.ThresholdParam(v)
	if err != nil {
		return q, http.StatusBadRequest, err
	}
	q.Threshold = s.SuppressionThreshold
	if off {
		if identityFrom(r.Context()).Role < RoleOperator {
			return q, http.StatusForbidden, errors.New("suppress: only an operator may turn small-number suppression off")
		}
		q.Threshold = 0
	}
	return q, http.StatusOK, nil
}

func ukToday() time.Time {
	return fhir.CalendarDate(time.Now())
}

func (s *Server) insightsAPI(w http.ResponseWriter, r *http.Request) {
	if s.Insights == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no learning store configured"})
		return
	}
	q, status, err := s.insightsQuery(r)
	if err != nil {
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	ans := s.Insights.Query(q)
	if wantsCSV(r) {
		writeInsightsCSV(w, ans)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

func wantsCSV(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, _ := strings.Cut(strings.TrimSpace(part), ";"); strings.EqualFold(strings.TrimSpace(mt), "text/csv") {
			return true
		}
	}
	return false
}

// writeInsightsCSV writes the answer one row per group (and per interval, with one): a column
// per dimension, the label, the interval's start, the count (empty when suppressed) and
// whether it was suppressed.
func writeInsightsCSV(w http.ResponseWriter, ans insights.Answer) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="psgw-insights.csv"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	cw := csv.NewWriter(w)
	head := append([]string{}, ans.By...)
	if len(head) == 0 {
		head = []string{"group"}
	}
	head = append(head, "label")
	if ans.Interval != "" {
		head = append(head, ans.Interval)
	}
	head = append(head, "count", "suppressed")
	_ = cw.Write(head)
	for _, g := range ans.Groups {
		keys := g.Keys
		if len(keys) == 0 {
			keys = []string{g.Key}
		}
		lead := make([]string, 0, len(keys)+1)
		for _, k := range keys {
			lead = append(lead, csvSafe(k))
		}
		lead = append(lead, csvSafe(g.Label))
		if ans.Interval == "" {
			_ = cw.Write(append(lead, countCells(g.Count)...))
			continue
		}
		for _, p := range g.Series {
			row := append(append([]string{}, lead...), p.Start)
			_ = cw.Write(append(row, countCells(p.Count)...))
		}
	}
	cw.Flush()
}

func countCells(c insights.Count) []string {
	if c.Value == nil {
		return []string{"", "true"}
	}
	return []string{strconv.Itoa(*c.Value), "false"}
}

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (s *Server) insightsRebuild(w http.ResponseWriter, r *http.Request) {
	if s.InsightsRebuilder == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no learning store configured"})
		return
	}
	res, err := s.InsightsRebuilder.RebuildInsights(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	s.Log.Info().Str("actor", identityFrom(r.Context()).Actor()).Int("written", res.Written).Int("deleted", res.Deleted).Int("missing", res.Missing).Msg("insights rebuilt")
	writeJSON(w, http.StatusOK, res)
}
