package contract

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------------------------
// MLLP client

type mconn struct {
	net.Conn
	r *bufio.Reader
}

func dialMLLP(t *testing.T, addr string) *mconn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial MLLP %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &mconn{Conn: c, r: bufio.NewReaderSize(c, 1<<16)}
}

func frame(msg string) []byte {
	b := make([]byte, 0, len(msg)+3)
	b = append(b, 0x0b)
	b = append(b, msg...)
	return append(b, 0x1c, 0x0d)
}

func (m *mconn) send(t *testing.T, raw []byte) {
	t.Helper()
	_ = m.SetWriteDeadline(time.Now().Add(20 * time.Second))
	if _, err := m.Write(raw); err != nil {
		t.Fatalf("MLLP write: %v", err)
	}
}

// readACK reads one framed message: 0x0B, message, 0x1C 0x0D.
func (m *mconn) readACK(timeout time.Duration) (string, error) {
	_ = m.SetReadDeadline(time.Now().Add(timeout))
	for {
		b, err := m.r.ReadByte()
		if err != nil {
			return "", fmt.Errorf("waiting for the ACK's start byte: %w", err)
		}
		if b == 0x0b {
			break
		}
	}
	var buf []byte
	for {
		b, err := m.r.ReadByte()
		if err != nil {
			return string(buf), fmt.Errorf("ACK cut short: %w", err)
		}
		if b == 0x1c {
			nb, err := m.r.ReadByte()
			if err != nil {
				return string(buf), fmt.Errorf("ACK cut short after 0x1C: %w", err)
			}
			if nb == 0x0d {
				return string(buf), nil
			}
			buf = append(buf, b, nb)
			continue
		}
		buf = append(buf, b)
	}
}

// exchange sends one framed message and reads its ACK.
func exchange(t *testing.T, m *mconn, msg string) string {
	t.Helper()
	m.send(t, frame(msg))
	ack, err := m.readACK(15 * time.Second)
	if err != nil {
		t.Fatalf("no ACK: %v", err)
	}
	return ack
}

// msa returns MSA-1 (acknowledgment code), MSA-2 (control id) and MSA-3 (text).
func msa(ack string) (code, ctrl, text string) {
	for _, seg := range strings.FieldsFunc(ack, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if strings.HasPrefix(seg, "MSA|") {
			f := strings.Split(seg, "|")
			get := func(i int) string {
				if i < len(f) {
					return f[i]
				}
				return ""
			}
			return get(1), get(2), get(3)
		}
	}
	return "", "", ""
}

// reason is the rejection reason: MSA-3 or an ERR segment.
func reason(ack string) string {
	_, _, text := msa(ack)
	if strings.TrimSpace(text) != "" {
		return text
	}
	for _, seg := range strings.Split(ack, "\r") {
		if strings.HasPrefix(seg, "ERR|") && len(strings.Trim(seg, "ERR|^&~ ")) > 0 {
			return seg
		}
	}
	return ""
}

func checkACK(t *testing.T, ack, wantCode, wantCtrl string) {
	t.Helper()
	if !strings.HasPrefix(ack, "MSH|") {
		t.Errorf("ACK does not start with an MSH segment: %q", ack)
	}
	code, ctrl, _ := msa(ack)
	if code != wantCode {
		t.Errorf("MSA-1 %q, want %s; ACK %q", code, wantCode, ack)
	}
	if ctrl != wantCtrl {
		t.Errorf("MSA-2 %q, want MSH-10 %q; ACK %q", ctrl, wantCtrl, ack)
	}
	if wantCode == "AR" && reason(ack) == "" {
		t.Errorf("AR without a reason in MSA-3 or ERR: %q", ack)
	}
}

// adtMessage builds an ADT message with \r segment separators.
func adtMessage(trigger, ctrl, pid string, extra ...string) string {
	segs := []string{
		"MSH|^~\\&|PAS|RRK|PSGW|RRK|20250502101500||ADT^" + trigger + "|" + ctrl + "|P|2.4",
		"EVN|" + trigger + "|20250502101500",
		pid,
		"PV1|1|I|WARD1^^^RRK",
	}
	segs = append(segs, extra...)
	return strings.Join(segs, "\r") + "\r"
}

// pidFor builds a PID segment naming a patient by NHS number and local id.
func pidFor(nhs, lpid, family, given, dob, sex string) string {
	return fmt.Sprintf("PID|1||%s^^^NHS^NH~%s^^^RRK^MR||%s^%s||%s|%s|||%s^^LEEDS^^%s||%s",
		nhs, lpid, family, given, strings.ReplaceAll(dob, "-", ""), sex, streetEnr, postEnr, phoneEnr)
}

