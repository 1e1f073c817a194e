package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// §2: 202 body, sent after durable storage; the record exists at once.
func TestIngestAccepts(t *testing.T) {
	e := shared(t)
	id := uid("ACC")
	r := e.gw.postIncident(t, fullIncident(id))
	a := checkAccepted(t, r)
	if *a.Duplicate {
		t.Errorf("first send answered duplicate: true")
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("202 Content-Type %q, want application/json", ct)
	}
	// Accepted means stored: the record is there (not 404) straight away.
	rec, ok := e.gw.getRecord(t, "datix", id)
	if !ok {
		t.Fatalf("GET the record right after 202: 404")
	}
	if !allStates[rec.State] {
		t.Errorf("state %q is not one of the contract's states", rec.State)
	}
	if rec.Revision != 1 {
		t.Errorf("record right after 202 for revision 1: revision %d (state %s)", rec.Revision, rec.State)
	}
	rec = e.gw.waitState(t, "datix", id, "delivered")
	checkRecordShape(t, e.gw, "datix", id)
	if rec.NationalID == "" || rec.NationalReference == "" || rec.Attempts < 1 || rec.LastError != "" {
		t.Errorf("delivered record: national_id %q, national_reference %q, attempts %d, last_error %q", rec.NationalID, rec.NationalReference, rec.Attempts, rec.LastError)
	}
	// national_reference is the simulator's ReferenceNumber.
	ev, ok := e.sim.eventByNationalID(t, rec.NationalID)
	if !ok {
		t.Fatalf("national id %s not at the simulator", rec.NationalID)
	}
	if ref := referenceNumber(ev.resource()); ref != rec.NationalReference {
		t.Errorf("national_reference %q, the national service's ReferenceNumber is %q", rec.NationalReference, ref)
	}
}

// checkRecordShape checks every field of the delivery record of §2.
func checkRecordShape(t *testing.T, g *gateway, source, localID string) {
	t.Helper()
	code, b := httpGet(t, g.recordURL(source, localID))
	if code != 200 {
		t.Fatalf("GET record: %d %s", code, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("record is not a JSON object: %s", b)
	}
	types := map[string]string{
		"source": "string", "local_id": "string", "revision": "number", "state": "string",
		"national_id": "string", "national_reference": "string", "attempts": "number",
		"last_error": "string", "history": "array",
	}
	for k, want := range types {
		v, ok := m[k]
		if !ok {
			t.Errorf("record has no %q: %s", k, b)
			continue
		}
		got := "other"
		switch v.(type) {
		case string:
			got = "string"
		case float64:
			got = "number"
		case []any:
			got = "array"
		}
		if got != want {
			t.Errorf("record field %q is a %s, want %s", k, got, want)
		}
	}
	if m["source"] != source || m["local_id"] != localID {
		t.Errorf("record names %v/%v, want %s/%s", m["source"], m["local_id"], source, localID)
	}
	hist, _ := m["history"].([]any)
	if len(hist) == 0 {
		t.Errorf("record has an empty history")
	}
	for _, h := range hist {
		hm, _ := h.(map[string]any)
		at, _ := hm["at"].(string)
		if _, err := time.Parse(time.RFC3339Nano, at); err != nil {
			t.Errorf("history entry at %q is not RFC 3339", at)
		}
		if st, _ := hm["state"].(string); !allStates[st] {
			t.Errorf("history entry state %q is not one of the contract's states", st)
		}
		if _, ok := hm["detail"].(string); !ok {
			t.Errorf("history entry has no detail string: %v", hm)
		}
	}
}

// referenceNumber finds the inner extension ReferenceNumber (valueString) anywhere in a resource.
func referenceNumber(v any) string {
	switch x := v.(type) {
	case map[string]any:
		if x["url"] == "ReferenceNumber" {
			if s, ok := x["valueString"].(string); ok {
				return s
			}
		}
		for _, c := range x {
			if s := referenceNumber(c); s != "" {
				return s
			}
		}
	case []any:
		for _, c := range x {
			if s := referenceNumber(c); s != "" {
				return s
			}
		}
	}
	return ""
}

// §2: the same incident again is a duplicate and creates no second delivery.
func TestIngestDuplicates(t *testing.T) {
	e := shared(t)
	t.Run("same source, local_id and revision", func(t *testing.T) {
		id := uid("DUPR")
		inc := fullIncident(id)
		if a := e.gw.mustAccept(t, inc); *a.Duplicate {
			t.Fatalf("first send: duplicate true")
		}
		inc2 := fullIncident(id)
		inc2["description"] = inc["description"].(string) + " Re-sent with other text, same revision."
		for i, body := range []map[string]any{inc, inc2} {
			if a := e.gw.mustAccept(t, body); !*a.Duplicate {
				t.Errorf("re-send %d of revision 1: duplicate false", i+1)
			}
		}
		rec := e.gw.waitState(t, "datix", id, "delivered")
		waitQuiet(t)
		if n := e.sim.eventsContaining(t, "("+id+")"); n != 1 {
			t.Errorf("%d events at the national service for one incident, want 1", n)
		}
		if rec.Revision != 1 {
			t.Errorf("revision %d, want 1", rec.Revision)
		}
	})
	t.Run("no revision, same content", func(t *testing.T) {
		id := uid("DUPC")
		desc := "Patient fell from bed, found by nurse \u00e9 \u2013 (" + id + ")."
		body := fmt.Sprintf(`{"source":"datix","local_id":%q,"event_type":"incident","occurred_at":"2025-03-14T09:30:00Z","description":%q}`, id, desc)
		if a := checkAccepted(t, e.gw.post(t, []byte(body))); *a.Duplicate {
			t.Fatalf("first send: duplicate true")
		}
		// The same again; then key order and whitespace changed; then unicode escaped.
		reordered := fmt.Sprintf("{\n  \"description\" : %q ,\n\t\"occurred_at\":\"2025-03-14T09:30:00Z\",\r\n \"event_type\": \"incident\", \"local_id\": %q,   \"source\":\"datix\"\n}\n", desc, id)
		escaped := strings.ReplaceAll(strings.ReplaceAll(body, "\u00e9", `\u00e9`), "\u2013", `\u2013`)
		for name, b := range map[string]string{"identical": body, "reordered and re-spaced": reordered, "unicode escaped": escaped} {
			if a := checkAccepted(t, e.gw.post(t, []byte(b))); !*a.Duplicate {
				t.Errorf("%s re-send: duplicate false", name)
			}
		}
		e.gw.waitState(t, "datix", id, "delivered")
		waitQuiet(t)
		if n := e.sim.eventsContaining(t, id); n != 1 {
			t.Errorf("%d events at the national service, want 1", n)
		}
	})
	t.Run("no revision, changed content is not a duplicate", func(t *testing.T) {
		id := uid("DUPX")
		inc := incident(id)
		e.gw.mustAccept(t, inc)
		inc["description"] = "Changed description for " + id
		if a := e.gw.mustAccept(t, inc); *a.Duplicate {
			t.Errorf("changed content answered duplicate: true")
		}
	})
}

// waitQuiet gives a wrongly repeated delivery a moment to show itself.
func waitQuiet(t *testing.T) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
}

