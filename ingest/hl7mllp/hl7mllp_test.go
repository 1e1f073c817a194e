package hl7mllp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/ingest/hl7mllp/hl7"
	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
)

var at = time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)

// jane is an invented patient with a published test NHS number.
var jane = mllptest.Patient{NHS: "9434765919", Local: "RGT1234567", DOB: "19650412", Sex: "F", Ethnicity: "A", Location: "WARD7"}

func TestConformance(t *testing.T) {
	adaptertest.Run(t, adaptertest.Subject{
		Kind: ingest.KindADT,
		New: func(t *testing.T, deps ingest.Deps) (ingest.Adapter, adaptertest.Sender) {
			a := hl7mllp.New(hl7mllp.Config{Addr: "127.0.0.1:0", PublishTimeout: time.Minute}, deps)
			return a, func(ctx context.Context, n int) (adaptertest.Outcome, error) {
				addr, err := a.Addr(ctx)
				if err != nil {
					return 0, err
				}
				c, err := mllptest.Dial(ctx, addr.String(), nil)
				if err != nil {
					return 0, err
				}
				defer c.Close()
				p := jane
				p.Local = fmt.Sprintf("RGT%07d", n)
				ack, err := c.Send(mllptest.ADT("A08", fmt.Sprintf("CONF%d", n), at, p))
				if err != nil {
					return 0, err
				}
				switch ack.Code {
				case "AA":
					return adaptertest.Accepted, nil
				case "AE":
					return adaptertest.Retry, nil
				}
				return adaptertest.Refused, nil
			}
		},
	})
}

// counts records CountRejected reasons.
type counts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counts) add(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[reason]++
}

func (c *counts) get(reason string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[reason]
}

type rig struct {
	t       *testing.T
	a       *hl7mllp.Adapter
	store   *adaptertest.Store
	rejects *counts
	addr    string
	cancel  context.CancelFunc
	done    chan error
}

func newRig(t *testing.T, cfg hl7mllp.Config) *rig {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	r := &rig{t: t, store: adaptertest.NewStore(), rejects: &counts{m: map[string]int{}}, done: make(chan error, 1)}
	r.a = hl7mllp.New(cfg, ingest.Deps{Name: "hl7mllp", Publisher: r.store, Logger: zerolog.Nop(), OnReject: r.rejects.add})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.a.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	addr, err := r.a.Addr(wctx)
	if err != nil {
		t.Fatal(err)
	}
	r.addr = addr.String()
	t.Cleanup(r.stop)
	return r
}

func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		r.t.Fatal("Run did not return after cancellation")
	}
}

