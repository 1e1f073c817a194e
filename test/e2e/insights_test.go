package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/psgw/psgw/insights"
	"github.com/psgw/psgw/test/wait"
)

// nhsNumber makes a valid NHS number (Modulus 11) from a 9-digit stem, or "" when the stem
// has no valid check digit.
func nhsNumber(stem int) string {
	s := fmt.Sprintf("%09d", stem)
	sum := 0
	for i, c := range s {
		sum += int(c-'0') * (10 - i)
	}
	check := 11 - sum%11
	switch check {
	case 11:
		check = 0
	case 10:
		return ""
	}
	return s + strconv.Itoa(check)
}

// insightsWeek0 is the Monday of the first of twelve weeks of planted incidents.
var insightsWeek0 = time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)

// plantedIncident is one incident of the known distribution, with identifiers and free text
// that the store and the API must never hold.
type plantedIncident struct {
	localID, nhs, dob, eventType, harm string
	week                               int
}

// description words no code, key or label holds, so that finding one means free text leaked.
const leakWords = "zephyrine quillwort marzipanic"

func (p plantedIncident) body() map[string]any {
	occurred := insightsWeek0.AddDate(0, 0, 7*p.week+2).Format("2006-01-02")
	in := map[string]any{
		"source": "datix", "local_id": p.localID, "event_type": p.eventType,
		"occurred_at": occurred, "reported_at": occurred,
		"description":       "Patient " + p.nhs + " born " + p.dob + ": " + leakWords + " " + p.localID,
		"immediate_actions": "reviewed " + leakWords,
		"location":          map[string]any{"organisation": "RRK"},
		"reporter":          map[string]any{"role": "Nurse or midwife", "organisation": "RRK"},
	}
	if p.eventType != "risk" {
		in["patients"] = []map[string]any{{"nhs_number": p.nhs, "local_patient_id": "MRN-" + p.localID,
			"date_of_birth": p.dob, "sex": "female", "physical_harm": p.harm, "psychological_harm": "none"}}
	}
	if p.eventType == "risk" {
		in["risk"] = map[string]any{"description": leakWords, "imminent": "no", "themes": []string{"1"}, "service_areas": []string{"1"}, "population": leakWords, "timeframe": "1"}
	}
	return in
}

// plantedDistribution is twelve weeks of incidents: each week 10 + week%3 incidents (low harm,
// except two moderate a week) and 2 risks, so that every weekly risk count is suppressed while
// the risks' total is not.
func plantedDistribution() []plantedIncident {
	var out []plantedIncident
	stem := 943476000
	next := func() string {
		for {
			stem++
			if n := nhsNumber(stem); n != "" {
				return n
			}
		}
	}
	for w := range 12 {
		for i := range 10 + w%3 {
			harm := "low"
			if i < 2 {
				harm = "moderate"
			}
			out = append(out, plantedIncident{localID: fmt.Sprintf("INS-%02d-%02d", w, i), nhs: next(),
				dob: fmt.Sprintf("19%02d-0%d-1%d", 40+w, 1+i%9, i%10), eventType: "incident", harm: harm, week: w})
		}
		for i := range 2 {
			out = append(out, plantedIncident{localID: fmt.Sprintf("RSK-%02d-%02d", w, i), nhs: next(), dob: "1961-02-03", eventType: "risk", week: w})
		}
	}
	return out
}

func (h *harness) getBody(t *testing.T, path, accept string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.Base+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (h *harness) insights(t *testing.T, query string) insights.Answer {
	t.Helper()
	code, b := h.getBody(t, "/api/v1/insights?"+query, "")
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/insights?%s: %d %s", query, code, b)
	}
	var a insights.Answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("decoding insights: %v: %s", err, b)
	}
	return a
}

func groupOf(a insights.Answer, key string) *insights.Group {
	for i := range a.Groups {
		if a.Groups[i].Key == key {
			return &a.Groups[i]
		}
	}
	return nil
}

const twelveWeeks = "from=2025-01-06&to=2025-03-30"

