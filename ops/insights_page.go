package ops

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/psgw/psgw/insights"
)

var insightsTmpl = mustPage("insights.html")

// The page's charts are SVG drawn on the server (no script, nothing fetched), in a fixed
// coordinate space that the style sheet scales to the screen.
const (
	chartW, chartH = 640, 220
	padL, padR     = 40, 12
	padT, padB     = 12, 28
)

// measures are the SPC chart's choices: a name, its label and the filter it adds.
var measures = []struct{ name, label, dim, values string }{
	{"all", "All reports", "", ""},
	{"harm", "Moderate, severe or fatal physical harm", "physical_harm", "moderate,severe,fatal"},
	{"incident", "Incidents", "event_type", "incident"},
	{"risk", "Risks", "event_type", "risk"},
	{"outcome", "Outcomes", "event_type", "outcome"},
	{"good_care", "Good care", "event_type", "good_care"},
}

type option struct {
	Value, Label string
	Selected     bool
}

type lineChart struct {
	Title      string
	Lines      []chartLine
	XLabels    []chartLabel
	YTicks     []chartLabel
	Suppressed int
	Empty      bool
}

type chartLine struct {
	// Path is the line as SVG path data, broken where a point is suppressed.
	Key, Label, Class, Path string
}

type chartLabel struct {
	X, Y float64
	Text string
}

type spcPoint struct {
	X, Y  float64
	Class string
	Title string
}

type spcView struct {
	Measure    string
	Points     []spcPoint
	Path       string
	MeanY      float64
	UCLY, LCLY float64
	Mean       string
	UCL, LCL   string
	XLabels    []chartLabel
	YTicks     []chartLabel
	Variation  string
	Assurance  string
	Flagged    []string
	Hidden     string
}

type barRow struct {
	Key, Label string
	Count      string
	Width      float64
}

type insightsView struct {
	Q              url.Values
	Error          string
	From, To       string
	Interval       string
	Threshold      int
	Total          string
	Events, Harms  lineChart
	States         lineChart
	SPC            spcView
	Organisations  []barRow
	Areas          []barRow
	Agents         []barRow
	Lags           insights.Lags
	Measures       []option
	Improve        []option
	Intervals      []option
	EventTypes     []option
	PhysicalHarms  []option
	Target         string
	Source, OrgVal string
	Loading        bool
}

func selectOptions(values []string, labels []string, cur string) []option {
	out := []option{}
	for i, v := range values {
		out = append(out, option{Value: v, Label: labels[i], Selected: v == cur})
	}
	return out
}

func (s *Server) insightsPage(w http.ResponseWriter, r *http.Request) {
	o := s.Overview(r.Context())
	v := insightsView{Q: r.URL.Query()}
	if v.Q.Get("interval") == "" {
		v.Q.Set("interval", "week")
	}
	page := url.Values{}
	for k, vals := range v.Q {
		switch k {
		case "measure", "improve", "target":
		default:
			page[k] = vals
		}
	}
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = page.Encode()
	status := http.StatusOK
	q, code, err := s.insightsQuery(r2)
	if err == nil && s.Insights == nil {
		code, err = http.StatusServiceUnavailable, fmt.Errorf("no learning store configured")
	}
	if err != nil {
		v.Error, status = err.Error(), code
		s.render(w, r, insightsTmpl, status, pageData{Title: "Insights", Nav: "insights", O: o, Data: v})
		return
	}
	s.fillInsights(&v, q)
	s.render(w, r, insightsTmpl, status, pageData{Title: "Insights", Nav: "insights", O: o, Data: v})
}

