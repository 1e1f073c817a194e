package patients_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
	"github.com/psgw/psgw/patients"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/test/jstest"
)

type rig struct {
	t      *testing.T
	q      *queue.Queue
	stage  *patients.Stage
	cancel context.CancelFunc
	done   chan error
	n      int
}

func newRig(t *testing.T, q *queue.Queue, wait time.Duration) *rig {
	r := &rig{t: t, q: q}
	r.stage = patients.New(q, patients.Options{Source: "epr", EnrichWait: wait, Logger: zerolog.Nop()})
	return r
}

func (r *rig) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.stage.Run(ctx) }()
	r.t.Cleanup(r.stop)
}

func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	if err := <-r.done; err != nil {
		r.t.Errorf("Run: %v", err)
	}
}

// publish stores a raw record as the gateway's publisher does and returns its sequence.
func (r *rig) publish(kind string, data []byte) uint64 {
	r.t.Helper()
	r.n++
	res, err := r.q.Publish(context.Background(), queue.RawSubject(kind, "epr", fmt.Sprintf("k%d", r.n)), fmt.Sprintf("id-%d", r.n), data, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	return res.Seq
}

func (r *rig) adt(msg []byte) uint64 { return r.publish(ingest.KindADT, msg) }

// incidentSeq stores a stand-in incident record, to get the raw sequence an incident posted
// now would have.
func (r *rig) incidentSeq() uint64 { return r.publish(ingest.KindIncident, []byte(`{}`)) }

func (r *rig) enrich(in *fhir.Incident, seq uint64) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.stage.Enrich(ctx, in, seq); err != nil {
		r.t.Fatal(err)
	}
}

var (
	t0   = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	jane = mllptest.Patient{NHS: "9434765919", Local: "RGT1234567", DOB: "19650412", Sex: "F", Ethnicity: "A", Location: "WARD7"}
	bob  = mllptest.Patient{NHS: "4010232137", Local: "RGT7777777", DOB: "19500101", Sex: "M", Ethnicity: "C"}
)

func incident(occurred string, p fhir.Patient) *fhir.Incident {
	return &fhir.Incident{Source: "datix", LocalID: "I1", EventType: "incident", OccurredAt: occurred, Patients: []fhir.Patient{p}}
}