func (r *rig) dial() *mllptest.Client {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := mllptest.Dial(ctx, r.addr, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	return c
}

func TestEveryADTEventGetsAAAfterStorage(t *testing.T) {
	r := newRig(t, hl7mllp.Config{Source: "epr"})
	c := r.dial()
	bob := mllptest.Patient{NHS: "4010232137", Local: "RGT7777777", DOB: "19500101", Sex: "M"}
	for i, ev := range []string{"A01", "A02", "A03", "A04", "A05", "A08", "A28", "A31"} {
		ctl := fmt.Sprintf("MSG%03d", i)
		ack, err := c.Send(mllptest.ADT(ev, ctl, at.Add(time.Duration(i)*time.Hour), jane))
		if err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
		if ack.Code != "AA" || ack.Control != ctl {
			t.Errorf("%s: got %s for %q, want AA for %q (%s)", ev, ack.Code, ack.Control, ctl, ack.Raw)
		}
	}
	ack, err := c.Send(mllptest.ADTMerge("A40", "MSG-MERGE", at.Add(9*time.Hour), jane, &bob))
	if err != nil || ack.Code != "AA" {
		t.Fatalf("A40: got %+v, %v, want AA", ack, err)
	}
	recs := r.store.Records()
	if len(recs) != 9 {
		t.Fatalf("stored: got %d, want 9", len(recs))
	}
	for _, rec := range recs {
		if rec.Kind != ingest.KindADT || rec.Source != "epr" || rec.Key != recs[0].Key {
			t.Errorf("record %s: kind %q source %q key %q, want adt, epr and one key per patient", rec.ID, rec.Kind, rec.Source, rec.Key)
		}
		for _, id := range []string{jane.NHS, jane.Local, bob.NHS} {
			if strings.Contains(rec.Key+rec.ID, id) {
				t.Errorf("record %s: an identifier appears in its key or id", rec.ID)
			}
		}
		if _, err := hl7.Parse(rec.Data); err != nil {
			t.Errorf("record %s: data is not the message: %v", rec.ID, err)
		}
	}
	// The same message again is the same record: AA, stored once.
	ack, err = c.Send(mllptest.ADT("A01", "MSG000", at, jane))
	if err != nil || ack.Code != "AA" {
		t.Fatalf("resend: got %+v, %v, want AA", ack, err)
	}
	if n := len(r.store.Records()); n != 9 {
		t.Errorf("after a resend: stored %d, want 9", n)
	}
}

func TestAEWhenStorageUnavailable(t *testing.T) {
	r := newRig(t, hl7mllp.Config{PublishTimeout: 200 * time.Millisecond})
	c := r.dial()
	r.store.Fail(fmt.Errorf("%w: queue down", ingest.ErrUnavailable))
	ack, err := c.Send(mllptest.ADT("A08", "AE-1", at, jane))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Code != "AE" || ack.Control != "AE-1" || !ack.ERR || ack.Text == "" {
		t.Errorf("queue down: got %+v, want AE for AE-1 with a reason and ERR", ack)
	}
	// The store's cause, when the publisher names one, is in MSA-3 for the EPR's log.
	r.store.Fail(ingest.Unavailable("server unreachable", nil))
	ack, err = c.Send(mllptest.ADT("A08", "AE-3", at, jane))
	if err != nil || ack.Code != "AE" || ack.Control != "AE-3" || !strings.Contains(ack.Text, "server unreachable") {
		t.Errorf("store unreachable: got %+v, %v, want AE for AE-3 naming the cause", ack, err)
	}
	// A store that does not answer in time is the same to the sender.
	r.store.Fail(nil)
	r.store.Hold()
	ack, err = c.Send(mllptest.ADT("A08", "AE-2", at, jane))
	if err != nil || ack.Code != "AE" || ack.Control != "AE-2" {
		t.Errorf("publish timeout: got %+v, %v, want AE for AE-2", ack, err)
	}
	r.store.Release()
	ack, err = c.Send(mllptest.ADT("A08", "AE-1", at, jane))
	if err != nil || ack.Code != "AA" {
		t.Errorf("resend after recovery: got %+v, %v, want AA", ack, err)
	}
}

// TestARWhenTooLargeToStore: a message the store can never take (over its max_payload) gets
// AR, not AE: an EPR resends after AE, for ever.
func TestARWhenTooLargeToStore(t *testing.T) {
	r := newRig(t, hl7mllp.Config{})
	c := r.dial()
	r.store.Fail(fmt.Errorf("%w: 2 MiB", ingest.ErrTooLarge))
	ack, err := c.Send(mllptest.ADT("A08", "BIG-1", at, jane))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Code != "AR" || ack.Control != "BIG-1" || ack.Text == "" {
		t.Errorf("too large to store: got %+v, want AR for BIG-1 with a reason", ack)
	}
}

// frame wraps s in MLLP framing bytes.
func frame(s string) []byte { return []byte("\x0b" + s + "\x1c\r") }

const good = "MSH|^~\\&|EPR|RGT|PSGW|RGT|20250310090000+0000||ADT^A08^ADT_A01|%s|P|2.5\rEVN||20250310090000+0000\rPID|1||9434765919^^^NHS^NH||TEST^PATIENT||19650412|F\r"

func goodMsg(ctl string) string { return fmt.Sprintf(good, ctl) }

func TestBadInputGetsARAndTheConnectionGoesOn(t *testing.T) {
	const limit = 4096
	r := newRig(t, hl7mllp.Config{MaxMessageBytes: limit})
	latin1 := "MSH|^~\\&|EPR|RGT|PSGW|RGT|20250310090000+0000||ADT^A08|L1|P|2.5|||||GBR|UNICODE UTF-8\rEVN||20250310090000+0000\rPID|1||9434765919^^^NHS^NH||CL\xc9MENT^ANA||19650412|F\r"
	for _, tc := range []struct {
		name    string
		raw     []byte
		reason  string
		control string // the MSA-2 wanted
		text    string // part of the reason wanted in MSA-3
	}{
		{"no MSH", frame("PID|1||9434765919^^^NHS^NH||TEST^PATIENT\r"), hl7mllp.ReasonParse, "", "no MSH segment"},
		{"empty frame", frame(""), hl7mllp.ReasonParse, "", "empty message"},
		{"wrong separators", frame(strings.Replace(goodMsg("SEP1"), "^~\\&", "^~\\", 1)), hl7mllp.ReasonParse, "SEP1", "encoding characters"},
		{"repeated separators", frame(strings.Replace(goodMsg("SEP2"), "^~\\&", "^^\\&", 1)), hl7mllp.ReasonParse, "SEP2", "distinct"},
		{"truncated segment id", frame(goodMsg("TR1") + "PV\r"), hl7mllp.ReasonParse, "TR1", "invalid segment id"},
		{"truncated PID", frame(strings.SplitAfter(goodMsg("TR2"), "EVN||20250310090000+0000\r")[0] + "PID|1\r"), hl7mllp.ReasonInvalid, "TR2", "PID-3"},
		{"truncated MSH", frame("MSH|^~\\&|EPR|RGT|PSGW|RGT|20250310090000+0000||ADT^A0"), hl7mllp.ReasonUnsupported, "", "unsupported"},
		{"binary junk in a frame", frame("\x00\x01\x02\xff\xfe binary \x7f\x10"), hl7mllp.ReasonParse, "", "no MSH"},
		{"binary after MSH", frame(goodMsg("BIN1") + "ZZZ|\x00\x01\x02\r"), hl7mllp.ReasonParse, "BIN1", "binary"},
		{"invalid UTF-8 declared UTF-8", frame("MSH|^~\\&|EPR|RGT|PSGW|RGT|20250310090000+0000||ADT^A08|U1|P|2.5|||||GBR|UNICODE UTF-8\rPID|1||9434765919^^^NHS^NH||\xff\xfe\xc3\r"), hl7mllp.ReasonCharset, "U1", "UTF-8"},
		{"Latin-1 text declared UTF-8", frame(latin1), hl7mllp.ReasonCharset, "L1", "UTF-8"},
		{"start byte inside a message", frame(strings.Replace(goodMsg("SB1"), "TEST^PATIENT", "TEST\x0bPATIENT", 1)), hl7mllp.ReasonStartInFrame, "SB1", "start byte"},
		{"LF line endings", frame(strings.ReplaceAll(goodMsg("LF1"), "\r", "\n")), hl7mllp.ReasonLineEndings, "LF1", "carriage return"},
		{"CRLF line endings", frame(strings.ReplaceAll(goodMsg("LF2"), "\r", "\r\n")), hl7mllp.ReasonLineEndings, "LF2", "carriage return"},
		{"over the size limit", frame(goodMsg("BIG1") + "ZXX|" + strings.Repeat("x", 2*limit) + "\r"), hl7mllp.ReasonTooLarge, "BIG1", "limit of 4096"},
		{"end byte without CR", []byte("\x0b" + goodMsg("TRL1") + "\x1cX"), hl7mllp.ReasonBadTrailer, "TRL1", "carriage return"},
		{"unsupported message type", frame(strings.Replace(goodMsg("ORU1"), "ADT^A08^ADT_A01", "ORU^R01", 1)), hl7mllp.ReasonUnsupported, "ORU1", "ORU^R01"},
		{"unsupported trigger", frame(strings.Replace(goodMsg("A17"), "ADT^A08^ADT_A01", "ADT^A17", 1)), hl7mllp.ReasonUnsupported, "A17", "ADT^A17"},
		{"bad NHS number", frame(strings.Replace(goodMsg("NHS1"), "9434765919", "9434765918", 1)), hl7mllp.ReasonInvalid, "NHS1", "PID-3"},
		{"no control id", frame(goodMsg("")), hl7mllp.ReasonInvalid, "", "MSH-10"},
		{"control id with a zero-width space", frame(goodMsg("M\u200b1")), hl7mllp.ReasonInvalid, "M\u200b1", "MSH-10: message control id holds invisible"},
		{"control id with a bidi override", frame(goodMsg("M\u202e1")), hl7mllp.ReasonInvalid, "M\u202e1", "MSH-10: message control id holds invisible"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := r.dial()
			before := r.rejects.get(tc.reason)
			stored := len(r.store.Records())
			if _, err := c.Conn.Write(tc.raw); err != nil {
				t.Fatal(err)
			}
			ack, err := c.ReadAck()
			if err != nil {
				t.Fatalf("reading the ACK: %v", err)
			}
			if ack.Code != "AR" || ack.Control != tc.control || !ack.ERR {
				t.Errorf("got %s for %q (ERR %v), want AR for %q with ERR: %q", ack.Code, ack.Control, ack.ERR, tc.control, ack.Raw)
			}
			if !strings.Contains(ack.Text, tc.text) {
				t.Errorf("MSA-3 %q does not give the reason %q", ack.Text, tc.text)
			}
			if got := r.rejects.get(tc.reason); got != before+1 {
				t.Errorf("%s count: got %d, want %d", tc.reason, got, before+1)
			}
			if n := len(r.store.Records()); n != stored {
				t.Errorf("a refused message was stored: %d records, want %d", n, stored)
			}
			// The connection is not wedged: the next message gets its AA.
			ctl := "OK-" + strings.ReplaceAll(tc.name, " ", "-")
			ack, err = c.Send([]byte(goodMsg(ctl)))
			if err != nil || ack.Code != "AA" || ack.Control != ctl {
				t.Errorf("next message on the same connection: got %+v, %v, want AA for %s", ack, err, ctl)
			}
		})
	}
}

