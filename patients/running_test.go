package patients_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
	"github.com/psgw/psgw/patients"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/test/jstest"
)

// timedEnrich enriches in and returns how long it took.
func timedEnrich(r *rig, in *fhir.Incident, seq uint64) time.Duration {
	r.t.Helper()
	start := time.Now()
	r.enrich(in, seq)
	return time.Since(start)
}

// notWaitingRig is a rig whose stage does not wait at all for itself to come back when it is
// not running (Options.DownWait), so that tests need not sit out the default.
func notWaitingRig(t *testing.T, q *queue.Queue) *rig {
	r := newRig(t, q, 10*time.Second)
	r.stage = patients.New(q, patients.Options{Source: "epr", EnrichWait: 10 * time.Second, DownWait: -1, Logger: zerolog.Nop()})
	return r
}

func TestEnrichDoesNotWaitForAStoppedStage(t *testing.T) {
	r := notWaitingRig(t, jstest.Open(t, t.TempDir()))
	r.start()
	r.adt(mllptest.ADT("A01", "M1", t0, jane))
	r.enrich(incident("2025-03-02", fhir.Patient{NHSNumber: jane.NHS}), r.incidentSeq())
	if st := r.stage.Status(); !st.Running || st.StartedAt.IsZero() {
		t.Errorf("while running: %+v, want running since a start time", st)
	}
	r.stop()
	if st := r.stage.Status(); st.Running || st.StoppedAt.IsZero() {
		t.Errorf("after Run returned: %+v, want not running, with the stop time", st)
	}
	// An ADT record the stopped stage will not apply, then incidents.
	r.adt(mllptest.ADT("A01", "M2", t0, bob))
	seq := r.incidentSeq()
	in := incident("2025-03-02", fhir.Patient{NHSNumber: jane.NHS})
	if d := timedEnrich(r, in, seq); d > 2*time.Second {
		t.Errorf("Enrich waited %s for a stage that is not running, want no wait", d)
	}
	if in.Patients[0].Sex != "female" {
		t.Errorf("got %+v, want what the store holds", in.Patients[0])
	}
	if st := r.stage.Status(); st.WaitsSkippedNotRunning != 1 || st.WaitTimeouts != 0 {
		t.Errorf("status: waits_skipped_not_running %d, wait_timeouts %d, want 1 and 0", st.WaitsSkippedNotRunning, st.WaitTimeouts)
	}
}

func TestEnrichWaitsForAStageThatComesBack(t *testing.T) {
	r := newRig(t, jstest.Open(t, t.TempDir()), 10*time.Second)
	// A DownWait that outlasts a slow restart on a loaded machine; the default is a second.
	r.stage = patients.New(r.q, patients.Options{Source: "epr", EnrichWait: 10 * time.Second, DownWait: 10 * time.Second, Logger: zerolog.Nop()})
	r.start()
	r.adt(mllptest.ADT("A01", "M1", t0, jane))
	r.enrich(incident("2025-03-02", fhir.Patient{NHSNumber: jane.NHS}), r.incidentSeq())
	r.stop()
	r.adt(mllptest.ADT("A01", "M2", t0, bob))
	seq := r.incidentSeq()
	// Stopped just now, as when a supervisor restarts it: Enrich waits for it (DownWait).
	done := make(chan *fhir.Incident)
	go func() {
		in := incident("2025-03-02", fhir.Patient{NHSNumber: bob.NHS})
		_, _ = r.stage.Enrich(context.Background(), in, seq)
		done <- in
	}()
	// Enrich must be waiting for the stage that is down before it starts: give it the time,
	// since nothing tells when it has begun to wait.
	time.Sleep(50 * time.Millisecond)
	r.start()
	if in := <-done; in.Patients[0].Sex != "male" {
		t.Errorf("got %+v, want the record the restarted stage applied", in.Patients[0])
	}
	// One Run at a time.
	if err := r.stage.Run(context.Background()); !errors.Is(err, patients.ErrAlreadyRunning) {
		t.Errorf("a second Run: got %v, want ErrAlreadyRunning", err)
	}
}

func TestEnrichDoesNotWaitForAStageThatFailed(t *testing.T) {
	q := jstest.Open(t, t.TempDir())
	r := notWaitingRig(t, q)
	// Run cannot start without the raw stream.
	if err := q.JetStream().DeleteStream(context.Background(), queue.RawStream); err != nil {
		t.Fatal(err)
	}
	if err := r.stage.Run(context.Background()); err == nil {
		t.Fatal("Run: got nil, want an error")
	}
	st := r.stage.Status()
	if st.Running || !strings.Contains(st.LastError, "raw stream") || st.LastErrorAt.IsZero() {
		t.Errorf("after Run failed: %+v, want not running, with its error", st)
	}
	if d := timedEnrich(r, incident("2025-03-02", fhir.Patient{NHSNumber: jane.NHS}), 5); d > 2*time.Second {
		t.Errorf("Enrich waited %s for a stage that failed, want no wait", d)
	}
}