// pidPlain is a patient the tests do not care about.
func pidPlain() string {
	return "PID|1||TMP-" + uid("P") + "^^^RRK^MR||TESTPATIENT^ALEX||19800101|U"
}

// ---------------------------------------------------------------------------------------------

// §3: AA, with MSA-2 = MSH-10, for every ADT event the contract names; all on one connection.
func TestMLLPAcceptsADTEvents(t *testing.T) {
	e := shared(t)
	m := dialMLLP(t, e.gw.mllp)
	for _, trig := range []string{"A01", "A02", "A03", "A04", "A05", "A08", "A28", "A31", "A40"} {
		ctrl := "C" + trig + "-" + uid("m")
		var extra []string
		if trig == "A40" {
			extra = append(extra, "MRG|OLD-"+uid("M")+"^^^RRK^MR")
		}
		ack := exchange(t, m, adtMessage(trig, ctrl, pidPlain(), extra...))
		t.Run(trig, func(t *testing.T) { checkACK(t, ack, "AA", ctrl) })
	}
}

// §3: AR with a reason for what cannot be parsed or is not supported; the connection stays
// usable afterwards.
func TestMLLPRejectsBadMessages(t *testing.T) {
	e := shared(t)
	valid := func(ctrl string) string { return adtMessage("A08", ctrl, pidPlain()) }
	cases := []struct {
		name, msg, ctrl string
	}{
		{"no MSH segment", "EVN|A08|20250502101500\rPID|1||X1^^^RRK^MR||DOE^JO||19800101|M\r", ""},
		{"junk text", "hello, this is not HL7", ""},
		{"empty frame", "", ""},
		{"MSH only", "MSH|", ""},
		{"binary junk with NULs", "\x00\x01\x02\x03\xff\xfe\x00MSH\x00|\x7f", ""},
		{"unsupported type ORU^R01", strings.Replace(valid("ORU-1"), "ADT^A08", "ORU^R01", 1), "ORU-1"},
		{"unsupported ADT^A99", strings.Replace(valid("A99-1"), "ADT^A08", "ADT^A99", 1), "A99-1"},
		{"no message type", strings.Replace(valid("NOTYPE-1"), "ADT^A08", "", 1), "NOTYPE-1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := dialMLLP(t, e.gw.mllp)
			ack := exchange(t, m, c.msg)
			checkACK(t, ack, "AR", c.ctrl)
			// The same connection still takes a good message.
			ctrl := uid("AFTER")
			checkACK(t, exchange(t, m, valid(ctrl)), "AA", ctrl)
		})
	}
	e.gw.healthy(t)
}