func TestLatin1DeclaredAsSuchIsAccepted(t *testing.T) {
	r := newRig(t, hl7mllp.Config{})
	c := r.dial()
	msg := "MSH|^~\\&|EPR|RGT|PSGW|RGT|20250310090000+0000||ADT^A08|L2|P|2.4|||||GBR|8859/1\rEVN||20250310090000+0000\rPID|1||9434765919^^^NHS^NH||CL\xc9MENT^ANA||19650412|F\r"
	ack, err := c.Send([]byte(msg))
	if err != nil || ack.Code != "AA" || ack.Control != "L2" {
		t.Fatalf("got %+v, %v, want AA", ack, err)
	}
}

// TestUndeclaredCharset: a message with an empty MSH-18 is read in the listener's default
// character set. That is ISO 8859-1 unless configured (README, mllp.default_charset): many
// EPRs send it undeclared and an AR is not resent. HL7 v2's strict reading, ASCII, can be
// configured, and then 8-bit text gets AR with the reason.
func TestUndeclaredCharset(t *testing.T) {
	msg := "MSH|^~\\&|EPR|RGT|PSGW|RGT|20250310090000+0000||ADT^A08|%s|P|2.4\rEVN||20250310090000+0000\rPID|1||9434765919^^^NHS^NH||CL\xc9MENT^ANA||19650412|F\r"
	for _, tc := range []struct {
		name, charset, code, text string
	}{
		{"default is 8859/1", "", "AA", ""},
		{"configured ASCII", hl7.CharsetASCII, "AR", "byte 121 is not ASCII (MSH-18 is empty"},
		{"configured 8859/1", hl7.CharsetLatin1, "AA", ""},
		{"configured UTF-8", "UTF-8", "AR", "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, hl7mllp.Config{DefaultCharset: tc.charset})
			c := r.dial()
			ack, err := c.Send([]byte(fmt.Sprintf(msg, "CS1")))
			if err != nil {
				t.Fatal(err)
			}
			if ack.Code != tc.code || ack.Control != "CS1" || !strings.Contains(ack.Text, tc.text) {
				t.Errorf("got %s for %q (%q), want %s with %q", ack.Code, ack.Control, ack.Text, tc.code, tc.text)
			}
			if want := map[string]int{"AA": 0, "AR": 1}[tc.code]; r.rejects.get(hl7mllp.ReasonCharset) != want {
				t.Errorf("charset refusals: got %d, want %d", r.rejects.get(hl7mllp.ReasonCharset), want)
			}
			if strings.Contains(ack.Raw, "CL") || strings.Contains(ack.Raw, "9434765919") {
				t.Errorf("the ACK quotes the message: %q", ack.Raw)
			}
		})
	}
	if _, err := hl7mllp.Factory(ingest.Deps{Settings: hl7mllp.Config{Addr: "127.0.0.1:0", DefaultCharset: "EBCDIC"}}); err == nil {
		t.Error("an unknown DefaultCharset: got no error from the Factory")
	}
}

