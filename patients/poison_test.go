package patients_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
	"github.com/psgw/psgw/patients"
	"github.com/psgw/psgw/test/jstest"
	"github.com/psgw/psgw/test/wait"
)

// logBuffer is a zerolog writer that tests read back.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// identifiers are every identifier and date of birth the tests send, in every spelling.
var identifiers = []string{jane.NHS, jane.Local, bob.NHS, bob.Local, "19650412", "1965-04-12", "19500101", "1950-01-01"}

func checkNoIdentifier(t *testing.T, what, s string) {
	t.Helper()
	for _, id := range identifiers {
		if strings.Contains(s, id) {
			t.Errorf("%s holds %q, an identifier or date of birth:\n%s", what, id, s)
		}
	}
}

// waitStatus polls the stage's status until ok holds or d passes.
func waitStatus(t *testing.T, s *patients.Stage, d time.Duration, what string, ok func(patients.Status) bool) patients.Status {
	t.Helper()
	var st patients.Status
	wait.For(t, d, what, func() (bool, string) {
		st = s.Status()
		return ok(st), fmt.Sprintf("%+v", st)
	})
	return st
}

func demographicsBucket(t *testing.T, r *rig) jetstream.KeyValue {
	t.Helper()
	kv, err := r.q.KeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: patients.Bucket, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func TestRecordsThatCanNeverBeAppliedAreSkipped(t *testing.T) {
	var logs logBuffer
	r := newRig(t, jstest.Open(t, t.TempDir()), 10*time.Second)
	r.stage = patients.New(r.q, patients.Options{Source: "epr", EnrichWait: 10 * time.Second, Logger: zerolog.New(&logs)})
	// An entry that no version of the stage can read, e.g. written by hand or by a newer
	// version: every update to Jane hits it.
	if _, err := demographicsBucket(t, r).Put(context.Background(), patients.NHSKey(jane.NHS), []byte(`{"dob": "not a history"}`)); err != nil {
		t.Fatal(err)
	}
	r.start()
	r.adt([]byte("this is not an HL7 message " + jane.NHS))
	r.adt(mllptest.ADT("A01", "M1", t0, jane))
	last := r.adt(mllptest.ADT("A01", "M2", t0, bob))

	st := waitStatus(t, r.stage, 10*time.Second, "every record applied or skipped", func(st patients.Status) bool { return st.AppliedSeq >= last })
	if st.Applied != 1 || st.Skipped != 2 {
		t.Errorf("status: applied %d skipped %d, want 1 and 2", st.Applied, st.Skipped)
	}
	if !strings.Contains(st.LastSkipReason, "stored patient entry") || st.LastSkippedSeq != last-1 || st.LastSkippedAt.IsZero() {
		t.Errorf("status: last skip %q at seq %d (%v), want the stored entry at seq %d", st.LastSkipReason, st.LastSkippedSeq, st.LastSkippedAt, last-1)
	}
	ctx := context.Background()
	if d, ok, err := r.stage.Lookup(ctx, bob.NHS, "", t0.Add(time.Hour)); err != nil || !ok || d.Sex != "male" {
		t.Errorf("the record after them: got %+v found=%v err=%v, want applied", d, ok, err)
	}
	// The unreadable entry enriches nothing, and does not make the mapper retry for ever.
	in := incident("2025-03-02", fhir.Patient{NHSNumber: jane.NHS})
	if _, err := r.stage.Enrich(ctx, in, r.incidentSeq()); err != nil || in.Patients[0].Sex != "" {
		t.Errorf("Enrich from an unreadable entry: got %+v, %v; want nothing filled in and no error", in.Patients[0], err)
	}
	if st := r.stage.Status(); st.UnreadableEntries == 0 {
		t.Errorf("status: unreadable_entries %d, want counted", st.UnreadableEntries)
	}
	checkNoIdentifier(t, "status", st.LastSkipReason)
	checkNoIdentifier(t, "the log", logs.String())
}

func TestApplyingPanicsIsSkipped(t *testing.T) {
	r := newRig(t, jstest.Open(t, t.TempDir()), 10*time.Second)
	patients.SetApplyHook(r.stage, func(data []byte) {
		if bytes.Contains(data, []byte(jane.NHS)) {
			panic("a bug")
		}
	})
	r.start()
	r.adt(mllptest.ADT("A01", "M1", t0, jane))
	last := r.adt(mllptest.ADT("A01", "M2", t0, bob))
	st := waitStatus(t, r.stage, 10*time.Second, "both records done", func(st patients.Status) bool { return st.AppliedSeq >= last })
	if st.Applied != 1 || st.Skipped != 1 || !strings.Contains(st.LastSkipReason, "internal error") {
		t.Errorf("status: %+v, want one applied, one skipped as an internal error", st)
	}
}

func TestStoreUnavailableIsRetriedInOrder(t *testing.T) {
	r := newRig(t, jstest.Open(t, t.TempDir()), 10*time.Second)
	r.start()
	r.adt(mllptest.ADT("A04", "M0", t0, mllptest.Patient{Local: "RGT5555555", DOB: "20011231", Sex: "M"}))
	r.enrich(incident("2025-03-02", fhir.Patient{LocalPatientID: "RGT5555555"}), r.incidentSeq())

	ctx := context.Background()
	if err := r.q.JetStream().DeleteKeyValue(ctx, patients.Bucket); err != nil {
		t.Fatal(err)
	}
	first := r.adt(mllptest.ADT("A01", "M1", t0, jane))
	last := r.adt(mllptest.ADT("A01", "M2", t0, bob))
	st := waitStatus(t, r.stage, 10*time.Second, "retrying the first record, two pending", func(st patients.Status) bool {
		return st.Failures >= 1 && st.RetryingSeq == first && st.Pending == 2
	})
	if st.AppliedSeq >= first || st.Skipped != 0 || st.LastError == "" || st.RetryingSince.IsZero() {
		t.Errorf("while the bucket is gone: %+v, want nothing applied or skipped, and the error", st)
	}
	demographicsBucket(t, r) // back
	st = waitStatus(t, r.stage, 30*time.Second, "every record applied, none pending", func(st patients.Status) bool {
		return st.AppliedSeq >= last && st.Pending == 0
	})
	if st.Skipped != 0 || st.RetryingSeq != 0 {
		t.Errorf("after the bucket is back: %+v, want nothing skipped and nothing retrying", st)
	}
	for _, p := range []mllptest.Patient{jane, bob} {
		if _, ok, err := r.stage.Lookup(ctx, p.NHS, "", t0.Add(time.Hour)); err != nil || !ok {
			t.Errorf("Lookup: found=%v err=%v, want found", ok, err)
		}
	}
}