// §3: framing edge cases.
func TestMLLPFraming(t *testing.T) {
	e := shared(t)
	t.Run("segments ending in \\n get one ACK naming the message", func(t *testing.T) {
		m := dialMLLP(t, e.gw.mllp)
		ctrl := uid("LF")
		msg := strings.ReplaceAll(adtMessage("A08", ctrl, pidPlain()), "\r", "\n")
		ack := exchange(t, m, msg)
		code, got, _ := msa(ack)
		if got != ctrl {
			t.Errorf("MSA-2 %q, want %q; ACK %q", got, ctrl, ack)
		}
		if code != "AA" && code != "AR" {
			t.Errorf("MSA-1 %q: a message with \\n separators is either taken (AA) or refused (AR); ACK %q", code, ack)
		}
		if code == "AR" && reason(ack) == "" {
			t.Errorf("AR without a reason: %q", ack)
		}
	})
	t.Run("bytes before the start byte are skipped", func(t *testing.T) {
		m := dialMLLP(t, e.gw.mllp)
		ctrl := uid("PRE")
		m.send(t, append([]byte("noise before the frame\r\n"), frame(adtMessage("A08", ctrl, pidPlain()))...))
		ack, err := m.readACK(15 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		checkACK(t, ack, "AA", ctrl)
	})
	t.Run("start byte inside a message", func(t *testing.T) {
		m := dialMLLP(t, e.gw.mllp)
		first, second := uid("CUT"), uid("NEXT")
		cut := adtMessage("A08", first, pidPlain())
		raw := append([]byte{0x0b}, cut[:len(cut)/2]...)
		raw = append(raw, frame(adtMessage("A08", second, pidPlain()))...)
		m.send(t, raw)
		gotSecond := false
		for i := 0; i < 2 && !gotSecond; i++ {
			ack, err := m.readACK(10 * time.Second)
			if err != nil {
				t.Fatalf("ACK %d: %v", i+1, err)
			}
			code, ctrl, _ := msa(ack)
			switch ctrl {
			case second:
				gotSecond = true
				if code != "AA" {
					t.Errorf("the complete message after the cut one: MSA-1 %q, want AA", code)
				}
			default:
				if code == "AA" {
					t.Errorf("the message cut short by a new start byte was acknowledged AA: %q", ack)
				}
			}
		}
		if !gotSecond {
			t.Errorf("no ACK for the complete message sent after a cut one")
		}
	})
	t.Run("a frame split into many small writes", func(t *testing.T) {
		m := dialMLLP(t, e.gw.mllp)
		ctrl := uid("SPLIT")
		raw := frame(adtMessage("A08", ctrl, pidPlain()))
		for i := 0; i < len(raw); i += 7 {
			m.send(t, raw[i:min(i+7, len(raw))])
			time.Sleep(time.Millisecond) // separate writes are the point: pacing, not a wait
		}
		ack, err := m.readACK(15 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		checkACK(t, ack, "AA", ctrl)
	})
	t.Run("several messages in one write", func(t *testing.T) {
		m := dialMLLP(t, e.gw.mllp)
		var raw []byte
		var ctrls []string
		for i := 0; i < 5; i++ {
			c := uid(fmt.Sprintf("MULTI%d", i))
			ctrls = append(ctrls, c)
			raw = append(raw, frame(adtMessage("A08", c, pidPlain()))...)
		}
		m.send(t, raw)
		for i, c := range ctrls {
			ack, err := m.readACK(15 * time.Second)
			if err != nil {
				t.Fatalf("ACK %d of %d: %v", i+1, len(ctrls), err)
			}
			checkACK(t, ack, "AA", c)
		}
	})
	t.Run("oversize message gets AR", func(t *testing.T) {
		m := dialMLLP(t, e.gw.mllp)
		ctrl := uid("HUGE")
		msg := adtMessage("A08", ctrl, pidPlain(), "NTE|1||"+strings.Repeat("a", 1<<20+512))
		m.send(t, frame(msg))
		ack, err := m.readACK(30 * time.Second)
		if err != nil {
			t.Fatalf("no ACK for an oversize message: %v", err)
		}
		checkACK(t, ack, "AR", ctrl)
	})
	t.Run("a message that can never be stored is not answered AE", func(t *testing.T) {
		// 1,048,576 bytes: the default limit (a larger frame gets AR), so not larger. Whatever
		// the gateway decides, AE ("cannot be stored right now; resend later") would make the
		// EPR resend it forever.
		ctrl := uid("EDGE")
		head := adtMessage("A08", ctrl, pidPlain()) + "NTE|1||"
		msg := head + strings.Repeat("b", 1<<20-len(head)-1) + "\r"
		for attempt := 1; attempt <= 2; attempt++ {
			m := dialMLLP(t, e.gw.mllp)
			m.send(t, frame(msg))
			ack, err := m.readACK(30 * time.Second)
			if err != nil {
				t.Fatalf("no ACK for a %d-byte message: %v", len(msg), err)
			}
			code, got, _ := msa(ack)
			if got != ctrl {
				t.Errorf("MSA-2 %q, want %q", got, ctrl)
			}
			if code != "AE" {
				return
			}
			if attempt == 2 {
				t.Errorf("a %d-byte ADT message was answered AE twice (%q): it can never be stored, so it should be AA or AR, not 'resend later'", len(msg), reason(ack))
			}
			time.Sleep(time.Second) // a sender resends later after AE, as the contract asks: pacing
		}
	})
	e.gw.healthy(t)
}

// §3: a peer that connects and sends nothing, or stops mid-frame, does not hold up others.
func TestMLLPSilentPeers(t *testing.T) {
	e := shared(t)
	dialMLLP(t, e.gw.mllp) // connects and never sends anything
	half := dialMLLP(t, e.gw.mllp)
	half.send(t, []byte("\x0bMSH|^~\\&|PAS|RRK|PSGW|RRK|2025"))
	// A black box shows no sign that the half frame was read: give it the time to arrive, so
	// that the next connection comes after both silent peers are in place.
	time.Sleep(200 * time.Millisecond)
	m := dialMLLP(t, e.gw.mllp)
	ctrl := uid("BUSY")
	start := time.Now()
	checkACK(t, exchange(t, m, adtMessage("A08", ctrl, pidPlain())), "AA", ctrl)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ACK took %s while other peers were silent", d)
	}
	e.gw.healthy(t)
}

// patientInfo returns the inner extensions (url → value) of the first contained Patient.
func patientInfo(res map[string]any) map[string]any {
	out := map[string]any{}
	contained, _ := res["contained"].([]any)
	for _, c := range contained {
		cm, _ := c.(map[string]any)
		if cm["resourceType"] != "Patient" {
			continue
		}
		exts, _ := cm["extension"].([]any)
		for _, e := range exts {
			em, _ := e.(map[string]any)
			inner, _ := em["extension"].([]any)
			for _, i := range inner {
				im, _ := i.(map[string]any)
				u, _ := im["url"].(string)
				for k, v := range im {
					if strings.HasPrefix(k, "value") {
						out[u] = v
					}
				}
			}
		}
		break
	}
	return out
}

// §3 and §6: demographics from ADT enrich incidents that name the patient by NHS number or
// local patient id: age and sex reach the national service, identifiers do not.
func TestMLLPEnrichesIncidents(t *testing.T) {
	e := shared(t)
	m := dialMLLP(t, e.gw.mllp)
	// Patient 1: registered once.
	ctrl := uid("ENR")
	checkACK(t, exchange(t, m, adtMessage("A28", ctrl, pidFor(nhsEnr, lpidEnr, familyEnr, givenEnr, dobEnr, "M"))), "AA", ctrl)
	// Patient 2: registered female, then corrected to male with another date of birth.
	ctrl = uid("ENR")
	checkACK(t, exchange(t, m, adtMessage("A28", ctrl, pidFor(nhsEnr2, lpidEnr2, family2, given2, "1990-01-01", "F"))), "AA", ctrl)
	ctrl = uid("ENR")
	checkACK(t, exchange(t, m, adtMessage("A08", ctrl, pidFor(nhsEnr2, lpidEnr2, family2, given2, dobEnr2, "M"))), "AA", ctrl)

	cases := []struct {
		name    string
		patient map[string]any
		control map[string]any
	}{
		{"by NHS number", map[string]any{"nhs_number": nhsEnr, "physical_harm": "low"},
			map[string]any{"date_of_birth": dobEnr, "sex": "male", "physical_harm": "low"}},
		{"by local patient id", map[string]any{"local_patient_id": lpidEnr, "physical_harm": "low"},
			map[string]any{"date_of_birth": dobEnr, "sex": "male", "physical_harm": "low"}},
		{"after an A08 update", map[string]any{"nhs_number": nhsEnr2, "physical_harm": "low"},
			map[string]any{"date_of_birth": dobEnr2, "sex": "male", "physical_harm": "low"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkEnriched(t, e.gw, e.sim, c.patient, c.control) })
	}
	if bytes.Contains(e.sim.eventsRaw(t), []byte(familyEnr)) {
		t.Errorf("a patient's name reached the simulator")
	}
}

// deliverPatient posts an incident naming one patient, waits for its delivery and returns the
// delivered Patient information.
func deliverPatient(t *testing.T, g *gateway, s *simProc, patient map[string]any) (map[string]any, string) {
	t.Helper()
	id := uid("ENRINC")
	inc := incident(id)
	inc["patients"] = []any{patient}
	checkAccepted(t, g.postIncident(t, inc))
	rec := g.waitSettled(t, "datix", id)
	if rec.State != "delivered" {
		t.Fatalf("incident %s naming patient %v: state %s (%s), want delivered", id, patient, rec.State, rec.LastError)
	}
	ev, ok := s.eventByNationalID(t, rec.NationalID)
	if !ok {
		t.Fatalf("incident %s is not at the simulator", id)
	}
	assertNoIdentifiers(t, "the AdverseEvent delivered for "+id, string(ev.raw))
	return patientInfo(ev.resource()), id
}

// checkEnriched wants the incident naming patient delivered with the same age and sex as the
// control incident that gives date of birth and sex directly.
func checkEnriched(t *testing.T, g *gateway, s *simProc, patient, control map[string]any) {
	t.Helper()
	want, _ := deliverPatient(t, g, s, control)
	got, id := deliverPatient(t, g, s, patient)
	for _, k := range []string{"AgeAtTimeOfIncidentDays", "Gender"} {
		if want[k] == nil {
			t.Fatalf("control incident with date_of_birth and sex carries no %s: %v", k, want)
		}
		if fmt.Sprint(got[k]) != fmt.Sprint(want[k]) {
			t.Errorf("%s: %s = %v at the national service, want %v (as for the same patient given by date of birth and sex)", id, k, got[k], want[k])
		}
	}
}
