package ops

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ledger"
)

// The page's templates, style sheet and script are embedded in the binary: no CDN and no
// build step, so the page works offline inside a hospital network.
//
//go:embed web
var webFS embed.FS

// csp keeps the page to its own assets: no inline script or style, nothing from elsewhere.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

var pageFuncs = template.FuncMap{
	"ago":        ago,
	"when":       when,
	"tone":       tone,
	"stateLabel": stateLabel,
	"clean":      func(s string) string { return ledger.ShowableText(s, 2000) },
	"short":      func(s string) string { return ledger.ShowableText(s, 160) },
	"path":       incidentPath,
	"seconds":    func(f float64) string { return humanDuration(time.Duration(f * float64(time.Second))) },
	"spark":      sparkline,
	"add":        func(a, b int) int { return a + b },
	"fmtRate":    func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"attention":  ledger.AttentionStates,
	"states":     ledger.States,
	"stateHelp":  stateHelp,
}

func mustPage(name string) *template.Template {
	return template.Must(template.New(name).Funcs(pageFuncs).ParseFS(webFS, "web/layout.html", "web/"+name))
}

var (
	overviewTmpl  = mustPage("overview.html")
	incidentsTmpl = mustPage("incidents.html")
	incidentTmpl  = mustPage("incident.html")
	loginTmpl     = mustPage("login.html")
)

// pageData is what every page template gets; Data is the page's own part.
type pageData struct {
	Title  string
	Nav    string
	Me     Identity
	AuthOn bool
	CanAct bool
	CSRF   string
	// ActionsOff is why no one may act with access control off (Auth.OpenActionsOff).
	ActionsOff string
	O          Overview
	Data       any
	Refresh    bool
}

func (s *Server) pageRoutes(handle func(string, Role, http.HandlerFunc)) {
	handle("GET /{$}", RoleViewer, s.overviewPage)
	handle("GET /incidents", RoleViewer, s.incidentsPage)
	handle("GET /incidents/{source}/{local_id...}", RoleViewer, s.incidentPage)
	handle("GET /login", RoleNone, s.loginPage)
	handle("POST /login", RoleNone, s.loginSubmit)
	handle("POST /logout", RoleNone, s.logoutSubmit)
	handle("GET /assets/", RoleNone, s.assets)
}

// assetFiles serves the page's stylesheets, script and icon.
var assetFiles = func() http.Handler {
	assets, _ := fs.Sub(webFS, "web/assets")
	return http.StripPrefix("/assets/", http.FileServerFS(assets))
}()