// §2: a higher revision amends the incident: a PUT to the national id it already holds.
func TestIngestAmendment(t *testing.T) {
	e := shared(t)
	id := uid("AMEND")
	inc := fullIncident(id)
	e.gw.mustAccept(t, inc)
	first := e.gw.waitState(t, "datix", id, "delivered")
	inc["revision"] = 2
	inc["description"] = "Amended: the dose was six hours late (" + id + ")."
	if a := e.gw.mustAccept(t, inc); *a.Duplicate {
		t.Fatalf("revision 2 answered duplicate: true")
	}
	rec := e.gw.waitRecord(t, "datix", id, 20*time.Second, "revision 2 delivered", func(r record) bool {
		return r.Revision == 2 && r.State == "delivered"
	})
	if rec.NationalID != first.NationalID {
		t.Errorf("the amendment changed the national id from %s to %s; it should amend the same event", first.NationalID, rec.NationalID)
	}
	ev, ok := e.sim.eventByNationalID(t, rec.NationalID)
	if !ok {
		t.Fatalf("national id %s not at the simulator", rec.NationalID)
	}
	if d, _ := ev.resource()["description"].(string); !strings.HasPrefix(d, "Amended:") {
		t.Errorf("the national event's description is %q, want the amended text", d)
	}
	// Old revisions and the same revision again are duplicates.
	inc["revision"] = 1
	if a := e.gw.mustAccept(t, inc); !*a.Duplicate {
		t.Errorf("revision 1 after revision 2 (same source, local_id, revision as before): duplicate false")
	}
	inc["revision"] = 2
	if a := e.gw.mustAccept(t, inc); !*a.Duplicate {
		t.Errorf("revision 2 again: duplicate false")
	}
	waitQuiet(t)
	if n := e.sim.eventsContaining(t, "("+id+")"); n != 1 {
		t.Errorf("%d national events for one amended incident, want 1", n)
	}
}