// TestEndByteWithoutCRIsAnsweredAfterTheGrace: a frame whose end byte is not followed by CR
// is answered (AR) once the trailer grace period has passed, not after the read timeout; the
// connection then goes on, a late CR being white space.
func TestEndByteWithoutCRIsAnsweredAfterTheGrace(t *testing.T) {
	r := newRig(t, hl7mllp.Config{TrailerGrace: 100 * time.Millisecond, ReadTimeout: time.Minute})
	c := r.dial()
	_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // far below the read timeout
	ack, err := c.SendRaw([]byte("\x0b" + goodMsg("NOCR") + "\x1c"))
	if err != nil {
		t.Fatalf("no ACK for a frame without its final CR: %v", err)
	}
	if ack.Code != "AR" || ack.Control != "NOCR" || !strings.Contains(ack.Text, "carriage return") {
		t.Errorf("got %s for %q (%q), want AR for NOCR naming the missing carriage return", ack.Code, ack.Control, ack.Text)
	}
	if got := r.rejects.get(hl7mllp.ReasonBadTrailer); got != 1 {
		t.Errorf("bad_trailer: got %d, want 1", got)
	}
	ack, err = c.SendRaw(append([]byte("\r"), frame(goodMsg("NEXT"))...))
	if err != nil || ack.Code != "AA" || ack.Control != "NEXT" {
		t.Errorf("next message after a late CR: got %+v, %v, want AA for NEXT", ack, err)
	}
	if got := r.rejects.get(hl7mllp.ReasonJunk); got != 0 {
		t.Errorf("junk: got %d, want 0 (the late CR is white space)", got)
	}
}