func (s *Server) fillInsights(v *insightsView, q insights.Query) {
	v.From, v.To, v.Interval, v.Threshold = q.From.Format("2006-01-02"), q.To.Format("2006-01-02"), q.Interval, q.Threshold
	v.Source, v.OrgVal, v.Target = v.Q.Get("source"), v.Q.Get("organisation"), v.Q.Get("target")
	v.Intervals = selectOptions([]string{"week", "month"}, []string{"Week", "Month"}, q.Interval)
	v.EventTypes = selectOptions([]string{"", "incident", "risk", "outcome", "good_care"}, []string{"All", "Incident", "Risk", "Outcome", "Good care"}, v.Q.Get("event_type"))
	v.PhysicalHarms = selectOptions([]string{"", "none", "low", "moderate", "severe", "fatal"}, []string{"All", "None", "Low", "Moderate", "Severe", "Fatal"}, v.Q.Get("physical_harm"))
	measure := v.Q.Get("measure")
	for _, m := range measures {
		v.Measures = append(v.Measures, option{Value: m.name, Label: m.label, Selected: m.name == measure})
	}
	v.Improve = selectOptions([]string{"neutral", "up", "down"}, []string{"Neither way is better", "Higher is better", "Lower is better"}, v.Q.Get("improve"))

	by := func(dim string) insights.Answer {
		qq := q
		qq.By = []string{dim}
		return s.Insights.Query(qq)
	}
	all := s.Insights.Query(q)
	v.Loading = all.Loading
	v.Total = countText(all.Total)
	v.Events = lines("Reports over time by event type", by("event_type"))
	v.Harms = lines("Reports over time by physical harm", by("physical_harm"))
	v.States = lines("Delivery health over time (state now, by week or month of the event)", by("state"))
	v.Organisations = bars(by("organisation"))
	v.Areas = bars(by("service_area"))
	v.Agents = bars(by("agent"))
	v.Lags = s.Insights.Lags(q)
	v.SPC = s.spcOf(q, v.Q)
}

func countText(c insights.Count) string {
	if c.Value == nil {
		return "suppressed"
	}
	return strconv.Itoa(*c.Value)
}

// scale maps a value to the chart's y coordinate, and an interval's index to x.
type scale struct {
	n        int
	min, max float64
}

func (sc scale) x(i int) float64 {
	if sc.n <= 1 {
		return padL
	}
	return round1(padL + float64(i)*(chartW-padL-padR)/float64(sc.n-1))
}