// §2: a lower revision never overwrites a higher one, whatever order they arrive in.
func TestIngestRevisionOrder(t *testing.T) {
	e := shared(t)
	t.Run("lower revision after a higher one", func(t *testing.T) {
		id := uid("ORDER")
		inc := incident(id)
		inc["revision"] = 3
		inc["description"] = "Revision three (" + id + ")."
		e.gw.mustAccept(t, inc)
		first := e.gw.waitState(t, "datix", id, "delivered")
		inc["revision"] = 2
		inc["description"] = "Revision two, late (" + id + ")."
		if r := e.gw.postIncident(t, inc); r.status != http.StatusAccepted {
			t.Fatalf("an older revision: want 202, got %s", r)
		}
		// The right outcome is that nothing happens, which cannot be awaited: give a wrongly
		// sent older revision the time to reach the record.
		time.Sleep(time.Second)
		rec := e.gw.waitSettled(t, "datix", id)
		if rec.Revision != 3 || rec.NationalID != first.NationalID {
			t.Errorf("after revision 2 arrived late: revision %d, national id %s (was %s); want revision 3 kept", rec.Revision, rec.NationalID, first.NationalID)
		}
		ev, _ := e.sim.eventByNationalID(t, first.NationalID)
		if d, _ := ev.resource()["description"].(string); !strings.HasPrefix(d, "Revision three") {
			t.Errorf("the national event now says %q; an older revision overwrote a newer one", d)
		}
	})
	t.Run("revisions sent concurrently", func(t *testing.T) {
		id := uid("RACE")
		var wg sync.WaitGroup
		for rev := 1; rev <= 6; rev++ {
			wg.Go(func() {
				inc := incident(id)
				inc["revision"] = rev
				inc["description"] = fmt.Sprintf("Revision %d (%s).", rev, id)
				resp, err := client.Post(e.gw.url("/api/v1/incidents"), "application/json", bytes.NewReader(mustJSON(t, inc)))
				if err != nil {
					t.Errorf("revision %d: %v", rev, err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("revision %d: %d", rev, resp.StatusCode)
				}
			})
		}
		wg.Wait()
		rec := e.gw.waitRecord(t, "datix", id, 20*time.Second, "revision 6 delivered", func(r record) bool {
			return r.Revision == 6 && r.State == "delivered"
		})
		waitQuiet(t)
		if n := e.sim.eventsContaining(t, "("+id+")"); n != 1 {
			t.Errorf("%d national events for one incident, want 1", n)
		}
		ev, _ := e.sim.eventByNationalID(t, rec.NationalID)
		if d, _ := ev.resource()["description"].(string); !strings.HasPrefix(d, "Revision 6") {
			t.Errorf("the national event says %q, want revision 6", d)
		}
	})
}

// §2: the rules of the core fields, each broken alone; and valid boundary values.
func TestIngestValidationRules(t *testing.T) {
	e := shared(t)
	type mut func(m map[string]any)
	set := func(k string, v any) mut { return func(m map[string]any) { m[k] = v } }
	del := func(k string) mut { return func(m map[string]any) { delete(m, k) } }
	patient := func(p map[string]any) mut {
		return func(m map[string]any) { m["patients"] = []any{map[string]any{"physical_harm": "low"}, p} }
	}
	many := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"physical_harm": "none"}
		}
		return out
	}
	check10 := func() string { // nine digits whose Modulus 11 check would be 10
		for i := 100000000; ; i++ {
			s := fmt.Sprint(i)
			if nhsCheck(s) < 0 {
				return s + "0"
			}
		}
	}()
	bad := []struct {
		name  string
		m     mut
		field string
	}{
		{"source missing", del("source"), "source"},
		{"source empty", set("source", ""), "source"},
		{"source upper case", set("source", "Datix"), "source"},
		{"source with a space", set("source", "da tix"), "source"},
		{"source with a dot", set("source", "da.tix"), "source"},
		{"source non-ASCII", set("source", "dätix"), "source"},
		{"source 65 characters", set("source", strings.Repeat("s", 65)), "source"},
		{"local_id missing", del("local_id"), "local_id"},
		{"local_id empty", set("local_id", ""), "local_id"},
		{"local_id 129 characters", set("local_id", strings.Repeat("L", 129)), "local_id"},
		{"local_id 129 multibyte characters", set("local_id", strings.Repeat("é", 129)), "local_id"},
		{"revision 0", set("revision", 0), "revision"},
		{"revision negative", set("revision", -1), "revision"},
		{"revision fractional", set("revision", 1.5), "revision"},
		{"revision a string", set("revision", "2"), "revision"},
		{"revision a boolean", set("revision", true), "revision"},
		{"event_type missing", del("event_type"), "event_type"},
		{"event_type unknown", set("event_type", "near_miss"), "event_type"},
		{"event_type wrong case", set("event_type", "Incident"), "event_type"},
		{"occurred_at missing for incident", del("occurred_at"), "occurred_at"},
		{"occurred_at missing for outcome", func(m map[string]any) { m["event_type"] = "outcome"; delete(m, "occurred_at") }, "occurred_at"},
		{"occurred_at day-first", set("occurred_at", "14/03/2025"), "occurred_at"},
		{"occurred_at unpadded", set("occurred_at", "2025-3-14"), "occurred_at"},
		{"occurred_at impossible date", set("occurred_at", "2025-02-30"), "occurred_at"},
		{"occurred_at hour 25", set("occurred_at", "2025-03-14T25:00:00Z"), "occurred_at"},
		{"occurred_at without zone", set("occurred_at", "2025-03-14T09:30:00"), "occurred_at"},
		{"occurred_at free text", set("occurred_at", "yesterday"), "occurred_at"},
		{"description missing", del("description"), "description"},
		{"description 32001 characters", set("description", strings.Repeat("d", 32001)), "description"},
		{"description 32001 multibyte characters", set("description", strings.Repeat("ü", 32001)), "description"},
		{"patients 101 entries", set("patients", many(101)), "patients"},
		{"nhs_number bad check digit", patient(map[string]any{"nhs_number": nhsBad[:9] + string(rune('0'+(nhsBad[9]-'0'+1)%10))}), "patients[1].nhs_number"},
		{"nhs_number check digit would be 10", patient(map[string]any{"nhs_number": check10}), "patients[1].nhs_number"},
		{"nhs_number 9 digits", patient(map[string]any{"nhs_number": nhsBad[:9]}), "patients[1].nhs_number"},
		{"nhs_number 11 digits", patient(map[string]any{"nhs_number": nhsBad + "1"}), "patients[1].nhs_number"},
		{"nhs_number with a letter", patient(map[string]any{"nhs_number": nhsBad[:9] + "X"}), "patients[1].nhs_number"},
		{"date_of_birth day-first", patient(map[string]any{"date_of_birth": "13/12/1961"}), "patients[1].date_of_birth"},
		{"date_of_birth not a leap year", patient(map[string]any{"date_of_birth": "1975-02-29"}), "patients[1].date_of_birth"},
		{"date_of_birth a date-time", patient(map[string]any{"date_of_birth": "1975-03-01T00:00:00Z"}), "patients[1].date_of_birth"},
		{"sex abbreviated", patient(map[string]any{"sex": "F"}), "patients[1].sex"},
		{"sex capitalised", patient(map[string]any{"sex": "Female"}), "patients[1].sex"},
		{"physical_harm unknown", patient(map[string]any{"physical_harm": "catastrophic"}), "patients[1].physical_harm"},
		{"physical_harm capitalised", patient(map[string]any{"physical_harm": "Low"}), "patients[1].physical_harm"},
		{"psychological_harm fatal", patient(map[string]any{"psychological_harm": "fatal"}), "patients[1].psychological_harm"},
		{"psychological_harm unknown", patient(map[string]any{"psychological_harm": "mild"}), "patients[1].psychological_harm"},
	}
	for _, c := range bad {
		t.Run("400/"+c.name, func(t *testing.T) {
			inc := incident(uid("RULE"))
			c.m(inc)
			r := e.gw.postIncident(t, inc)
			fields := check400(t, r)
			found := false
			for _, f := range fields {
				if f == c.field {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem names the field %q; problems name %q (%s)", c.field, fields, r)
			}
			if lid, ok := inc["local_id"].(string); ok && lid != "" && utf8Len(lid) <= 128 {
				if src, ok := inc["source"].(string); ok && regexp.MustCompile(`^[a-z0-9_-]{1,64}$`).MatchString(src) {
					if _, found := e.gw.getRecord(t, src, lid); found {
						t.Errorf("a refused incident has a delivery record")
					}
				}
			}
		})
	}
	good := []struct {
		name string
		m    mut
	}{
		{"source of one character", set("source", "a")},
		{"source 64 characters", set("source", strings.Repeat("s", 64))},
		{"source with digits, _ and -", set("source", "epr_2-datix")},
		{"local_id of one character", set("local_id", "Z")},
		{"local_id 128 characters", set("local_id", pad(uid("L128"), 128))},
		{"local_id 128 multibyte characters", set("local_id", strings.Repeat("é", 128))},
		{"revision 1", set("revision", 1)},
		{"revision beyond 32 bits", set("revision", int64(1)<<33)},
		{"occurred_at a date", set("occurred_at", "2025-03-14")},
		{"occurred_at with offset", set("occurred_at", "2025-03-14T09:30:00+01:00")},
		{"occurred_at with fraction", set("occurred_at", "2025-03-14T09:30:00.123Z")},
		{"occurred_at lower-case t and z", set("occurred_at", "2025-03-14t09:30:00z")},
		{"risk without occurred_at", func(m map[string]any) { m["event_type"] = "risk"; delete(m, "occurred_at") }},
		{"good_care without occurred_at", func(m map[string]any) { m["event_type"] = "good_care"; delete(m, "occurred_at") }},
		{"description 32000 characters", set("description", pad(uid("D32K"), 32000))},
		{"description 32000 multibyte characters", set("description", strings.Repeat("😀", 32000))},
		{"patients empty", set("patients", []any{})},
		{"patients 100 entries", set("patients", many(100))},
		{"every patient value", set("patients", []any{
			map[string]any{"sex": "female", "physical_harm": "none", "psychological_harm": "none"},
			map[string]any{"sex": "male", "physical_harm": "low", "psychological_harm": "low"},
			map[string]any{"sex": "other", "physical_harm": "moderate", "psychological_harm": "moderate"},
			map[string]any{"sex": "unknown", "physical_harm": "severe", "psychological_harm": "severe"},
			map[string]any{"physical_harm": "fatal", "date_of_birth": "1976-02-29"},
			map[string]any{"nhs_number": nhsFull, "local_patient_id": lpidFull},
		})},
		{"reporter role with no code map", set("reporter", map[string]any{"role": "Ward clerk (locally defined)", "organisation": "RRK"})},
		{"unknown extra fields", func(m map[string]any) {
			m["x_local_category"] = "falls"
			m["x_nested"] = map[string]any{"a": []any{1, 2.5, nil, true}}
		}},
	}
	for _, c := range good {
		t.Run("202/"+c.name, func(t *testing.T) {
			inc := incident(uid("OK"))
			c.m(inc)
			checkAccepted(t, e.gw.postIncident(t, inc))
		})
	}
	t.Run("400/every problem is reported", func(t *testing.T) {
		inc := incident(uid("MANY"))
		inc["source"] = "Bad Source"
		inc["event_type"] = "nope"
		inc["occurred_at"] = "soon"
		delete(inc, "description")
		fields := check400(t, e.gw.postIncident(t, inc))
		for _, f := range []string{"source", "event_type", "occurred_at", "description"} {
			if !contains(fields, f) {
				t.Errorf("problems %q do not include %s", fields, f)
			}
		}
	})
}