// TestStrayStartBytesGetNoACK: a burst of start bytes is junk, counted and skipped, not one AR
// per byte; the message after it gets its AA as the first answer on the connection.
func TestStrayStartBytesGetNoACK(t *testing.T) {
	r := newRig(t, hl7mllp.Config{})
	c := r.dial()
	ack, err := c.SendRaw(append([]byte(strings.Repeat("\x0b", 230)), frame(goodMsg("AFTER"))...))
	if err != nil || ack.Code != "AA" || ack.Control != "AFTER" {
		t.Fatalf("first answer after 230 stray start bytes: got %+v, %v, want AA for AFTER", ack, err)
	}
	// Stray start bytes in a later write, on their own, get nothing either.
	if _, err := c.Conn.Write([]byte(strings.Repeat("\x0b", 50))); err != nil {
		t.Fatal(err)
	}
	ack, err = c.Send([]byte(goodMsg("AFTER2")))
	if err != nil || ack.Code != "AA" || ack.Control != "AFTER2" {
		t.Fatalf("after a second burst: got %+v, %v, want AA for AFTER2", ack, err)
	}
	if n := r.rejects.get(hl7mllp.ReasonStartInFrame); n != 0 {
		t.Errorf("start_in_frame: got %d, want 0 (no message was cut short)", n)
	}
	if n := r.rejects.get(hl7mllp.ReasonJunk); n < 1 || n > 4 {
		t.Errorf("junk: got %d, want 1 to 4 (one per burst as the reads cut it)", n)
	}
}

// TestRefusalsShowOnTheAdapterStatus: an AR shows on the runner's status, with its reason.
func TestRefusalsShowOnTheAdapterStatus(t *testing.T) {
	runner, c := startRunner(t)
	ack, err := c.Send([]byte(strings.Replace(goodMsg("ST1"), "ADT^A08^ADT_A01", "ORU^R01", 1)))
	if err != nil || ack.Code != "AR" {
		t.Fatalf("got %+v, %v, want AR", ack, err)
	}
	st := runner.Status()
	if st.Rejected != 1 || st.LastRejection != hl7mllp.ReasonUnsupported || st.LastRejectionAt.IsZero() || st.RejectedByReason[hl7mllp.ReasonUnsupported] != 1 {
		t.Errorf("status: got rejected %d, last %q at %v, by reason %v; want 1, unsupported", st.Rejected, st.LastRejection, st.LastRejectionAt, st.RejectedByReason)
	}
}

func TestJunkOutsideFramesIsCountedAndSkipped(t *testing.T) {
	r := newRig(t, hl7mllp.Config{})
	c := r.dial()
	raw := append([]byte("\x00\x01\x02 binary junk \xff\xfe\n"), frame(goodMsg("J1"))...)
	ack, err := c.SendRaw(raw)
	if err != nil || ack.Code != "AA" || ack.Control != "J1" {
		t.Fatalf("message after junk: got %+v, %v, want AA for J1 (no ACK for the junk itself)", ack, err)
	}
	if got := r.rejects.get(hl7mllp.ReasonJunk); got != 1 {
		t.Errorf("junk count: got %d, want 1", got)
	}
}

// waitClosed waits, bounded, for the server to close c.
func waitClosed(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	buf := make([]byte, 64)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the listener did not close the connection within %s", within)
		}
		return // EOF or reset: closed
	}
}