func (sc scale) y(v float64) float64 {
	span := sc.max - sc.min
	if span <= 0 {
		span = 1
	}
	return round1(chartH - padB - (v-sc.min)/span*(chartH-padT-padB))
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

func (sc scale) ticks() []chartLabel {
	var out []chartLabel
	for i := 0; i <= 4; i++ {
		v := sc.min + (sc.max-sc.min)*float64(i)/4
		out = append(out, chartLabel{X: padL - 4, Y: sc.y(v), Text: strconv.FormatFloat(math.Round(v), 'f', 0, 64)})
	}
	return out
}

func xLabels(sc scale, starts []string) []chartLabel {
	var out []chartLabel
	step := max(1, len(starts)/6)
	for i := 0; i < len(starts); i += step {
		out = append(out, chartLabel{X: sc.x(i), Y: chartH - 8, Text: starts[i][5:]})
	}
	return out
}

// lines draws one line per group; a suppressed point is a gap, not a value.
func lines(title string, a insights.Answer) lineChart {
	c := lineChart{Title: title, Empty: len(a.Groups) == 0}
	top := 1.0
	for _, g := range a.Groups {
		for _, p := range g.Series {
			if p.Value != nil {
				top = max(top, float64(*p.Value))
			}
		}
	}
	sc := scale{n: len(a.Starts), max: top}
	for i, g := range a.Groups {
		// A suppressed point breaks the line: joining its neighbours would draw a value.
		// A point alone between gaps is drawn as a zero-length line, which its round cap
		// shows as a dot.
		var d strings.Builder
		pen, last := "M", ""
		for j, p := range g.Series {
			if p.Value == nil {
				c.Suppressed++
				if pen == "L" && last != "" {
					d.WriteString("L" + last + " ")
				}
				pen, last = "M", ""
				continue
			}
			at := fmt.Sprintf("%g,%g", sc.x(j), sc.y(float64(*p.Value)))
			if pen == "L" {
				last = ""
			} else {
				last = at
			}
			d.WriteString(pen + at + " ")
			pen = "L"
		}
		if last != "" {
			d.WriteString("L" + last)
		}
		label := g.Key
		if g.Label != "" {
			label = g.Label
		}
		c.Lines = append(c.Lines, chartLine{Key: g.Key, Label: label, Class: "s" + strconv.Itoa(i%8), Path: strings.TrimSpace(d.String())})
	}
	c.XLabels, c.YTicks = xLabels(sc, a.Starts), sc.ticks()
	return c
}

func bars(a insights.Answer) []barRow {
	var out []barRow
	top := 1
	for _, g := range a.Groups {
		if g.Value != nil {
			top = max(top, *g.Value)
		}
	}
	for i, g := range a.Groups {
		if i == 12 {
			break
		}
		b := barRow{Key: g.Key, Label: g.Label, Count: countText(g.Count)}
		if g.Value != nil {
			b.Width = round1(100 * float64(*g.Value) / float64(top))
		}
		out = append(out, b)
	}
	return out
}

// spcOf draws the XmR chart of the chosen measure, per interval. With suppression on, a chart
// with any point from 1 to the threshold is not drawn: its points would show those counts.
func (s *Server) spcOf(q insights.Query, v url.Values) spcView {
	name := v.Get("measure")
	view := spcView{Measure: measures[0].label}
	qq := q
	qq.By = nil
	qq.Filters = map[string][]string{}
	for k, vals := range q.Filters {
		qq.Filters[k] = vals
	}
	for _, m := range measures {
		if m.name == name && m.dim != "" {
			qq.Filters[m.dim] = strings.Split(m.values, ",")
			view.Measure = m.label
		}
	}
	if qq.Interval == "" {
		qq.Interval = "week"
	}
	a := s.Insights.Query(qq)
	var values []float64
	var raw []int
	if len(a.Groups) == 1 {
		raw = a.Groups[0].RawSeries()
	} else {
		raw = make([]int, len(a.Starts))
	}
	for _, n := range raw {
		if n >= 1 && n <= q.Threshold {
			view.Hidden = fmt.Sprintf("Some %ss have 1 to %d reports, which are suppressed; choose a wider interval, fewer filters, or ask an operator to view it unsuppressed.", qq.Interval, q.Threshold)
			return view
		}
		values = append(values, float64(n))
	}
	if len(values) < 2 {
		view.Hidden = "Too few intervals for a chart."
		return view
	}
	dir := insights.Neutral
	switch v.Get("improve") {
	case "up":
		dir = insights.HigherBetter
	case "down":
		dir = insights.LowerBetter
	}
	target := math.NaN()
	if t, err := strconv.ParseFloat(v.Get("target"), 64); err == nil {
		target = t
	}
	c := insights.XmR(values, dir, target)
	top := math.Max(c.UCL, 1)
	for _, x := range values {
		top = math.Max(top, x)
	}
	sc := scale{n: len(values), min: math.Max(0, math.Min(c.LCL, 0)), max: top * 1.05}
	var path []string
	for i, x := range values {
		p := spcPoint{X: sc.x(i), Y: sc.y(x), Class: "common", Title: fmt.Sprintf("%s: %d", a.Starts[i], int(x))}
		if len(c.Flags[i]) > 0 {
			p.Class = sideClass(c.Side[i], dir)
			var rs []string
			for _, r := range c.Flags[i] {
				rs = append(rs, string(r))
			}
			p.Title += " (" + strings.Join(rs, ", ") + ")"
			view.Flagged = append(view.Flagged, a.Starts[i])
		}
		view.Points = append(view.Points, p)
		path = append(path, fmt.Sprintf("%g,%g", p.X, p.Y))
	}
	view.Path = strings.Join(path, " ")
	view.MeanY, view.UCLY = sc.y(c.Mean), sc.y(c.UCL)
	view.LCLY = sc.y(math.Max(c.LCL, sc.min))
	view.Mean, view.UCL, view.LCL = fmt1(c.Mean), fmt1(c.UCL), fmt1(c.LCL)
	view.XLabels, view.YTicks = xLabels(sc, a.Starts), sc.ticks()
	view.Variation, view.Assurance = c.Variation, c.Assurance
	return view
}

func fmt1(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// sideClass colours a flagged point as MDC does: blue for improvement, orange for concern,
// purple where neither direction is better.
func sideClass(side int, dir insights.Direction) string {
	switch {
	case dir == insights.Neutral:
		return "neutral"
	case (side > 0) == (dir == insights.HigherBetter):
		return "improvement"
	}
	return "concern"
}