func utf8Len(s string) int { return len([]rune(s)) }

// pad extends s with dots to n characters.
func pad(s string, n int) string { return s + strings.Repeat(".", n-len(s)) }

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// §2: malformed JSON and wrong types get 400 with problems.
func TestIngestMalformedAndWrongTypes(t *testing.T) {
	e := shared(t)
	malformed := map[string]string{
		"truncated":          `{"source":"datix","local_id":"X`,
		"not JSON":           `source=datix&local_id=1`,
		"empty body":         ``,
		"null":               `null`,
		"an array":           `[{"source":"datix"}]`,
		"a string":           `"incident"`,
		"trailing comma":     `{"source":"datix",}`,
		"two objects":        `{"source":"datix"}{"source":"datix"}`,
		"single quotes":      `{'source':'datix'}`,
		"invalid UTF-8":      "{\"source\":\"datix\",\"local_id\":\"\xff\xfe\",\"event_type\":\"incident\",\"occurred_at\":\"2025-03-14\",\"description\":\"x\"}",
		"deeply nested":      strings.Repeat("[", 100000) + strings.Repeat("]", 100000),
		"deeply nested body": `{"source":"datix","local_id":"DEEP","event_type":"incident","occurred_at":"2025-03-14","description":"x","x":` + strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000) + "}",
		"huge number":        `{"source":"datix","local_id":"HUGE","revision":1e99999,"event_type":"incident","occurred_at":"2025-03-14","description":"x"}`,
	}
	for name, body := range malformed {
		t.Run(name, func(t *testing.T) {
			check400(t, e.gw.post(t, []byte(body)))
		})
	}
	wrong := []struct {
		name, field string
		v           any
		path        []string
	}{
		{"source a number", "source", 7, []string{"source"}},
		{"local_id a number", "local_id", 12345, []string{"local_id"}},
		{"local_id an object", "local_id", map[string]any{"id": "1"}, []string{"local_id"}},
		{"event_type an array", "event_type", []any{"incident"}, []string{"event_type"}},
		{"occurred_at a number", "occurred_at", 20250314, []string{"occurred_at"}},
		{"description a number", "description", 5, []string{"description"}},
		{"immediate_actions a number", "immediate_actions", 5, []string{"immediate_actions"}},
		{"patients an object", "patients", map[string]any{}, []string{"patients"}},
		{"patient a number", "patients", []any{map[string]any{}, 5}, []string{"patients[1]"}},
		{"nhs_number a number", "patients", []any{map[string]any{}, map[string]any{"nhs_number": 9434765919}}, []string{"patients[1].nhs_number"}},
		{"date_of_birth a number", "patients", []any{map[string]any{}, map[string]any{"date_of_birth": 19751231}}, []string{"patients[1].date_of_birth"}},
		{"location a string", "location", "RRK", []string{"location"}},
		{"location.organisation a number", "location", map[string]any{"organisation": 5}, []string{"location.organisation"}},
		{"reporter.role a number", "reporter", map[string]any{"role": 5}, []string{"reporter.role"}},
		{"reporter.organisation a list", "reporter", map[string]any{"organisation": []any{"RRK"}}, []string{"reporter.organisation"}},
	}
	for _, c := range wrong {
		t.Run("wrong type/"+c.name, func(t *testing.T) {
			inc := incident(uid("TYPE"))
			inc[c.field] = c.v
			r := e.gw.postIncident(t, inc)
			fields := check400(t, r)
			for _, f := range c.path {
				if !contains(fields, f) {
					t.Errorf("no problem names %q; problems name %q", f, fields)
				}
			}
		})
	}
	e.gw.healthy(t)
}