func TestEnrichSeesTheADTStoredJustBefore(t *testing.T) {
	r := newRig(t, jstest.Open(t, t.TempDir()), 10*time.Second)
	r.start()
	for i := range 20 {
		// Many updates, the last of which the incident must see without any polling.
		p := jane
		if i == 19 {
			p.Sex = "U"
		}
		r.adt(mllptest.ADT("A08", fmt.Sprint("M", i), t0.Add(time.Duration(i)*time.Minute), p))
	}
	in := incident("2025-03-02T10:00:00Z", fhir.Patient{NHSNumber: jane.NHS})
	r.enrich(in, r.incidentSeq())
	want := fhir.Patient{NHSNumber: jane.NHS, DateOfBirth: "1965-04-12", Sex: "unknown", Ethnicity: "A"}
	if diff := cmp.Diff(want, in.Patients[0]); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestEnrichByLocalIDAndNeverOverwrites(t *testing.T) {
	r := newRig(t, jstest.Open(t, t.TempDir()), 10*time.Second)
	r.start()
	r.adt(mllptest.ADT("A04", "M1", t0, mllptest.Patient{Local: "RGT5555555", DOB: "20011231", Sex: "M"}))
	in := &fhir.Incident{OccurredAt: "2025-03-05", Patients: []fhir.Patient{
		{LocalPatientID: "RGT5555555", Sex: "female"},
		{LocalPatientID: "UNKNOWN1"},
		{}, // no identifier: left alone
	}}
	r.enrich(in, r.incidentSeq())
	want := []fhir.Patient{{LocalPatientID: "RGT5555555", DateOfBirth: "2001-12-31", Sex: "female"}, {LocalPatientID: "UNKNOWN1"}, {}}
	if diff := cmp.Diff(want, in.Patients); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestA40MergesTwoPatients(t *testing.T) {
	r := newRig(t, jstest.Open(t, t.TempDir()), 10*time.Second)
	r.start()
	r.adt(mllptest.ADT("A01", "M1", t0, jane))
	r.adt(mllptest.ADT("A01", "M2", t0, bob))
	// Bob's record turns out to be a duplicate registration of Jane: merge it into hers.
	survivor := mllptest.Patient{NHS: jane.NHS, Local: jane.Local}
	r.adt(mllptest.ADTMerge("A40", "M3", t0.Add(time.Hour), survivor, &bob))
	seq := r.incidentSeq()
	for _, tc := range []struct {
		name string
		p    fhir.Patient
	}{
		{"by the prior NHS number", fhir.Patient{NHSNumber: bob.NHS}},
		{"by the prior local id", fhir.Patient{LocalPatientID: bob.Local}},
		{"by the surviving NHS number", fhir.Patient{NHSNumber: jane.NHS}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := incident("2025-03-02T10:00:00Z", tc.p)
			r.enrich(in, seq)
			got := in.Patients[0]
			if got.DateOfBirth != "1965-04-12" || got.Sex != "female" || got.Ethnicity != "A" {
				t.Errorf("got %+v, want the surviving patient's demographics", got)
			}
		})
	}
	// A later update to the survivor is seen through the prior id too.
	p := jane
	p.Sex = "O"
	r.adt(mllptest.ADT("A08", "M4", t0.Add(2*time.Hour), p))
	in := incident("2025-03-02T10:00:00Z", fhir.Patient{NHSNumber: bob.NHS})
	r.enrich(in, r.incidentSeq())
	if in.Patients[0].Sex != "other" {
		t.Errorf("after an update to the survivor, by the prior id: sex %q, want other", in.Patients[0].Sex)
	}
}

// TestFactsAboutThePersonAsLastCorrected: sex, date of birth and ethnicity describe the
// person, so the latest value applies to incidents of any date (a correction, not a change
// that happened later); location describes the stay and stays as at the incident.
func TestFactsAboutThePersonAsLastCorrected(t *testing.T) {
	r := newRig(t, jstest.Open(t, t.TempDir()), 10*time.Second)
	r.start()
	r.adt(mllptest.ADT("A01", "M1", t0, jane))
	p := jane
	p.Sex, p.Location = "O", "WARD9"
	r.adt(mllptest.ADT("A08", "M2", t0.Add(48*time.Hour), p))
	seq := r.incidentSeq()
	for _, occurred := range []string{
		"2025-03-02T10:00:00Z", // between the two messages
		"2025-03-03T09:00:00Z", // after both
		"2025-02-01",           // before the store knew the patient
	} {
		in := incident(occurred, fhir.Patient{NHSNumber: jane.NHS})
		r.enrich(in, seq)
		if in.Patients[0].Sex != "other" {
			t.Errorf("occurred %s: sex %q, want the corrected other", occurred, in.Patients[0].Sex)
		}
	}
	for at, want := range map[time.Time]string{t0.Add(time.Hour): "WARD7", t0.Add(49 * time.Hour): "WARD9", t0.Add(-time.Hour): ""} {
		d, ok, err := r.stage.Lookup(context.Background(), jane.NHS, "", at)
		if err != nil || !ok || d.Location != want {
			t.Errorf("Lookup as at %s: got %+v %v %v, want location %q", at, d, ok, err, want)
		}
	}
}

func TestEnrichGivesUpWaitingAndGoesOn(t *testing.T) {
	r := newRig(t, jstest.Open(t, t.TempDir()), 300*time.Millisecond)
	// DownWait counts from New, so the default second could pass while the ADT is stored on
	// a loaded machine, and Enrich would not wait at all.
	r.stage = patients.New(r.q, patients.Options{Source: "epr", EnrichWait: 300 * time.Millisecond, DownWait: 10 * time.Second, Logger: zerolog.Nop()})
	// The stage is not running: the incident is still enriched as far as possible (here:
	// nothing), after the bounded wait.
	r.adt(mllptest.ADT("A01", "M1", t0, jane))
	in := incident("2025-03-02T10:00:00Z", fhir.Patient{NHSNumber: jane.NHS})
	start := time.Now()
	r.enrich(in, r.incidentSeq())
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("waited %s, want about 300ms", d)
	}
	if in.Patients[0].DateOfBirth != "" {
		t.Errorf("got %+v, want nothing filled in", in.Patients[0])
	}
}

func TestRestartKeepsProgress(t *testing.T) {
	q := jstest.Open(t, t.TempDir())
	r := newRig(t, q, 20*time.Second)
	r.start()
	r.adt(mllptest.ADT("A01", "M1", t0, jane))
	r.enrich(incident("2025-03-02T10:00:00Z", fhir.Patient{NHSNumber: jane.NHS}), r.incidentSeq())
	r.stop()
	// A new stage on the same consumer knows what was applied before and does not wait.
	r2 := newRig(t, q, 20*time.Second)
	r2.n = r.n
	r2.start()
	in := incident("2025-03-02T10:00:00Z", fhir.Patient{NHSNumber: jane.NHS})
	start := time.Now()
	r2.enrich(in, r2.incidentSeq())
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("after a restart Enrich waited %s for records applied before it", d)
	}
	if in.Patients[0].Sex != "female" {
		t.Errorf("got %+v, want the stored demographics", in.Patients[0])
	}
	if st := r2.stage.Status(); st.AppliedSeq == 0 {
		t.Errorf("status after restart: %+v, want the applied sequence", st)
	}
}
