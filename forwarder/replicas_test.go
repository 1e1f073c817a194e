package forwarder

import (
	"testing"
	"time"

	"github.com/psgw/psgw/ledger"
)

// TestStillSendRejudges: the write that starts a send re-judges the entry as it is then. A
// send judged on an entry read before revision 2 was mapped (a stale read from a replica a
// write behind, seen in test/cluster) must not go out: it would PUT revision 1 over
// revision 2 nationally and leave revision 2 undelivered.
func TestStillSendRejudges(t *testing.T) {
	o := ledger.Outgoing{RawSeq: 7, Revision: 1, PayloadHash: "h1"}
	fresh := &ledger.Entry{RawSeq: 7}
	if !stillSend(fresh, o, nil) {
		t.Error("an entry still at the message's record: got no send, want a send")
	}
	superseded := &ledger.Entry{RawSeq: 9}
	if stillSend(superseded, o, nil) {
		t.Error("an entry a newer revision was mapped into: got a send, want none")
	}
	other := &ledger.Entry{RawSeq: 7, InFlight: &ledger.InFlight{Method: "PUT", RawSeq: 7, StartedAt: time.Now(), Instance: "x"}}
	if stillSend(other, o, nil) {
		t.Error("an entry another send started on since the read: got a send, want none")
	}
}