// §2: 413 over 1 MiB by default; a body at the limit is taken.
func TestIngestBodyLimit(t *testing.T) {
	e := shared(t)
	sized := func(id string, n int) []byte {
		inc := incident(id)
		inc["x_padding"] = ""
		b := mustJSON(t, inc)
		inc["x_padding"] = strings.Repeat("p", n-len(b))
		b = mustJSON(t, inc)
		if len(b) != n {
			t.Fatalf("built %d bytes, want %d", len(b), n)
		}
		return b
	}
	t.Run("1 MiB + 1 byte gets 413", func(t *testing.T) {
		id := uid("BIG")
		r := e.gw.post(t, sized(id, 1<<20+1))
		if r.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("want 413, got %s", r)
		}
		if _, ok := e.gw.getRecord(t, "datix", id); ok {
			t.Errorf("a refused body has a record")
		}
	})
	t.Run("8 MiB chunked gets 413", func(t *testing.T) {
		body := io.MultiReader(strings.NewReader(`{"source":"datix","local_id":"CHUNK","x":"`), io.LimitReader(zeros{}, 8<<20), strings.NewReader(`"}`))
		r := doReq(t, http.MethodPost, e.gw.url("/api/v1/incidents"), body, map[string]string{"Content-Type": "application/json"})
		if r.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("want 413, got %s", r)
		}
	})
	for _, n := range []int{1_000_000, 1<<20 - 100, 1 << 20} {
		t.Run(fmt.Sprintf("%d bytes (not over 1 MiB) is accepted", n), func(t *testing.T) {
			id := uid("EDGE")
			r := e.gw.post(t, sized(id, n))
			if r.status != http.StatusAccepted {
				t.Errorf("a %d-byte body is within the 1 MiB limit; want 202, got %s", n, r)
			}
		})
	}
	e.gw.healthy(t)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'z'
	}
	return len(p), nil
}