func TestSilentAndSlowPeersAreCutOffWithoutBlockingOthers(t *testing.T) {
	// 1 s: the peers that must not be cut off send within it even when -race and a loaded
	// machine stall them.
	r := newRig(t, hl7mllp.Config{FirstMessageTimeout: time.Second, IdleTimeout: time.Second, ReadTimeout: time.Second})
	silent := r.dial()
	quiet := r.dial()
	if ack, err := quiet.Send([]byte(goodMsg("QUIET"))); err != nil || ack.Code != "AA" {
		t.Fatalf("quiet sender's one message: got %+v, %v, want AA", ack, err)
	}
	slow := r.dial()
	if _, err := slow.Conn.Write([]byte("\x0b" + goodMsg("SLOW")[:20])); err != nil {
		t.Fatal(err)
	}
	// Meanwhile another sender is served at once, over and over.
	busy := r.dial()
	for i := range 5 {
		ctl := fmt.Sprintf("BUSY%d", i)
		ack, err := busy.Send([]byte(goodMsg(ctl)))
		if err != nil || ack.Code != "AA" {
			t.Fatalf("busy sender: got %+v, %v, want AA", ack, err)
		}
	}
	waitClosed(t, silent.Conn, 5*time.Second)
	waitClosed(t, quiet.Conn, 5*time.Second)
	waitClosed(t, slow.Conn, 5*time.Second)
	if r.rejects.get(hl7mllp.ReasonNoMessage) != 1 || r.rejects.get(hl7mllp.ReasonIdleTimeout) < 1 || r.rejects.get(hl7mllp.ReasonReadTimeout) != 1 {
		t.Errorf("timeouts counted: no message %d, idle %d, read %d, want 1, ≥ 1 and 1",
			r.rejects.get(hl7mllp.ReasonNoMessage), r.rejects.get(hl7mllp.ReasonIdleTimeout), r.rejects.get(hl7mllp.ReasonReadTimeout))
	}
}

// TestFirstMessageTimeout: a connection that sends nothing is closed after the short
// first-message timeout, while one that has sent a message is held to the idle timeout.
func TestFirstMessageTimeout(t *testing.T) {
	r := newRig(t, hl7mllp.Config{FirstMessageTimeout: time.Second, IdleTimeout: time.Minute})
	talker := r.dial()
	if ack, err := talker.Send([]byte(goodMsg("T1"))); err != nil || ack.Code != "AA" {
		t.Fatalf("first message: got %+v, %v, want AA", ack, err)
	}
	silent := r.dial()
	waitClosed(t, silent.Conn, 5*time.Second)
	if got := r.rejects.get(hl7mllp.ReasonNoMessage); got != 1 {
		t.Errorf("no_message: got %d, want 1", got)
	}
	// The talker, idle for longer than the first-message timeout by now, is still served.
	if ack, err := talker.Send([]byte(goodMsg("T2"))); err != nil || ack.Code != "AA" {
		t.Errorf("after a pause longer than the first-message timeout: got %+v, %v, want AA", ack, err)
	}
}

// TestSilentPeersCannotLockOutTheEPR is the incident: 100 sockets connect to a listener capped
// at 64 connections and send nothing; the real EPR still connects and gets its AA, because a
// new connection takes the place of the one idle the longest.
func TestSilentPeersCannotLockOutTheEPR(t *testing.T) {
	// All from one address: the per-address cap would make room first (TestPerPeerCap).
	r := newRig(t, hl7mllp.Config{MaxConnections: 64, MaxConnectionsPerPeer: 64})
	var silent []net.Conn
	for range 100 {
		var d net.Dialer
		c, err := d.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
		t.Cleanup(func() { c.Close() })
	}
	// The first 36 were closed to make room for the last 36. Waiting on the newest of
	// them also lets the listener reach the last accept before the EPR dials.
	for _, c := range silent[:36] {
		waitClosed(t, c, 10*time.Second)
	}
	epr := r.dial()
	ack, err := epr.Send([]byte(goodMsg("EPR1")))
	if err != nil || ack.Code != "AA" {
		t.Fatalf("the EPR after 100 silent sockets: got %+v, %v, want AA", ack, err)
	}
	if got := r.rejects.get("too_many_connections"); got != 0 {
		t.Errorf("too_many_connections: got %d, want 0 (silent connections make room)", got)
	}
	if got := r.rejects.get(ingest.ReasonEvictedIdle); got != 37 {
		t.Errorf("evicted_idle: got %d, want 37", got)
	}
}