// TestInsightsKnownDistribution posts twelve weeks of incidents with a known distribution
// through the HTTP push API of a real gateway delivering to the simulator, and checks the
// insights API's counts and weekly series against it, suppression included; then it scans
// the learning store's bucket and every answer for the incidents' identifiers and words.
func TestInsightsKnownDistribution(t *testing.T) {
	h := newHarness(t, nil)
	planted := plantedDistribution()
	for _, p := range planted {
		if r := h.post(p.body()); r.Status != http.StatusAccepted {
			t.Fatalf("posting %s: %d %s %v", p.localID, r.Status, r.Error, r.Problems)
		}
	}
	wait.For(t, 60*time.Second, "every planted incident delivered in the learning store", func() (bool, string) {
		a := h.insights(t, twelveWeeks+"&by=state&suppress=off")
		g := groupOf(a, "delivered")
		if g == nil || g.Value == nil || *g.Value != len(planted) {
			return false, fmt.Sprintf("%+v", a.Groups)
		}
		return true, ""
	})

	wantWeek := func(eventType string, w int) int {
		n := 0
		for _, p := range planted {
			if p.eventType == eventType && p.week == w {
				n++
			}
		}
		return n
	}
	a := h.insights(t, twelveWeeks+"&by=event_type&interval=week")
	if len(a.Starts) != 12 || a.Starts[0] != "2025-01-06" || a.Starts[11] != "2025-03-24" {
		t.Fatalf("starts %v, want the twelve Mondays from 2025-01-06", a.Starts)
	}
	if a.Suppression != 7 || a.Total.Value == nil || *a.Total.Value != len(planted) {
		t.Errorf("total %v (threshold %d), want %d with threshold 7", a.Total.Value, a.Suppression, len(planted))
	}
	inc, risk := groupOf(a, "incident"), groupOf(a, "risk")
	if inc == nil || risk == nil {
		t.Fatalf("groups %+v, want incident and risk", a.Groups)
	}
	if *inc.Value != 132 || *risk.Value != 24 {
		t.Errorf("counts incident %d risk %d, want 132 and 24", *inc.Value, *risk.Value)
	}
	for w := range 12 {
		if p := inc.Series[w]; p.Value == nil || *p.Value != wantWeek("incident", w) {
			t.Errorf("incident week %d: got %+v, want %d", w, p, wantWeek("incident", w))
		}
		if p := risk.Series[w]; p.Value != nil || !p.Suppressed {
			t.Errorf("risk week %d: got %+v, want suppressed (2 is from 1 to 7)", w, p)
		}
	}

	// Two dimensions: two moderate-harm incidents a week, 24 in all; risks have no patient.
	a = h.insights(t, twelveWeeks+"&by=event_type,physical_harm&interval=month")
	if g := groupOf(a, "incident,moderate"); g == nil || *g.Value != 24 || len(g.Keys) != 2 {
		t.Errorf("incident,moderate: %+v, want 24", g)
	}
	if g := groupOf(a, "risk,"+insights.NotRecorded); g == nil || *g.Value != 24 {
		t.Errorf("risk,not_recorded: %+v, want 24", g)
	}
	// A filter, and suppression of a whole group.
	a = h.insights(t, "by=physical_harm&event_type=incident&from=2025-01-06&to=2025-01-19")
	if g := groupOf(a, "moderate"); g == nil || !g.Suppressed || g.Value != nil {
		t.Errorf("two weeks of moderate harm (4): %+v, want suppressed", g)
	}
	a = h.insights(t, "by=physical_harm&event_type=incident&from=2025-01-06&to=2025-01-19&suppress=off")
	if g := groupOf(a, "moderate"); g == nil || g.Value == nil || *g.Value != 4 {
		t.Errorf("unsuppressed moderate harm: %+v, want 4", g)
	}

	// CSV: one row per group and week, a suppressed count empty and marked.
	code, body := h.getBody(t, "/api/v1/insights?"+twelveWeeks+"&by=event_type&interval=week", "text/csv")
	if code != http.StatusOK {
		t.Fatalf("CSV: %d %s", code, body)
	}
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v", err)
	}
	if strings.Join(rows[0], ",") != "event_type,label,week,count,suppressed" || len(rows) != 1+2*12 {
		t.Fatalf("CSV header %v and %d rows, want event_type,label,week,count,suppressed and 24", rows[0], len(rows)-1)
	}
	for _, r := range rows[1:] {
		if r[0] == "risk" && (r[3] != "" || r[4] != "true") {
			t.Errorf("CSV risk row %v: want an empty, suppressed count", r)
		}
		if r[0] == "incident" && r[2] == "2025-01-13" && r[3] != strconv.Itoa(wantWeek("incident", 1)) {
			t.Errorf("CSV incident row %v: want %d", r, wantWeek("incident", 1))
		}
	}

	// Bad parameters: 400 naming the parameter and the rule.
	for query, want := range map[string]string{
		"by=colour":                     "by: unknown dimension",
		"interval=day":                  "interval: must be week or month",
		"from=yesterday":                "from: must be a date",
		"by=source,state,event_type":    "by: at most two",
		"physical_harm=catastrophic":    "physical_harm: unknown value",
		"from=2025-02-01&to=2025-01-01": "from: must not be after to",
		"wibble=1":                      "wibble: unknown parameter",
	} {
		code, b := h.getBody(t, "/api/v1/insights?"+query, "")
		if code != http.StatusBadRequest || !strings.Contains(string(b), want) {
			t.Errorf("?%s: %d %s, want 400 with %q", query, code, b, want)
		}
	}

	t.Run("privacy", func(t *testing.T) {
		var haystack []string
		kv, err := h.GW.Queue.JetStream().KeyValue(context.Background(), insights.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		lister, err := kv.ListKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for k := range lister.Keys() {
			e, err := kv.Get(context.Background(), k)
			if err != nil && err != jetstream.ErrKeyNotFound {
				t.Fatal(err)
			}
			haystack = append(haystack, k, string(e.Value()))
			n++
		}
		if n != len(planted) {
			t.Fatalf("bucket holds %d facts, want %d", n, len(planted))
		}
		for _, q := range []string{"by=event_type,physical_harm&interval=week", "by=agent,age_band", "by=organisation,reporter_role&interval=month", "by=source,state"} {
			for _, accept := range []string{"", "text/csv"} {
				_, b := h.getBody(t, "/api/v1/insights?"+twelveWeeks+"&suppress=off&"+q, accept)
				haystack = append(haystack, string(b))
			}
		}
		_, page := h.getBody(t, "/insights?"+twelveWeeks, "")
		haystack = append(haystack, string(page))
		all := strings.ToLower(strings.Join(haystack, "\n"))
		for _, p := range planted {
			for _, needle := range []string{p.nhs, p.localID, strings.ToLower(p.localID), p.dob, "mrn-"} {
				if strings.Contains(all, strings.ToLower(needle)) {
					t.Errorf("the store or an answer holds %q of incident %s", needle, p.localID)
				}
			}
		}
		for _, w := range strings.Fields(leakWords) {
			if strings.Contains(all, w) {
				t.Errorf("the store or an answer holds the description word %q", w)
			}
		}
	})

	// After a restart the index is read again from the bucket, and the states from the ledger.
	t.Run("restart", func(t *testing.T) {
		h.Restart()
		wait.For(t, 30*time.Second, "the same answer after a restart", func() (bool, string) {
			a := h.insights(t, twelveWeeks+"&by=state,event_type&suppress=off")
			inc, risk := groupOf(a, "delivered,incident"), groupOf(a, "delivered,risk")
			if a.Loading || inc == nil || risk == nil || *inc.Value != 132 || *risk.Value != 24 {
				return false, fmt.Sprintf("loading %v %+v", a.Loading, a.Groups)
			}
			return true, ""
		})
	})
}