// §2: 415 for a content type other than application/json.
func TestIngestContentType(t *testing.T) {
	e := shared(t)
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data; boundary=x", "text/json"} {
		t.Run("415/"+ct, func(t *testing.T) {
			id := uid("CT")
			h := map[string]string{}
			if ct != "" {
				h["Content-Type"] = ct
			}
			r := doReq(t, http.MethodPost, e.gw.url("/api/v1/incidents"), bytes.NewReader(mustJSON(t, incident(id))), h)
			if r.status != http.StatusUnsupportedMediaType {
				t.Errorf("Content-Type %q: want 415, got %s", ct, r)
			}
			if _, ok := e.gw.getRecord(t, "datix", id); ok {
				t.Errorf("a 415 incident has a record")
			}
		})
	}
	for _, ct := range []string{"application/json; charset=utf-8", "application/json;charset=UTF-8", "Application/JSON"} {
		t.Run("202/"+ct, func(t *testing.T) {
			r := doReq(t, http.MethodPost, e.gw.url("/api/v1/incidents"), bytes.NewReader(mustJSON(t, incident(uid("CT")))), map[string]string{"Content-Type": ct})
			checkAccepted(t, r)
		})
	}
}

// §2: GET for an incident never accepted is 404.
func TestIngestRecordNotFound(t *testing.T) {
	e := shared(t)
	for _, p := range [][2]string{{"datix", uid("NEVER")}, {"nosuchsource", "1"}, {"datix", "../../etc/passwd"}} {
		if _, ok := e.gw.getRecord(t, p[0], p[1]); ok {
			t.Errorf("GET %s/%s: want 404", p[0], p[1])
		}
	}
	// Refused with 400: never accepted.
	inc := incident(uid("REFUSED"))
	inc["event_type"] = "nope"
	check400(t, e.gw.postIncident(t, inc))
	if _, ok := e.gw.getRecord(t, "datix", inc["local_id"].(string)); ok {
		t.Errorf("an incident refused with 400 has a record")
	}
}

// §2: each event type with only the core fields. Incidents and outcomes must be delivered;
// risks and good care may need more than the core fields, and then must be quarantined with the
// reason. The state each ends in is logged.
func TestIngestEventTypesCoreFieldsOnly(t *testing.T) {
	e := shared(t)
	for _, et := range []string{"incident", "risk", "outcome", "good_care"} {
		t.Run(et, func(t *testing.T) {
			id := uid("ET-" + et)
			inc := map[string]any{
				"source": "datix", "local_id": id, "event_type": et,
				"description":       "Core fields only, event type " + et + " (" + id + ").",
				"immediate_actions": "None needed",
				"location":          map[string]any{"organisation": "RRK"},
				"reporter":          map[string]any{"role": "Nurse or midwife", "organisation": "RRK"},
			}
			if et == "incident" || et == "outcome" {
				inc["occurred_at"] = "2025-03-14"
			}
			if a := e.gw.mustAccept(t, inc); *a.Duplicate {
				t.Fatalf("duplicate true on first send")
			}
			rec := e.gw.waitSettled(t, "datix", id)
			t.Logf("event_type %s with core fields only ends %s (last_error %q)", et, rec.State, rec.LastError)
			checkRecordShape(t, e.gw, "datix", id)
			switch rec.State {
			case "delivered":
				if _, ok := e.sim.eventByNationalID(t, rec.NationalID); !ok {
					t.Errorf("delivered, but national id %s is not at the simulator", rec.NationalID)
				}
			case "quarantined":
				if et == "incident" || et == "outcome" {
					t.Errorf("a core-only %s was quarantined: %s", et, rec.LastError)
				}
				if strings.TrimSpace(rec.LastError) == "" {
					t.Errorf("quarantined without a reason in last_error")
				}
			default:
				t.Errorf("state %s (last_error %q): want delivered, or quarantined with a reason", rec.State, rec.LastError)
			}
		})
	}
}