// TestMaxConnections: at the cap, the connection idle the longest makes room; a connection
// in the middle of a message never does; when every connection is busy, the new one is
// closed at once.
func TestMaxConnections(t *testing.T) {
	states := watchStates(t)
	r := newRig(t, hl7mllp.Config{MaxConnections: 2})
	a := r.dial()
	if ack, err := a.Send([]byte(goodMsg("MC-A"))); err != nil || ack.Code != "AA" {
		t.Fatalf("within the limit: got %+v, %v, want AA", ack, err)
	}
	states.wait(t, a, false, 2) // waiting for its next message: idle
	// b is mid-message: older than c below, but busy.
	b := r.dial()
	if _, err := b.Conn.Write([]byte("\x0b" + goodMsg("MC-B")[:30])); err != nil {
		t.Fatal(err)
	}
	states.wait(t, b, true, 1)
	c := r.dial()
	waitClosed(t, a.Conn, 5*time.Second) // a was idle: it made room for c
	if ack, err := c.Send([]byte(goodMsg("MC-C"))); err != nil || ack.Code != "AA" {
		t.Fatalf("the connection that took a's place: got %+v, %v, want AA", ack, err)
	}
	states.wait(t, c, false, 2)
	// c is idle now, b still busy: d takes c's place, and b finishes its message.
	d := r.dial()
	waitClosed(t, c.Conn, 5*time.Second)
	if _, err := b.Conn.Write([]byte(goodMsg("MC-B")[30:] + "\x1c\r")); err != nil {
		t.Fatal(err)
	}
	if ack, err := b.ReadAck(); err != nil || ack.Code != "AA" || ack.Control != "MC-B" {
		t.Fatalf("the busy connection's message: got %+v, %v, want AA for MC-B", ack, err)
	}
	// Both busy (d mid-message, b mid-message): a new connection is refused at once.
	if _, err := d.Conn.Write([]byte("\x0b" + goodMsg("MC-D")[:30])); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Conn.Write([]byte("\x0b" + goodMsg("MC-E")[:30])); err != nil {
		t.Fatal(err)
	}
	states.wait(t, d, true, 1)
	states.wait(t, b, true, 2)
	e := r.dial()
	waitClosed(t, e.Conn, 5*time.Second)
	if got := r.rejects.get("too_many_connections"); got != 1 {
		t.Errorf("too_many_connections: got %d, want 1", got)
	}
	if got := r.rejects.get(ingest.ReasonEvictedIdle); got != 2 {
		t.Errorf("evicted_idle: got %d, want 2", got)
	}
	// The busy ones were left alone.
	if _, err := d.Conn.Write([]byte(goodMsg("MC-D")[30:] + "\x1c\r")); err != nil {
		t.Fatal(err)
	}
	if ack, err := d.ReadAck(); err != nil || ack.Code != "AA" || ack.Control != "MC-D" {
		t.Fatalf("busy connection d: got %+v, %v, want AA for MC-D", ack, err)
	}
}

// stateWatch counts, per client, how often the listener marked its connection busy (a
// message started) and idle (waiting for the next one).
type stateWatch struct {
	mu         sync.Mutex
	busy, idle map[string]int
	ch         chan struct{}
}

// watchStates installs the state hook; call it before newRig.
func watchStates(t *testing.T) *stateWatch {
	w := &stateWatch{busy: map[string]int{}, idle: map[string]int{}, ch: make(chan struct{}, 1)}
	t.Cleanup(hl7mllp.SetStateHook(func(peer net.Addr, busy bool) {
		w.mu.Lock()
		if busy {
			w.busy[peer.String()]++
		} else {
			w.idle[peer.String()]++
		}
		w.mu.Unlock()
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}))
	return w
}

