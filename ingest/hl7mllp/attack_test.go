package hl7mllp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
)

// dribble writes b a byte at a time, every, until it is written or a write fails: the sleep
// is the slow peer under test, not a wait for something to happen.
func dribble(c *mllptest.Client, b []byte, every time.Duration) {
	for i := range b {
		if _, err := c.Conn.Write(b[i : i+1]); err != nil {
			return
		}
		time.Sleep(every)
	}
}

// TestDribblingSenderIsCut: a frame must bring each kilobyte, the first counted from its
// first byte, within first_kilobyte_timeout, so a peer sending a byte at a time is cut off in
// about that time, not after the read timeout; a message sent at a normal pace, a large one
// included, is unaffected.
func TestDribblingSenderIsCut(t *testing.T) {
	r := newRig(t, hl7mllp.Config{FirstKilobyteTimeout: 300 * time.Millisecond, ReadTimeout: time.Minute, FirstMessageTimeout: time.Minute})

	slow := r.dial()
	go dribble(slow, []byte("\x0b"+goodMsg("SLOW")), 50*time.Millisecond)
	start := time.Now()
	waitClosed(t, slow.Conn, 10*time.Second)
	t.Logf("a byte every 50ms: cut after %s", time.Since(start).Round(time.Millisecond))
	if got := r.rejects.get(hl7mllp.ReasonSlowSender); got != 1 {
		t.Errorf("slow_sender: got %d, want 1", got)
	}

	// A kilobyte in time, then a dribble: the second kilobyte's deadline cuts it.
	later := r.dial()
	big := goodMsg("LATER") + "ZXX|" + strings.Repeat("x", 4000) + "\r"
	if _, err := later.Conn.Write([]byte("\x0b" + big[:1500])); err != nil {
		t.Fatal(err)
	}
	go dribble(later, []byte(big[1500:]), 50*time.Millisecond)
	waitClosed(t, later.Conn, 10*time.Second)
	if got := r.rejects.get(hl7mllp.ReasonSlowSender); got != 2 {
		t.Errorf("slow_sender: got %d, want 2", got)
	}

	// 200 KB in one go is fine.
	fast := r.dial()
	ack, err := fast.Send([]byte(goodMsg("FAST") + "ZXX|" + strings.Repeat("y", 200<<10) + "\r"))
	if err != nil || ack.Code != "AA" || ack.Control != "FAST" {
		t.Errorf("a large message sent at once: got %+v, %v, want AA", ack, err)
	}
}

// TestStatusShowsPeers: the adapter's status lists its open connections by peer address.
func TestStatusShowsPeers(t *testing.T) {
	runner, c := startRunner(t)
	if ack, err := c.Send([]byte(goodMsg("PEER1"))); err != nil || ack.Code != "AA" {
		t.Fatalf("got %+v, %v, want AA", ack, err)
	}
	st := runner.Status()
	if len(st.Peers) != 1 || st.Peers[0].Addr != "127.0.0.1" || st.Peers[0].Connections != 1 {
		t.Errorf("status peers: got %+v, want one connection from 127.0.0.1", st.Peers)
	}
}