// §6: identifiers never reach the national service; NHS numbers in free text are redacted.
func TestIngestIdentifiersNeverLeave(t *testing.T) {
	e := shared(t)
	id := uid("PII")
	inc := fullIncident(id)
	inc["description"] = fmt.Sprintf("Patient %s (also written %s %s %s and %s-%s-%s) fell (%s).",
		nhsText, nhsText[:3], nhsText[3:6], nhsText[6:], nhsText[:3], nhsText[3:6], nhsText[6:], id)
	inc["immediate_actions"] = "Checked wristband " + nhsText + "; family told."
	inc["patients"] = []any{
		map[string]any{"nhs_number": nhsFull, "local_patient_id": lpidFull, "date_of_birth": dobFull, "sex": "female", "physical_harm": "low"},
		map[string]any{"nhs_number": nhsEnr, "date_of_birth": dobEnr, "sex": "male", "physical_harm": "none"},
	}
	redactions := func() (float64, bool) {
		var fams []*dto.MetricFamily
		for name, f := range scrape(t, e.gw) {
			if strings.Contains(name, "redact") {
				fams = append(fams, f)
			}
		}
		return sumOf(fams), len(fams) > 0
	}
	before, _ := redactions()
	e.gw.mustAccept(t, inc)
	rec := e.gw.waitState(t, "datix", id, "delivered")
	ev, ok := e.sim.eventByNationalID(t, rec.NationalID)
	if !ok {
		t.Fatalf("not at the simulator")
	}
	// "what is found is redacted and counted"
	if after, found := redactions(); !found || after < before+1 {
		t.Errorf("no psgw_ redaction metric counted the NHS numbers redacted from free text (found %v, before %v, after %v)", found, before, after)
	}
	raw := string(ev.raw)
	for _, s := range []string{nhsFull, nhsEnr, nhsText, nhsText[:3] + " " + nhsText[3:6] + " " + nhsText[6:], nhsText[:3] + "-" + nhsText[3:6] + "-" + nhsText[6:], lpidFull, dobFull, dobEnr} {
		if strings.Contains(raw, s) {
			t.Errorf("%q reached the national service", s)
		}
	}
	assertNoIdentifiers(t, "all events at the simulator", string(e.sim.eventsRaw(t)))
}

// Hostile inputs the contract does not list: the gateway answers sensibly and stays up.
func TestIngestHostileInputs(t *testing.T) {
	e := shared(t)
	t.Run("duplicate JSON keys", func(t *testing.T) {
		id := uid("DUPKEY")
		body := fmt.Sprintf(`{"source":"datix","source":"evil","local_id":%q,"event_type":"incident","event_type":"nonsense","occurred_at":"2025-03-14","description":"x"}`, id)
		r := e.gw.post(t, []byte(body))
		switch r.status {
		case http.StatusBadRequest:
			check400(t, r)
		case http.StatusAccepted:
			// Accepted: it must have been read one consistent way (JSON's last-wins would make the
			// event_type "nonsense", which is invalid, so 202 means first-wins or something odd).
			a := checkAccepted(t, r)
			_, okDatix := e.gw.getRecord(t, "datix", id)
			_, okEvil := e.gw.getRecord(t, "evil", id)
			if okDatix == okEvil {
				t.Errorf("202 %s, but the incident is under datix: %v, evil: %v", a.ID, okDatix, okEvil)
			}
			t.Logf("duplicate keys accepted (datix %v, evil %v)", okDatix, okEvil)
		default:
			t.Errorf("want 400 or 202, got %s", r)
		}
	})
	t.Run("NUL and control characters in text", func(t *testing.T) {
		id := uid("NUL")
		inc := incident(id)
		inc["description"] = "before\x00after\x01\x1b[31mred\x1b[0m\u202eevil\ufeff (" + id + ")"
		inc["immediate_actions"] = "\x00"
		r := e.gw.postIncident(t, inc)
		if r.status != http.StatusAccepted && r.status != http.StatusBadRequest {
			t.Fatalf("want 202 or 400, got %s", r)
		}
		if r.status == http.StatusAccepted {
			e.gw.waitSettled(t, "datix", id)
		}
	})
	t.Run("NUL in local_id and source", func(t *testing.T) {
		inc := incident("a\x00b")
		r := e.gw.postIncident(t, inc)
		if r.status >= 500 {
			t.Fatalf("got %s", r)
		}
		inc = incident(uid("S"))
		inc["source"] = "datix\x00"
		check400(t, e.gw.postIncident(t, inc))
	})
	t.Run("unicode everywhere", func(t *testing.T) {
		id := "事件-ü-😀-" + uid("U")
		inc := incident(id)
		inc["description"] = "Ærøskøbing 病院 ‮ 🏥 (" + id + ")"
		inc["reporter"] = map[string]any{"role": "Ärztin", "organisation": "RRK"}
		e.gw.mustAccept(t, inc)
		rec := e.gw.waitSettled(t, "datix", id)
		if rec.LocalID != id {
			t.Errorf("record local_id %q, want %q", rec.LocalID, id)
		}
	})
	t.Run("local_id with slash, query and percent characters", func(t *testing.T) {
		id := "a/b c?d#e%f&g=" + uid("P")
		e.gw.mustAccept(t, incident(id))
		rec, ok := e.gw.getRecord(t, "datix", id)
		if !ok || rec.LocalID != id {
			t.Errorf("GET with the local id path-escaped: found %v, local_id %q", ok, rec.LocalID)
		}
	})
	t.Run("very long local_id", func(t *testing.T) {
		inc := incident("")
		inc["local_id"] = strings.Repeat("x", 200_000)
		inc["description"] = "A very long local id."
		if f := check400(t, e.gw.postIncident(t, inc)); !contains(f, "local_id") {
			t.Errorf("problems name %q, want local_id", f)
		}
	})
	t.Run("huge numbers", func(t *testing.T) {
		for _, n := range []string{"1e308", "-1e308", "123456789012345678901234567890", "9223372036854775808", "18446744073709551616", "1e-400"} {
			body := fmt.Sprintf(`{"source":"datix","local_id":%q,"revision":%s,"event_type":"incident","occurred_at":"2025-03-14","description":"x"}`, uid("N"), n)
			r := e.gw.post(t, []byte(body))
			if r.status != http.StatusBadRequest && r.status != http.StatusAccepted {
				t.Errorf("revision %s: want 400 or 202, got %s", n, r)
			}
			if r.status == http.StatusBadRequest {
				if f := check400(t, r); !contains(f, "revision") {
					t.Errorf("revision %s: problems %q do not name revision", n, f)
				}
			}
		}
		body := fmt.Sprintf(`{"source":"datix","local_id":%q,"event_type":"incident","occurred_at":"2025-03-14","description":"x","x_big":1e999999999}`, uid("N"))
		if r := e.gw.post(t, []byte(body)); r.status >= 500 {
			t.Errorf("huge number in an extra field: %s", r)
		}
	})
	t.Run("many patients with many fields", func(t *testing.T) {
		ps := make([]any, 100)
		for i := range ps {
			p := map[string]any{"physical_harm": "none"}
			for j := 0; j < 50; j++ {
				p[fmt.Sprintf("x_%d", j)] = strings.Repeat("v", 100)
			}
			ps[i] = p
		}
		inc := incident(uid("MANYP"))
		inc["patients"] = ps
		if r := e.gw.postIncident(t, inc); r.status != http.StatusAccepted {
			t.Errorf("100 patients with extra fields, under 1 MiB: want 202, got %s", r)
		}
	})
	t.Run("wrong methods", func(t *testing.T) {
		for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
			r := doReq(t, m, e.gw.url("/api/v1/incidents"), bytes.NewReader(mustJSON(t, incident(uid("M")))), map[string]string{"Content-Type": "application/json"})
			if r.status != http.StatusMethodNotAllowed && r.status != http.StatusNotFound {
				t.Errorf("%s /api/v1/incidents: want 405 (or 404), got %s", m, r)
			}
		}
		id := uid("M")
		e.gw.mustAccept(t, incident(id))
		for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
			r := doReq(t, m, e.gw.recordURL("datix", id), strings.NewReader("{}"), map[string]string{"Content-Type": "application/json"})
			if r.status < 400 || r.status >= 500 {
				t.Errorf("%s on a record: want 4xx, got %s", m, r)
			}
		}
		if _, ok := e.gw.getRecord(t, "datix", id); !ok {
			t.Errorf("the record went away after PUT/DELETE/PATCH")
		}
	})
	t.Run("slow client is not fatal", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			b := mustJSON(t, incident(uid("SLOW")))
			for i := range b {
				_, _ = pw.Write(b[i : i+1])
				if i%100 == 0 {
					time.Sleep(10 * time.Millisecond) // a slow client is the point: pacing, not a wait
				}
			}
			_ = pw.Close()
		}()
		r := doReq(t, http.MethodPost, e.gw.url("/api/v1/incidents"), pr, map[string]string{"Content-Type": "application/json"})
		checkAccepted(t, r)
	})
	e.gw.healthy(t)
}