// wait waits until the listener has marked c busy (or idle) n times in all.
func (w *stateWatch) wait(t *testing.T, c *mllptest.Client, busy bool, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		m := w.idle
		if busy {
			m = w.busy
		}
		got := m[c.Conn.LocalAddr().String()]
		w.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-w.ch:
		case <-deadline:
			t.Fatalf("the listener did not mark %s busy=%v %d times", c.Conn.LocalAddr(), busy, n)
		}
	}
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	r := newRig(t, hl7mllp.Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mllptest.Dial(ctx, r.addr, &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ack, err := c.Send([]byte(goodMsg("TLS1")))
	if err != nil || ack.Code != "AA" || ack.Control != "TLS1" {
		t.Fatalf("over TLS: got %+v, %v, want AA", ack, err)
	}
	// A plain-text sender on the TLS port gets nothing and is disconnected.
	plain := r.dial()
	_, _ = plain.Conn.Write(frame(goodMsg("PLAIN")))
	if _, err := plain.ReadAck(); err == nil {
		t.Error("a plain-text sender on the TLS listener got an ACK")
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestNoGoroutinesLeft starts the listener, leaves it with open, stalled and busy
// connections, stops it, and checks every goroutine it started is gone.
func TestNoGoroutinesLeft(t *testing.T) {
	settle := func() int {
		runtime.GC()
		return runtime.NumGoroutine()
	}
	before := settle()
	r := newRig(t, hl7mllp.Config{})
	var clients []*mllptest.Client
	for i := range 8 {
		c := r.dial()
		clients = append(clients, c)
		switch i % 3 {
		case 0:
			_, _ = c.Send([]byte(goodMsg(fmt.Sprint("G", i))))
		case 1:
			_, _ = c.Conn.Write([]byte("\x0bMSH|^~\\&|EPR")) // stalled mid-frame
		}
	}
	calls := len(r.store.Calls())
	r.store.Hold()
	held := r.dial()
	_, _ = held.Conn.Write(frame(goodMsg("HELD")))
	// Wait for HELD's own publish, not for an earlier message still buffered in Entered.
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	inFlight, err := r.store.WaitCalls(wctx, calls+1)
	if err != nil {
		t.Fatalf("HELD was not published: %v", err)
	}
	if got := inFlight[calls].LocalID; got != "HELD" {
		t.Fatalf("publish in flight: got %q, want HELD", got)
	}
	r.stop()
	r.store.Release() // a publish that outlived Run would complete now, and its ACK be sent
	// Every message sent before the stop was answered already (Send read its ACK), and HELD's
	// publish was abandoned: no connection may receive anything now.
	for i, c := range append(clients, held) {
		if ack, err := c.ReadAck(); err == nil {
			t.Errorf("connection %d got an ACK after the listener stopped: %s for %q", i, ack.Code, ack.Control)
		}
		c.Close()
	}
	if n := len(r.store.Calls()); n != calls+1 {
		t.Errorf("Publish calls after the stop: got %d, want none", n-calls-1)
	}
	if recs := r.store.Records(); len(recs) > 0 && recs[len(recs)-1].LocalID == "HELD" {
		t.Error("HELD was stored after the listener stopped")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := settle()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after stopping\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNHSNumberShapedControlIDIsAcceptedButNotKept: a numeric control id of ten digits
// passes Modulus 11 one time in eleven. Refusing such messages would refuse a share of a
// healthy feed, so the message is accepted and its ACK echoes the id (HL7 requires it), but
// the stored record does not keep it as its local id, as no local id in the gateway may be
// NHS-number-shaped (issue 15, item 4).
func TestNHSNumberShapedControlIDIsAcceptedButNotKept(t *testing.T) {
	r := newRig(t, hl7mllp.Config{})
	c := r.dial()
	const ctl = "9434765919" // passes Modulus 11
	ack, err := c.Send(mllptest.ADT("A08", ctl, at, jane))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Code != "AA" || ack.Control != ctl {
		t.Fatalf("got %s for %q, want AA for %q", ack.Code, ack.Control, ctl)
	}
	recs := r.store.Records()
	if len(recs) != 1 {
		t.Fatalf("stored %d records, want 1", len(recs))
	}
	if recs[0].LocalID != "" {
		t.Errorf("stored with local id %q, want none", recs[0].LocalID)
	}
	if ack, err := c.Send(mllptest.ADT("A08", "MSG-2025-1", at, jane)); err != nil || ack.Code != "AA" {
		t.Fatalf("got %+v, %v", ack, err)
	}
	if recs := r.store.Records(); len(recs) != 2 || recs[1].LocalID != "MSG-2025-1" {
		t.Errorf("an ordinary control id: got %+v, want it kept as the local id", recs)
	}
}

// startRunner runs the adapter, built by its Factory, under a runner until the test ends, and
// returns the runner and a client connected to it.
func startRunner(t *testing.T) (*ingest.Runner, *mllptest.Client) {
	t.Helper()
	runner, err := ingest.NewRunner(hl7mllp.Factory, ingest.Deps{Name: "hl7mllp", Publisher: adaptertest.NewStore(), Logger: zerolog.Nop(),
		Settings: hl7mllp.Config{Addr: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { runner.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	addr, err := runner.Adapter().(*hl7mllp.Adapter).Addr(wctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mllptest.Dial(context.Background(), addr.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return runner, c
}
