package hl7mllp_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/ingest/hl7mllp"
)

// TestNestedStartByteGetsOneAR is issue 16's first defect: a frame with a stray start byte
// inside PID-5, ended with 0x1C 0x0D, got an AR for the part before the stray byte and a
// second AR for the rest, so every later message on the connection received the previous
// message's ACK. A sender reads one ACK per frame it sent; so does this test.
func TestNestedStartByteGetsOneAR(t *testing.T) {
	r := newRig(t, hl7mllp.Config{})
	c := r.dial()
	nested := strings.Replace(goodMsg("NEST1"), "TEST^PATIENT", "TEST\x0bPATIENT", 1)
	ack, err := c.SendRaw(frame(nested))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Code != "AR" || ack.Control != "NEST1" || !strings.Contains(ack.Text, "start byte") {
		t.Errorf("the frame with a start byte in PID-5: got %s for %q (%q), want one AR for NEST1 naming the start byte", ack.Code, ack.Control, ack.Text)
	}
	for _, ctl := range []string{"NEXT1", "NEXT2", "NEXT3"} {
		ack, err := c.Send([]byte(goodMsg(ctl)))
		if err != nil || ack.Code != "AA" || ack.Control != ctl {
			t.Errorf("a later message: got %s for %q (%v), want AA for %s", ack.Code, ack.Control, err, ctl)
		}
	}
	if got := r.rejects.get(hl7mllp.ReasonStartInFrame); got != 1 {
		t.Errorf("start_in_frame: got %d, want 1", got)
	}
}

// corpusEntry is one line of testdata/corpus/corpus.txt.
type corpusEntry struct {
	file    string
	answers []string // "AR C01", "AR" (empty MSA-2), "AA C08"
	reason  string
	data    []byte
}

func readCorpus(t *testing.T) []corpusEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "corpus", "corpus.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []corpusEntry
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("corpus.txt: %q has %d fields, want 4", line, len(f))
		}
		e := corpusEntry{file: f[0], reason: f[2]}
		if f[1] != "-" {
			e.answers = strings.Split(f[1], ",")
		}
		if e.data, err = os.ReadFile(filepath.Join("testdata", "corpus", f[0])); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if len(out) < 10 {
		t.Fatalf("corpus has %d entries; is corpus.txt in its form?", len(out))
	}
	return out
}

// TestFramingCorpus is issue 16's first must-show: every entry of the framing corpus
// (testdata/corpus) is sent on one connection, each followed by a valid message. Each frame
// its sender ended gets exactly the answers corpus.txt lists, bytes outside a frame and a
// frame never ended get none, and every valid message gets its own AA with its MSH-10 in
// MSA-2; at the end nothing more is answered.
func TestFramingCorpus(t *testing.T) {
	r := newRig(t, hl7mllp.Config{})
	c := r.dial()
	corpus := readCorpus(t)
	for i, e := range corpus {
		valid := fmt.Sprintf("V%02d", i)
		before := r.rejects.get(e.reason)
		if _, err := c.Conn.Write(append(append([]byte(nil), e.data...), frame(goodMsg(valid))...)); err != nil {
			t.Fatalf("%s: %v", e.file, err)
		}
		for _, want := range append(append([]string(nil), e.answers...), "AA "+valid) {
			ack, err := c.ReadAck()
			if err != nil {
				t.Fatalf("%s: reading the answer %q: %v", e.file, want, err)
			}
			if got := strings.TrimSpace(ack.Code + " " + ack.Control); got != want {
				t.Fatalf("%s: got %q, want %q; the answers are out of step", e.file, got, want)
			}
		}
		if got := r.rejects.get(e.reason); got < before+1 {
			t.Errorf("%s: %s counted %d times, want at least once", e.file, e.reason, got-before)
		}
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if ack, err := c.ReadAck(); err == nil {
		t.Errorf("an answer with nothing left to answer: %s for %q", ack.Code, ack.Control)
	}
	if got, want := len(r.store.Records()), len(corpus)+1; got != want {
		t.Errorf("stored %d records, want %d (every valid message and C08)", got, want)
	}
}

// TestFrameWithoutEndBlockGetsNoACK: a frame its sender never ended gets no answer when the
// next message begins (the sender would take one as the answer to that message); the next
// message gets its own AA, and the abandoned frame is counted.
func TestFrameWithoutEndBlockGetsNoACK(t *testing.T) {
	r := newRig(t, hl7mllp.Config{})
	c := r.dial()
	ack, err := c.SendRaw([]byte("\x0b" + goodMsg("CUT1")[:60] + "\x0b" + goodMsg("WHOLE1") + "\x1c\r"))
	if err != nil || ack.Code != "AA" || ack.Control != "WHOLE1" {
		t.Fatalf("first answer: got %s for %q (%v), want AA for WHOLE1", ack.Code, ack.Control, err)
	}
	if got := r.rejects.get(hl7mllp.ReasonNoEndBlock); got != 1 {
		t.Errorf("no_end_block: got %d, want 1", got)
	}
	ack, err = c.Send([]byte(goodMsg("NEXT")))
	if err != nil || ack.Code != "AA" || ack.Control != "NEXT" {
		t.Errorf("next: got %s for %q (%v), want AA for NEXT", ack.Code, ack.Control, err)
	}
}
