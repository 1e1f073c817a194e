package contract

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/test/wait"
)

// The end-to-end proofs of issue 14 ("nothing dropped in silence") and issue 15 ("no quoted
// PHI on the page"), through the real binary: the 202, the delivery record and its history,
// the status page, the JSON API, the metrics, psgw map, psgw events and psgw status.

// warningsOf returns the "warnings" of a JSON body as "field: message" lines.
func warningsOf(t *testing.T, body []byte) []string {
	t.Helper()
	var b struct {
		Warnings []struct {
			Field    string `json:"field"`
			Message  string `json:"message"`
			Fallback bool   `json:"fallback"`
		} `json:"warnings"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	var out []string
	for _, w := range b.Warnings {
		line := w.Field + ": " + w.Message
		if w.Fallback {
			line += " (fallback)"
		}
		out = append(out, line)
	}
	return out
}

func hasLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// TestMisspeltFieldIsWarnedEverywhere is issue 14's "must show 4": a misspelt field is named
// in the 202, by psgw map, and in the incident's record and history. A value the mapping
// falls back on ("Other") is named too, counted in the metrics and on the status page's
// source row.
func TestMisspeltFieldIsWarnedEverywhere(t *testing.T) {
	e := shared(t)
	id := uid("WARN")
	inc := incident(id)
	inc["patients"] = []any{map[string]any{"physicalHarm": "severe", "sex": "female"}}
	inc["reporter"] = map[string]any{"role": "Porter", "organisation": "RRK"}
	body := mustJSON(t, inc)

	r := e.gw.post(t, body)
	checkAccepted(t, r)
	accepted := warningsOf(t, r.body)
	if !hasLine(accepted, "patients[0].physicalHarm: unknown field, ignored; did you mean physical_harm?") {
		t.Errorf("202 warnings: got %q, want patients[0].physicalHarm named with the suggestion", accepted)
	}
	if !hasLine(accepted, `reporter.role: value "Porter" has no LFPSE code`) {
		t.Errorf("202 warnings: got %q, want the fallback of reporter.role named", accepted)
	}

	// psgw map: the same warnings on standard error, exit 0.
	dir := t.TempDir()
	file := filepath.Join(dir, "incident.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	m := runPsgw(t, dir, cleanEnv(), nil, 60*time.Second, "map", "--source", "datix", file)
	if m.code != 0 || !strings.Contains(m.stderr, "warning: patients[0].physicalHarm: unknown field, ignored; did you mean physical_harm?") {
		t.Errorf("psgw map: exit %d, stderr %q; want 0 and the warning", m.code, m.stderr)
	}

	// The record: its warnings, and the history of the mapping.
	rec := e.gw.waitSettled(t, "datix", id)
	if rec.State != "delivered" {
		t.Fatalf("state %s (%s), want delivered: warnings do not stop an incident", rec.State, rec.LastError)
	}
	_, raw := httpGet(t, e.gw.recordURL("datix", id))
	kept := warningsOf(t, raw)
	if !hasLine(kept, "patients[0].physicalHarm: unknown field, ignored; did you mean physical_harm?") ||
		!hasLine(kept, `reporter.role: value "Porter" has no LFPSE code`) || !strings.Contains(strings.Join(kept, "\n"), "(fallback)") {
		t.Errorf("record warnings: got %q, want the misspelt field and the fallback, marked", kept)
	}
	mapped := false
	for _, h := range rec.History {
		mapped = mapped || (strings.Contains(h.Detail, "mapped to LFPSE") && strings.Contains(h.Detail, "patients[0].physicalHarm"))
	}
	if !mapped {
		t.Errorf("history: no mapping entry names patients[0].physicalHarm: %+v", rec.History)
	}

	// The fallback is counted: in the metrics by source and kind, and on the source's row.
	wait.Until(t, 10*time.Second, "the warnings metric", func() bool {
		_, b := httpGet(t, e.gw.url("/metrics"))
		return strings.Contains(string(b), `psgw_mapper_warnings_total{kind="other",source="datix"}`) &&
			strings.Contains(string(b), `psgw_mapper_warnings_total{kind="unknown_field",source="datix"}`)
	})
	wait.Until(t, 10*time.Second, "the source's row", func() bool {
		_, b := httpGet(t, e.gw.url("/api/v1/status"))
		var o struct {
			Sources []struct {
				Source    string `json:"source"`
				Fallbacks int    `json:"with_fallbacks"`
				Warned    int    `json:"with_warnings"`
			} `json:"sources"`
		}
		_ = json.Unmarshal(b, &o)
		for _, s := range o.Sources {
			if s.Source == "datix" && s.Fallbacks > 0 && s.Warned > 0 {
				return true
			}
		}
		return false
	})
	_, page := httpGet(t, e.gw.url("/"))
	if !bytes.Contains(page, []byte(`id="source-mapping"`)) || !bytes.Contains(page, []byte(`data-source="datix"`)) {
		t.Errorf("the status page has no mapping row for datix")
	}
	st := runPsgw(t, dir, cleanEnv(), nil, 30*time.Second, "status", "--url", e.gw.url(""))
	if !strings.Contains(st.stdout, "WITH FALLBACKS") {
		t.Errorf("psgw status: no source warnings table:\n%s", st.stdout)
	}
}

// TestFallbacksCanBeQuarantined: with mapping.fallbacks: quarantine, an incident whose value
// would go out as "Other" is quarantined with the reason instead, and never sent.
func TestFallbacksCanBeQuarantined(t *testing.T) {
	s := startSim(t, "--key", simKey)
	g := startGateway(t, gwOpts{simURL: s.url, noMLLP: true, env: map[string]string{"PSGW_MAPPING_FALLBACKS": "quarantine"}})
	id := uid("FBQ")
	inc := incident(id)
	inc["reporter"] = map[string]any{"role": "Porter"}
	r := g.postIncident(t, inc)
	checkAccepted(t, r)
	if !hasLine(warningsOf(t, r.body), "reporter.role") {
		t.Errorf("202: got %s, want the fallback named, so that the sender hears of it at once", r.body)
	}
	rec := g.waitSettled(t, "datix", id)
	if rec.State != "quarantined" || !strings.Contains(rec.LastError, "reporter.role") || !strings.Contains(rec.LastError, "fallbacks are quarantined") {
		t.Errorf("got %s (%q), want quarantined naming reporter.role", rec.State, rec.LastError)
	}
	if n := s.eventsContaining(t, id); n != 0 {
		t.Errorf("the simulator got %d events for %s, want none", n, id)
	}
}

// The value a sender put in a coded field, and in unknown fields: a name and a date of
// birth, which psgw was never told are identifiers.
const (
	codedName  = "Jane Doelittle DOB 01/03/1975"
	leakFamily = "Doelittle"
	leakDOB    = "01/03/1975"
)

// TestCodedFieldHoldingANameIsNotShown is issue 15's "must show 3": a coded field holding a
// name and a date of birth (reporter.role, which falls back on "Other", and
// location.service_area, which has no "Other" and quarantines the incident), and unknown
// fields holding them as key and as value. The 202, the record (JSON API), the search, the
// status page, the incident list and page, psgw events and psgw status never show them; the
// reasons and warnings name the fields and the rules.
func TestCodedFieldHoldingANameIsNotShown(t *testing.T) {
	e := shared(t)
	quarantined, sent := uid("PHIQ"), uid("PHIS")
	var replies [][]byte
	for _, id := range []string{quarantined, sent} {
		inc := incident(id)
		inc["reporter"] = map[string]any{"role": codedName}
		inc["patient_name"] = codedName
		inc["Jane Doelittle 01/03/1975"] = "x"
		if id == quarantined {
			inc["location"] = map[string]any{"organisation": "RRK", "service_area": codedName}
		}
		r := e.gw.postIncident(t, inc)
		checkAccepted(t, r)
		replies = append(replies, r.body)
	}
	if rec := e.gw.waitSettled(t, "datix", quarantined); rec.State != "quarantined" || !strings.Contains(rec.LastError, "location.service_area") {
		t.Fatalf("%s: got %s (%q), want quarantined naming location.service_area", quarantined, rec.State, rec.LastError)
	}
	if rec := e.gw.waitSettled(t, "datix", sent); rec.State != "delivered" {
		t.Fatalf("%s: got %s (%q), want delivered", sent, rec.State, rec.LastError)
	}
	shown := map[string]string{
		"202 (quarantined)": string(replies[0]), "202 (sent)": string(replies[1]),
	}
	for _, id := range []string{quarantined, sent} {
		_, rec := httpGet(t, e.gw.recordURL("datix", id))
		shown["record "+id] = string(rec)
		_, page := httpGet(t, e.gw.url("/incidents/datix/"+id))
		shown["incident page "+id] = string(page)
		_, search := httpGet(t, e.gw.url("/api/v1/incidents?source=datix&local_id="+id))
		shown["search "+id] = string(search)
		ev := runPsgw(t, t.TempDir(), cleanEnv(), nil, 30*time.Second, "events", "--url", e.gw.url(""), "--local-id", id)
		shown["psgw events "+id] = ev.stdout + ev.stderr
		evj := runPsgw(t, t.TempDir(), cleanEnv(), nil, 30*time.Second, "events", "--json", "--url", e.gw.url(""), "--local-id", id)
		shown["psgw events --json "+id] = evj.stdout + evj.stderr
		if !strings.Contains(evj.stdout, id) {
			t.Errorf("psgw events --json does not list %s: %s", id, evj.stdout)
		}
		// The reasons name the field and say why, without the value.
		for _, want := range []string{"reporter.role", "[key of 25 characters, not shown]", "patient_name: unknown field"} {
			if !strings.Contains(string(rec), want) {
				t.Errorf("record %s does not name %q: %s", id, want, rec)
			}
		}
	}
	for where, path := range map[string]string{
		"status page": "/", "quarantined list": "/incidents?state=quarantined", "incident list": "/incidents?source=datix",
		"status API": "/api/v1/status", "quarantined search": "/api/v1/incidents?state=quarantined&limit=500",
	} {
		_, b := httpGet(t, e.gw.url(path))
		shown[where] = string(b)
	}
	st := runPsgw(t, t.TempDir(), cleanEnv(), nil, 30*time.Second, "status", "--url", e.gw.url(""))
	shown["psgw status"] = st.stdout + st.stderr
	q := runPsgw(t, t.TempDir(), cleanEnv(), nil, 30*time.Second, "events", "--state", "quarantined", "--url", e.gw.url(""))
	shown["psgw events --state quarantined"] = q.stdout + q.stderr
	for where, text := range shown {
		for _, leak := range []string{leakFamily, leakDOB, "Jane"} {
			if i := strings.Index(text, leak); i >= 0 {
				lo, hi := max(0, i-120), min(len(text), i+len(leak)+120)
				t.Errorf("%s shows %q: …%s…", where, leak, text[lo:hi])
			}
		}
	}
	if strings.Contains(e.gw.out.String(), leakFamily) || strings.Contains(e.gw.out.String(), leakDOB) {
		t.Errorf("the gateway's log holds the name or date of birth sent in a coded field")
	}
}

// An EPR patient whose name only the ADT feed gives.
var (
	nhsNamed    = nhsNumber("401023299")
	lpidNamed   = "MRN-66120941"
	familyNamed = "BRIGHTWATER"
	givenNamed  = "ONESIPHORUS"
)

// TestEPRNameIsRemovedFromThePayload: the EPR registers a patient with PID-5 (through the
// real MLLP listener into the demographics store); an incident naming the patient by NHS
// number mentions the patient's name and hospital number in its free text, in other cases
// and spellings. The simulator receives the incident without them, and the record counts the
// names redacted (issue 15: names "where the demographics store holds them").
func TestEPRNameIsRemovedFromThePayload(t *testing.T) {
	e := shared(t)
	m := dialMLLP(t, e.gw.mllp)
	ctrl := uid("NAME")
	checkACK(t, exchange(t, m, adtMessage("A28", ctrl, pidFor(nhsNamed, lpidNamed, familyNamed, givenNamed, "1948-02-29", "M"))), "AA", ctrl)

	id := uid("NAMED")
	inc := incident(id)
	inc["description"] = "Onesiphorus Brightwater (hospital no. " + strings.ToLower(lpidNamed) + ") was found on the floor; " +
		"Mr BRIGHTWATER's daughter was told. Ｂｒｉｇｈｔｗａｔｅｒ had fallen before."
	inc["immediate_actions"] = "Seen by the registrar; brightwater family informed"
	inc["patients"] = []any{map[string]any{"nhs_number": nhsNamed, "physical_harm": "low"}}
	checkAccepted(t, e.gw.postIncident(t, inc))
	rec := e.gw.waitSettled(t, "datix", id)
	if rec.State != "delivered" {
		t.Fatalf("state %s (%s), want delivered", rec.State, rec.LastError)
	}
	ev, ok := e.sim.eventByNationalID(t, rec.NationalID)
	if !ok {
		t.Fatalf("%s is not at the simulator", id)
	}
	payload := strings.ToLower(string(ev.raw))
	for _, leak := range []string{"brightwater", "onesiphorus", "ｂｒｉｇｈｔｗａｔｅｒ", strings.ToLower(lpidNamed), "66120941"} {
		if strings.Contains(payload, leak) {
			t.Errorf("the payload the simulator received holds %q: %s", leak, ev.raw)
		}
	}
	if !strings.Contains(payload, "was found on the floor") || !strings.Contains(payload, "had fallen before") {
		t.Errorf("the rest of the text did not arrive: %s", ev.raw)
	}
	mapped := ""
	for _, h := range rec.History {
		if strings.Contains(h.Detail, "mapped to LFPSE") {
			mapped = h.Detail
		}
	}
	if !strings.Contains(mapped, "5 names") || !strings.Contains(mapped, "1 local patient id") {
		t.Errorf("history: got %q, want the 5 names and the local id counted", mapped)
	}
	for _, s := range []string{familyNamed, givenNamed, lpidNamed} {
		if strings.Contains(strings.ToUpper(e.gw.out.String()), strings.ToUpper(s)) {
			t.Errorf("the gateway's log holds %s", s)
		}
	}
}