// §2: concurrent identical posts: exactly one is new.
func TestIngestConcurrentIdenticalPosts(t *testing.T) {
	e := shared(t)
	for _, withRev := range []bool{true, false} {
		t.Run(fmt.Sprintf("revision %v", withRev), func(t *testing.T) {
			id := uid("CONC")
			inc := incident(id)
			if withRev {
				inc["revision"] = 3
			}
			body := mustJSON(t, inc)
			const n = 16
			var wg sync.WaitGroup
			var mu sync.Mutex
			fresh, dups := 0, 0
			var errs []string
			start := make(chan struct{})
			for i := 0; i < n; i++ {
				wg.Go(func() {
					<-start
					resp, err := client.Post(e.gw.url("/api/v1/incidents"), "application/json", bytes.NewReader(body))
					if err != nil {
						mu.Lock()
						errs = append(errs, err.Error())
						mu.Unlock()
						return
					}
					defer resp.Body.Close()
					var a accepted
					b, _ := io.ReadAll(resp.Body)
					_ = json.Unmarshal(b, &a)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case resp.StatusCode != 202 || a.Duplicate == nil:
						errs = append(errs, fmt.Sprintf("%d %s", resp.StatusCode, b))
					case *a.Duplicate:
						dups++
					default:
						fresh++
					}
				})
			}
			close(start)
			wg.Wait()
			if len(errs) > 0 {
				t.Errorf("posts not answered 202: %q", errs)
			}
			if fresh != 1 {
				t.Errorf("%d of %d concurrent identical posts answered duplicate: false, want exactly 1 (%d duplicates)", fresh, n, dups)
			}
			e.gw.waitState(t, "datix", id, "delivered")
			waitQuiet(t)
			if c := e.sim.eventsContaining(t, "("+id+")"); c != 1 {
				t.Errorf("%d national events, want 1", c)
			}
		})
	}
}