func (s *Server) assets(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	assetFiles.ServeHTTP(w, r)
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, t *template.Template, status int, d pageData) {
	id := identityFrom(r.Context())
	d.Me, d.AuthOn, d.CanAct, d.CSRF = id, s.Auth.Enabled(), id.Role >= RoleOperator, csrfFrom(r.Context())
	d.ActionsOff = s.Auth.OpenActionsOff()
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		s.Log.Error().Err(err).Str("page", t.Name()).Msg("rendering status page")
		http.Error(w, "the page could not be rendered; the JSON API under /api/v1/ still works", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// attentionList is one "needs an operator" list on the overview.
type attentionList struct {
	State ledger.State
	Page  ledger.Page
}

func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request) {
	o := s.Overview(r.Context())
	unreviewed := false
	var lists []attentionList
	for _, st := range ledger.AttentionStates() {
		if s.Ledger == nil {
			break // waiting for the store (waiting.go): the overview says so
		}
		p, err := s.Ledger.Search(r.Context(), ledger.Query{States: []ledger.State{st}, Reviewed: &unreviewed, Limit: 10})
		if err != nil {
			o.Problems = append(o.Problems, "ledger: "+err.Error())
			break
		}
		lists = append(lists, attentionList{State: st, Page: p})
	}
	s.render(w, r, overviewTmpl, http.StatusOK, pageData{Title: "Overview", Nav: "overview", O: o, Refresh: true,
		Data: map[string]any{"Lists": lists, "NeedsReview": sumCounts(o.NeedsReview)}})
}

func sumCounts(m map[ledger.State]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// searchView is the incidents page's data.
type searchView struct {
	Q        url.Values
	Page     ledger.Page
	Error    string
	Sources  []string
	PrevURL  string
	NextURL  string
	From, To int
	// ResendBody is the bulk resolve request for the search, when it selects unknown
	// incidents only: the page offers to send them all again.
	ResendBody string
}

func (s *Server) incidentsPage(w http.ResponseWriter, r *http.Request) {
	o := s.Overview(r.Context())
	v := searchView{Q: r.URL.Query()}
	q, err := parseQuery(v.Q)
	status := http.StatusOK
	if err != nil {
		v.Error, status = err.Error(), http.StatusBadRequest
	} else if v.Page, err = s.Ledger.Search(r.Context(), q); err != nil {
		v.Error, status = "ledger unavailable: "+err.Error(), http.StatusServiceUnavailable
	}
	if v.Page.Total > 0 {
		v.From, v.To = v.Page.Offset+1, v.Page.Offset+len(v.Page.Items)
	}
	page := func(off int) string {
		u := url.Values{}
		for k, vs := range v.Q {
			u[k] = vs
		}
		u.Set("offset", strconv.Itoa(off))
		return "/incidents?" + u.Encode()
	}
	if v.Page.Offset > 0 {
		v.PrevURL = page(max(0, v.Page.Offset-v.Page.Limit))
	}
	if v.Page.Offset+v.Page.Limit < v.Page.Total {
		v.NextURL = page(v.Page.Offset + v.Page.Limit)
	}
	if err == nil && v.Page.Total > 0 && len(q.States) == 1 && q.States[0] == ledger.StateUnknown && q.LocalID == "" {
		b, _ := json.Marshal(BulkResolveRequest{Action: "resend", BulkFilter: BulkFilter{Source: q.Source, From: q.From, To: q.To}})
		v.ResendBody = string(b)
	}
	v.Sources, _ = s.Ledger.Sources(r.Context(), 200)
	slices.Sort(v.Sources)
	s.render(w, r, incidentsTmpl, status, pageData{Title: "Incidents", Nav: "incidents", O: o, Data: v, Refresh: true})
}

func (s *Server) incidentPage(w http.ResponseWriter, r *http.Request) {
	o := s.Overview(r.Context())
	source, localID := r.PathValue("source"), r.PathValue("local_id")
	key := ledger.Key(source, ingest.IncidentKey(source, localID))
	e, err := s.Ledger.Get(r.Context(), key)
	data := map[string]any{"Source": source, "LocalID": localID}
	status := http.StatusOK
	switch {
	case err == nil:
		rec := RecordOf(e)
		// Newest first: the operator wants to see where it is now.
		h := make([]ledger.HistoryEntry, len(rec.History))
		for i, he := range rec.History {
			h[len(h)-1-i] = he
		}
		rec.History = h
		data["Rec"] = rec
		data["Reviewed"] = e.Reviewed
		data["Attention"] = e.State.NeedsOperator()
		data["Unknown"] = e.Resolvable()
		// A replay that could POST it a second time is refused (actions.go); say why instead.
		code, why := e.ReplayRefusal()
		data["NoReplay"], data["NoReplayResolve"] = why, code == CodeNeedsResolve
	case errors.Is(err, ledger.ErrNotFound):
		status = http.StatusNotFound
		data["Missing"] = true
	default:
		status = http.StatusServiceUnavailable
		data["Error"] = err.Error()
	}
	s.render(w, r, incidentTmpl, status, pageData{Title: localID, Nav: "incidents", O: o, Data: data, Refresh: true})
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if !s.Auth.Enabled() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.render(w, r, loginTmpl, http.StatusOK, pageData{Title: "Sign in", O: Overview{Demo: s.Demo},
		Data: map[string]any{"Next": safeNext(r.URL.Query().Get("next"))}})
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if !s.Auth.Enabled() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	next := safeNext(r.PostFormValue("next"))
	id, ok := s.Auth.login(w, r.PostFormValue("token"))
	if !ok {
		s.Auth.countRefused("login")
		s.Log.Warn().Str("remote", r.RemoteAddr).Msg("status page sign-in refused: unknown token")
		s.render(w, r, loginTmpl, http.StatusUnauthorized, pageData{Title: "Sign in", O: Overview{Demo: s.Demo},
			Data: map[string]any{"Next": next, "Error": "That token is not recognised."}})
		return
	}
	s.Log.Info().Str("actor", id.Actor()).Msg("signed in to the status page")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logoutSubmit(w http.ResponseWriter, r *http.Request) {
	if s.Auth.Enabled() {
		s.Auth.logout(w, r)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// incidentPath is the page (or, with a prefix, API) path of an incident; local ids are free
// text, so each segment is escaped.
func incidentPath(source, localID string) string {
	parts := strings.Split(localID, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return url.PathEscape(source) + "/" + strings.Join(parts, "/")
}

// tone is a state's colour family: done (green), moving (blue), waiting (amber: stuck until
// something changes), refused (red: ended without delivery).
func tone(st ledger.State) string {
	switch st {
	case ledger.StateDelivered:
		return "done"
	case ledger.StateReceived, ledger.StateQueued, ledger.StateDelivering:
		return "moving"
	case ledger.StateRetrying, ledger.StateHeld, ledger.StateUnknown:
		return "waiting"
	case ledger.StateRejected, ledger.StateQuarantined, ledger.StateFailed:
		return "refused"
	}
	return "moving"
}

func stateLabel(st ledger.State) string {
	if st == "" {
		return "—"
	}
	return strings.ToUpper(string(st[:1])) + string(st[1:])
}

// stateHelp says what a state means and what to do about it, for the overview's lists.
func stateHelp(st ledger.State) string {
	switch st {
	case ledger.StateUnknown:
		return "A POST was sent and no answer came back. Check with LFPSE, then resolve as delivered (with its national id) or resend."
	case ledger.StateFailed:
		return "Retries were used up. Replay once the national service is reachable again."
	case ledger.StateRejected:
		return "The national service refused the payload. Fix the code map or the source record, then replay."
	case ledger.StateQuarantined:
		return "The gateway could not map or validate it. Fix the code map or taxonomy version, then replay."
	}
	return ""
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	if d < 0 {
		d = 0
	}
	if d < 5*time.Second {
		return "just now"
	}
	return humanDuration(d) + " ago"
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// spark is an SVG bar chart of deliveries per minute, drawn in the template.
type spark struct {
	Bars  []sparkBar
	Max   int
	Width int
}

type sparkBar struct{ X, Y, H, N int }

func sparkline(minutes []int) spark {
	const height, barW = 36, 4
	sp := spark{Width: len(minutes) * barW}
	for _, n := range minutes {
		sp.Max = max(sp.Max, n)
	}
	for i, n := range minutes {
		h := 0
		if sp.Max > 0 && n > 0 {
			h = max(2, n*height/sp.Max)
		}
		sp.Bars = append(sp.Bars, sparkBar{X: i * barW, Y: height - h, H: h, N: n})
	}
	return sp
}
