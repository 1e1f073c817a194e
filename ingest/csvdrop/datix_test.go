package csvdrop_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/ingest/csvdrop"
)

// TestListingExportWords: a listing export as an incident system writes it (UK dates, the
// time in a column of its own, the event type, harm and sex in words) reads through the
// adapter's date formats and time columns and the source's code maps; a row whose word the
// map lacks is stored as the incident it is, under its own id and with its file and line, and
// no reason, so that a fixed map and a replay deliver it; a row whose date cannot be read
// carries that reason under its own id; a ragged row keeps its id.
func TestListingExportWords(t *testing.T) {
	dir := t.TempDir()
	store := adaptertest.NewStore()
	cols := map[string]string{"local_id": "ID", "event_type": "Type", "occurred_at": "Incident date", "description": "Description",
		"patient.sex": "Sex", "patient.physical_harm": "Harm"}
	codes := fhir.NewCodeMaps(5, fhir.SourceCodeMaps{"datix": {
		"event_type":             {"*": {"Incident": "incident", "Near miss": "incident"}},
		"patients.physical_harm": {"*": {"No harm": "none", "Low harm": "low", "Death": "fatal"}},
		"patients.sex":           {"*": {"Male": "male", "Female": "female"}},
	}})
	a := csvdrop.New(csvdrop.Config{Dir: dir, Source: "datix", Columns: cols, PollInterval: 5 * time.Millisecond,
		DateFormats: []string{"DD/MM/YYYY"}, TimeColumns: map[string]string{"occurred_at": "Time"}},
		ingest.Deps{Name: "csvdrop", Publisher: store, State: adaptertest.NewState(), Logger: zerolog.Nop(), Codes: codes,
			Now: func() time.Time { return time.Date(2025, 8, 1, 12, 0, 0, 0, time.UTC) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	writeFile(t, dir, "listing.csv", []byte("ID,Type,Incident date,Time,Description,Sex,Harm\r\n"+
		"W1001,Near miss,14/03/2025,09:30,Wrong patient wristband,Male,No harm\r\n"+ // line 2
		"W1002,Incident,03/07/2025,23:15,Fall in bathroom,Female,Death\r\n"+ // line 3: BST
		"W1003,Incident,04/07/2025,,Delayed scan,Female,No harm - impact prevented\r\n"+ // line 4: a word the map lacks
		"W1004,Incident,31/02/2025,10:00,Bad date,Male,Low harm\r\n"+ // line 5: no such date
		"W1005,Incident,05/07/2025,11:00,Too many,cells,Male,Low harm\r\n"+ // line 6: ragged
		"Smith,Incident\r\n")) // line 7: a continuation line, shaped like no id
	where := waitGone(t, dir, "listing.csv")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if where != "processed" {
		t.Fatalf("file went to %s", where)
	}
	recs := map[string]ingest.Record{}
	for _, r := range store.Records() {
		recs[r.LocalID] = r
	}
	type want struct {
		reason, origin string
		incident       map[string]any // fields of the incident JSON, when it reads clean
	}
	for id, w := range map[string]want{
		"W1001":             {origin: "file listing.csv line 2", incident: map[string]any{"occurred_at": "2025-03-14T09:30:00Z", "event_type": "incident", "sex": "male", "physical_harm": "none"}},
		"W1002":             {origin: "file listing.csv line 3", incident: map[string]any{"occurred_at": "2025-07-03T23:15:00+01:00", "physical_harm": "fatal"}},
		"W1003":             {origin: "file listing.csv line 4"},
		"W1004":             {reason: `file listing.csv line 5: occurred_at: column "Incident date" is not a date in the form DD/MM/YYYY or YYYY-MM-DD (csvdrop.date_formats)`},
		"W1005":             {reason: "file listing.csv line 6: has 8 fields, the header has 7"},
		"listing.csv#line7": {reason: "file listing.csv line 7: has 2 fields"},
	} {
		r, ok := recs[id]
		if !ok {
			t.Errorf("no record under %s; have %v", id, keys(recs))
			continue
		}
		if r.Reason != w.reason && !(w.reason != "" && strings.HasPrefix(r.Reason, w.reason)) {
			t.Errorf("%s: reason %q, want %q", id, r.Reason, w.reason)
		}
		if w.origin != "" && r.Origin != w.origin {
			t.Errorf("%s: origin %q, want %q", id, r.Origin, w.origin)
		}
		if w.incident == nil {
			continue
		}
		in, problems := fhir.ParseIncident(r.Data, fhir.ParseOptions{Now: time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC), Codes: codes})
		if len(problems) > 0 {
			t.Errorf("%s: %v", id, problems)
			continue
		}
		got := map[string]any{"occurred_at": in.OccurredAt, "event_type": in.EventType, "sex": in.Patients[0].Sex, "physical_harm": in.Patients[0].PhysicalHarm}
		for k, v := range w.incident {
			if got[k] != v {
				t.Errorf("%s: %s %v, want %v", id, k, got[k], v)
			}
		}
	}
	// W1003 is the incident, its unmapped word as written: a code map entry maps it.
	var raw map[string]any
	if err := json.Unmarshal(recs["W1003"].Data, &raw); err != nil {
		t.Fatal(err)
	}
	if _, problems := fhir.ParseIncident(recs["W1003"].Data, fhir.ParseOptions{Now: time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC), Codes: fhir.NewCodeMaps(5, fhir.SourceCodeMaps{"datix": {
		"event_type":             {"*": {"Incident": "incident"}},
		"patients.physical_harm": {"*": {"No harm - impact prevented": "none"}},
		"patients.sex":           {"*": {"Female": "female"}},
	}})}); len(problems) > 0 {
		t.Errorf("W1003 with the word mapped: %v", problems)
	}
}

func keys(m map[string]ingest.Record) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
