package patients_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/fhir/privacy"
	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
	"github.com/psgw/psgw/test/jstest"
)

// TestEnrichReturnsTheStoresIdentifiers: for an incident that names a patient the EPR told
// the store about, Enrich returns the names (PID-5), local ids (PID-3, and MRG-1 after an
// A40) and dates of birth the store holds, even when the incident needs no demographics, so
// that the mapper can remove them from its free text (issue 15: "names, from the EPR").
func TestEnrichReturnsTheStoresIdentifiers(t *testing.T) {
	r := newRig(t, jstest.Open(t, t.TempDir()), 10*time.Second)
	r.start()
	named := jane
	named.Family, named.Given, named.DOB = "QUILLFEATHER", "ZEBEDIAH", "19000101"
	r.adt(mllptest.ADT("A28", "K1", t0, named))
	corrected := named
	corrected.DOB = "19650412"
	r.adt(mllptest.ADT("A31", "K2", t0.Add(time.Hour), corrected))
	merged := bob
	merged.Family, merged.Given = "MORTLOCKE", "PERPETUA"
	r.adt(mllptest.ADT("A28", "K3", t0, merged))
	r.adt(mllptest.ADTMerge("A40", "K4", t0.Add(2*time.Hour), mllptest.Patient{NHS: jane.NHS, Local: jane.Local}, &merged))

	// The incident has every demographic already: the store is read for its identifiers alone.
	in := incident("2025-03-05", fhir.Patient{NHSNumber: jane.NHS, DateOfBirth: "1965-04-12", Sex: "female", Ethnicity: "A"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	known, err := r.stage.Enrich(ctx, in, r.incidentSeq())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"QUILLFEATHER", "ZEBEDIAH", "MORTLOCKE", "PERPETUA"} {
		if !slices.Contains(known.Names, want) {
			t.Errorf("names: got %q, want %s among them", known.Names, want)
		}
	}
	for _, want := range []string{jane.Local, bob.Local} {
		if !slices.Contains(known.LocalIDs, want) {
			t.Errorf("local ids: got %q, want %s among them", known.LocalIDs, want)
		}
	}
	for _, want := range []string{"1965-04-12", "1900-01-01"} {
		if !slices.Contains(known.BirthDates, want) {
			t.Errorf("dates of birth: got %q, want %s among them", known.BirthDates, want)
		}
	}

	// Through the mapping: the free text loses them, in any case.
	in.Description = "Zebediah Quillfeather (MRN " + jane.Local + ", formerly Perpetua Mortlocke) fell."
	prep := (&fhir.Builder{Version: 5}).PrepareWith(in, fhir.PrepareOptions{Known: known})
	if len(prep.Problems) > 0 {
		t.Fatal(prep.Problems)
	}
	for _, leak := range []string{"Zebediah", "Quillfeather", "Perpetua", "Mortlocke", jane.Local} {
		if strings.Contains(string(prep.Payload), leak) {
			t.Errorf("payload still holds %q", leak)
		}
	}
	if prep.Redacted[privacy.KindName] != 4 || prep.Redacted[privacy.KindLocalID] != 1 {
		t.Errorf("redacted: got %v, want 4 names and 1 local id", prep.Redacted)
	}

	// A patient the store does not know gives nothing; no identifier, no lookup.
	for _, p := range []fhir.Patient{{NHSNumber: "9990000018"}, {}} {
		known, err := r.stage.Enrich(ctx, incident("2025-03-05", p), r.incidentSeq())
		if err != nil || len(known.Names)+len(known.LocalIDs)+len(known.BirthDates) > 0 {
			t.Errorf("unknown patient %+v: got %+v, %v; want nothing", p, known, err)
		}
	}
}
