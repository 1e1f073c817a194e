package ledger

import (
	"net/http"
	"testing"
	"time"
)

// TestJudge: what the forwarder does with an outbox message of raw sequence 10, payload h2,
// given the incident's entry (docs/architecture.md, "3. Forward").
func TestJudge(t *testing.T) {
	o := Outgoing{RawSeq: 10, Revision: 2, PayloadHash: "h2"}
	tests := []struct {
		name  string
		entry Entry
		o     Outgoing
		want  Verdict
	}{
		{"queued: send", Entry{RawSeq: 10, State: StateQueued}, o, Send},
		{"a newer record is queued", Entry{RawSeq: 11, State: StateQueued}, o, Superseded},
		{"the service holds this payload", Entry{RawSeq: 10, NationalID: "n1", DeliveredHash: "h2", State: StateQueued}, o, Unchanged},
		{"this record was rejected", Entry{RawSeq: 10, State: StateRejected}, o, Settled},
		{"this record was rejected, but replayed", Entry{RawSeq: 10, State: StateRejected}, Outgoing{RawSeq: 10, PayloadHash: "h2", Replay: true}, Send},
		{"an earlier POST is unknown", Entry{RawSeq: 10, UnknownHash: "h1", State: StateQueued}, o, AwaitsResolution},
		{"a POST was in flight", Entry{RawSeq: 10, State: StateDelivering, InFlight: &InFlight{Method: http.MethodPost}}, o, InterruptedPost},
		{"a PUT was in flight", Entry{RawSeq: 10, NationalID: "n1", State: StateDelivering, InFlight: &InFlight{Method: http.MethodPut}}, o, Send},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.entry.Judge(tc.o); got != tc.want {
				t.Errorf("got verdict %d, want %d", got, tc.want)
			}
		})
	}
}

// TestSendTransitions walks one incident through a PUT that fails, is retried, and is
// delivered while a newer revision waits, checking what each transition records.
func TestSendTransitions(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	e := Entry{RawSeq: 10, Revision: 2, NationalID: "n1", DeliveredHash: "h1", State: StateQueued}
	o := Outgoing{RawSeq: 10, Revision: 2, PayloadHash: "h2"}

	if id := e.StartSend(now, o); id != "n1" || e.InFlight.Method != http.MethodPut || e.DeliveredHash != "" || e.Attempts != 1 {
		t.Fatalf("after StartSend: id %q, in flight %+v, delivered hash %q, attempts %d; want a PUT to n1 that forgets h1",
			id, e.InFlight, e.DeliveredHash, e.Attempts)
	}
	if superseded, failed := e.SendFailed(now, o.RawSeq, "HTTP 503", 2, 0); superseded || failed || e.State != StateRetrying || e.InFlight != nil {
		t.Fatalf("first failure of 2 attempts: superseded %v, failed %v, %s; want retrying", superseded, failed, e.State)
	}
	e.StartSend(now, o)
	if _, failed := e.SendFailed(now, o.RawSeq, "HTTP 503", 2, 0); !failed || e.State != StateFailed {
		t.Fatalf("second failure of 2 attempts: failed %v, %s; want failed", failed, e.State)
	}

	e.RawSeq = 11 // a newer revision was mapped meanwhile
	e.StartSend(now, o)
	e.Delivered(now, o, Answer{Put: true})
	if e.State != StateQueued || e.DeliveredHash != "h2" || e.DeliveredRevision != 2 || e.NationalID != "n1" {
		t.Errorf("delivered with a newer revision queued: %s, delivered %q rev %d, national id %q; want queued, h2 rev 2, n1",
			e.State, e.DeliveredHash, e.DeliveredRevision, e.NationalID)
	}
	e.Reject(now, o.RawSeq, "HTTP 422")
	if e.State != StateQueued {
		t.Errorf("an older revision's rejection turned the incident %s; want it left queued", e.State)
	}

	// A POST whose answer is lost is unknown even when a newer revision is queued: nothing
	// more may be POSTed for it until an operator resolves it.
	p := Entry{RawSeq: 11, Revision: 2, State: StateQueued}
	p.StartSend(now, o)
	p.AnswerLost(now, o.RawSeq, "h2", "timeout")
	if p.State != StateUnknown || !p.AwaitingResolution() || p.UnknownHash != "h2" || p.InFlight != nil {
		t.Errorf("an older revision's lost POST: %s, awaiting %v, unknown hash %q; want unknown, awaiting h2", p.State, p.AwaitingResolution(), p.UnknownHash)
	}
}

// TestUnreadable: an unreadable outbox message fails its incident, unless it is an older
// record's, which is only history.
func TestUnreadable(t *testing.T) {
	now := time.Now().UTC()
	e := Entry{RawSeq: 10, State: StateQueued}
	e.Unreadable(now, 9, "header Psgw-Revision is not a whole number")
	if e.State != StateQueued || len(e.History) != 1 {
		t.Errorf("older record's message: %s with %d history entries, want queued with one note", e.State, len(e.History))
	}
	e.Unreadable(now, 0, "header Psgw-Raw-Seq is not a stream sequence")
	if e.State != StateFailed || e.LastError == "" {
		t.Errorf("unknown record's message: %s, last error %q; want failed with the reason", e.State, e.LastError)
	}
}

// TestSendNotMadeWithdrawsOnlyItsOwnMarker: a send given up before its request went out takes
// back its own marker (the incident queued again, the attempt not counted), and leaves alone a
// marker of another send (another gateway's, or a later one of its own).
func TestSendNotMadeWithdrawsOnlyItsOwnMarker(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	o := Outgoing{RawSeq: 10, Revision: 1, PayloadHash: "h1"}
	e := Entry{RawSeq: 10, Revision: 1, State: StateQueued, instance: "run-a"}
	e.StartSend(now, o)
	other := e
	other.instance = "run-b"
	if other.SendNotMade(now, now) || other.InFlight == nil {
		t.Error("another gateway withdrew run-a's marker")
	}
	if e.SendNotMade(now, now.Add(time.Second)) || e.InFlight == nil {
		t.Error("a marker of another send (another start time) was withdrawn")
	}
	if !e.SendNotMade(now, now) || e.InFlight != nil || e.State != StateQueued || e.Attempts != 0 {
		t.Errorf("own marker: in flight %+v, %s, attempts %d; want none, queued, 0", e.InFlight, e.State, e.Attempts)
	}
}
