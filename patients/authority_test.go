package patients_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
	"github.com/psgw/psgw/patients"
	"github.com/psgw/psgw/test/jstest"
)

// adtPID3 builds an ADT message whose PID-3 (and, for A40, MRG-1) is given as sent: CX
// repetitions such as "H100^^^RGT^MR~9434765919^^^NHS^NH".
func adtPID3(event, control string, at time.Time, pid3, dob, sex, mrg1 string) []byte {
	const mark = "PID3MARK"
	p := mllptest.Patient{Local: mark, DOB: dob, Sex: sex}
	var prior *mllptest.Patient
	if mrg1 != "" {
		prior = &mllptest.Patient{Local: "MRG1MARK"}
	}
	msg := string(mllptest.ADTMerge(event, control, at, p, prior))
	msg = strings.Replace(msg, mark+"^^^RGT^MR", pid3, 1)
	msg = strings.Replace(msg, "MRG1MARK^^^RGT^MR", mrg1, 1)
	return []byte(msg)
}

func TestLocalIDsOfTwoAuthoritiesAreTwoPatients(t *testing.T) {
	r := newRig(t, jstest.Open(t, t.TempDir()), 10*time.Second)
	r.start()
	// Two trusts merged: each issued hospital number H100, to two different people.
	r.adt(adtPID3("A04", "M1", t0, jane.NHS+"^^^NHS^NH~H100^^^RGT^MR", "19650412", "F", ""))
	r.adt(adtPID3("A04", "M2", t0, bob.NHS+"^^^NHS^NH~H100^^^RXX^MR", "19900101", "M", ""))
	// The same number used by a clinic and by the MRN for one person with the same details.
	r.adt(adtPID3("A04", "M3", t0, "C300^^^RGT^MR", "20011231", "M", ""))
	r.adt(adtPID3("A04", "M4", t0.Add(time.Hour), "C300^^^CLINIC^PI", "20011231", "M", ""))
	// One person known by the same number to two authorities, in one PID-3.
	r.adt(adtPID3("A04", "M5", t0, "D400^^^RGT^MR~D400^^^RXX^MR", "19771010", "F", ""))
	seq := r.incidentSeq()
	ctx := context.Background()
	at := t0.Add(2 * time.Hour)

	r.enrich(incident("2025-03-02", fhir.Patient{NHSNumber: jane.NHS}), seq) // waits until applied
	for _, tc := range []struct {
		name, nhs, local string
		dob, sex         string
	}{
		{"first trust's patient by NHS number", jane.NHS, "", "1965-04-12", "female"},
		{"second trust's patient by NHS number", bob.NHS, "", "1990-01-01", "male"},
		{"one person, same number at a clinic", "", "C300", "2001-12-31", "male"},
		{"one person, same number at two authorities", "", "D400", "1977-10-10", "female"},
		{"NHS number wins over an ambiguous local id", jane.NHS, "H100", "1965-04-12", "female"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ok, err := r.stage.Lookup(ctx, tc.nhs, tc.local, at)
			if err != nil || !ok || d.DateOfBirth != tc.dob || d.Sex != tc.sex {
				t.Errorf("got %+v found=%v err=%v, want dob %s sex %s", d, ok, err, tc.dob, tc.sex)
			}
		})
	}

	t.Run("ambiguous local id is refused", func(t *testing.T) {
		d, ok, err := r.stage.Lookup(ctx, "", "H100", at)
		if ok || !errors.Is(err, patients.ErrAmbiguous) {
			t.Errorf("Lookup: got %+v found=%v err=%v, want not found and ErrAmbiguous", d, ok, err)
		}
		before := r.stage.Status().AmbiguousLookups
		in := incident("2025-03-02", fhir.Patient{LocalPatientID: "H100", PhysicalHarm: "low"})
		r.enrich(in, seq)
		if want := (fhir.Patient{LocalPatientID: "H100", PhysicalHarm: "low"}); in.Patients[0] != want {
			t.Errorf("Enrich: got %+v, want nothing filled in", in.Patients[0])
		}
		if got := r.stage.Status().AmbiguousLookups; got != before+1 {
			t.Errorf("status ambiguous_lookups: got %d, want %d", got, before+1)
		}
	})
}

func TestA40WithoutAuthorityInMRG1(t *testing.T) {
	r := newRig(t, jstest.Open(t, t.TempDir()), 10*time.Second)
	r.start()
	r.adt(adtPID3("A04", "M1", t0, "E500^^^RGT^MR", "19500101", "M", ""))
	r.adt(adtPID3("A04", "M2", t0, "F600^^^RGT^MR", "19650412", "F", ""))
	// MRG-1 names the prior record by number only; it is the only E500 the store knows.
	r.adt(adtPID3("A40", "M3", t0.Add(time.Hour), "F600^^^RGT^MR", "", "", "E500^^^^MR"))
	r.enrich(incident("2025-03-02", fhir.Patient{LocalPatientID: "F600"}), r.incidentSeq())
	d, ok, err := r.stage.Lookup(context.Background(), "", "E500", t0.Add(2*time.Hour))
	if err != nil || !ok || d.DateOfBirth != "1965-04-12" || d.Sex != "female" {
		t.Errorf("by the prior number: got %+v found=%v err=%v, want the survivor's demographics", d, ok, err)
	}
}
