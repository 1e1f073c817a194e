package hl7

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var ackNow = time.Date(2024, 3, 15, 10, 30, 5, 0, time.UTC)

func TestBuildACK(t *testing.T) {
	const reason = `bad | data ^ with ~ delimiters \ & more` + "\nsecond line"
	tests := []struct {
		name    string
		req     []byte
		code    AckCode
		text    string
		wantERR map[string]string // path -> value in the ACK
	}{
		{"AA v2.3", msgA01v23, AckAccept, "", nil},
		{"AE v2.5", msgA03v25, AckError, "store unavailable", map[string]string{
			"ERR-3": "207", "ERR-3-3": "HL70357", "ERR-4": "E", "ERR-8": "store unavailable"}},
		{"AR v2.3 escaped", msgA05v23, AckReject, reason, map[string]string{
			"ERR-1-4": "207", "ERR-1-4-2": strings.ReplaceAll(reason, "\n", "\n"), "ERR-1-4-3": "HL70357"}},
		{"AR v2.5 escaped", msgA40v25, AckReject, reason, map[string]string{"ERR-8": reason}},
		{"AR custom delimiters", msgCustom, AckReject, "a#b!c", map[string]string{"ERR-1-4-2": "a#b!c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := mustParse(t, tt.req)
			raw := BuildACK(req, tt.code, tt.text, ackNow)
			ack := mustParse(t, raw)
			if ack.Delimiters() != req.Delimiters() {
				t.Errorf("delimiters: got %+v, want the request's %+v", ack.Delimiters(), req.Delimiters())
			}
			rh, ah := req.Header(), ack.Header()
			checks := []struct{ what, got, want string }{
				{"MSH-3", ah.SendingApplication, rh.ReceivingApplication},
				{"MSH-4", ah.SendingFacility, rh.ReceivingFacility},
				{"MSH-5", ah.ReceivingApplication, rh.SendingApplication},
				{"MSH-6", ah.ReceivingFacility, rh.SendingFacility},
				{"MSH-7", ack.Get("MSH-7"), "20240315103005+0000"},
				{"MSH-9", ack.Get("MSH-9"), "ACK"},
				{"MSH-9-2", ah.TriggerEvent, rh.TriggerEvent},
				{"MSH-9-3", ah.MessageStructure, "ACK"},
				{"MSH-11", ah.ProcessingID, rh.ProcessingID},
				{"MSH-12", ah.Version, rh.Version},
				{"MSH-18", ah.Charset, rh.Charset},
				{"MSA-1", ack.Get("MSA-1"), string(tt.code)},
				{"MSA-2", ack.Get("MSA-2"), rh.ControlID},
				{"MSA-3", ack.Get("MSA-3"), truncate(tt.text, maxMSA3)},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: got %q, want %q", c.what, c.got, c.want)
				}
			}
			if ah.ControlID == "" || ah.ControlID == rh.ControlID || len(ah.ControlID) > 20 {
				t.Errorf("MSH-10: got %q, want a new id of at most 20 characters", ah.ControlID)
			}
			if tt.wantERR == nil {
				if _, ok := ack.First("ERR"); ok {
					t.Error("AA has an ERR segment")
				}
			}
			for path, want := range tt.wantERR {
				if got := ack.Get(path); got != want {
					t.Errorf("%s: got %q, want %q", path, got, want)
				}
			}
			if n := len(ack.All()); n > 3 {
				t.Errorf("got %d segments: the text broke the structure", n)
			}
		})
	}
}

func TestBuildACKNewControlIDs(t *testing.T) {
	req := mustParse(t, msgA01v23)
	a := mustParse(t, BuildACK(req, AckAccept, "", ackNow)).Get("MSH-10")
	b := mustParse(t, BuildACK(req, AckAccept, "", ackNow)).Get("MSH-10")
	if a == b {
		t.Errorf("two ACKs share control id %q", a)
	}
}

func TestBuildACKLatin1(t *testing.T) {
	req := mustParse(t, []byte("MSH|^~\\&|EPR|H\xd4PITAL|PSGW|RGT|20240315103000||ADT^A08|M1|P|2.4|||||FRA|8859/1\rPID|1||X1^^^RGT^MR\r"))
	raw := BuildACK(req, AckReject, "refusé €", ackNow)
	if utf8.Valid(raw) {
		t.Fatalf("ACK to a Latin-1 message is UTF-8")
	}
	if !bytes.Contains(raw, []byte("|H\xd4PITAL|")) {
		t.Errorf("receiving facility not echoed in Latin-1: %q", raw)
	}
	ack := mustParse(t, raw)
	if got, want := ack.Get("MSA-3"), "refusé ?"; got != want {
		t.Errorf("MSA-3: got %q, want %q", got, want)
	}
}

func TestBuildACKTruncatesText(t *testing.T) {
	long := strings.Repeat("é|", 200)
	ack := mustParse(t, BuildACK(mustParse(t, msgA03v25), AckReject, long, ackNow))
	if got := utf8.RuneCountInString(ack.Get("MSA-3")); got != maxMSA3 {
		t.Errorf("MSA-3: got %d characters, want %d", got, maxMSA3)
	}
	if got := utf8.RuneCountInString(ack.Get("ERR-8")); got != maxERR {
		t.Errorf("ERR-8: got %d characters, want %d", got, maxERR)
	}
}

func TestBuildACKRaw(t *testing.T) {
	tests := []struct {
		name, control, text string
	}{
		{"no control id", "", "no MSH segment"},
		{"salvaged id", "MSG00001", "hl7: control byte in message"},
		{"id with delimiters", `A|B^C\D`, "x|y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ack := mustParse(t, BuildACKRaw(tt.control, AckReject, tt.text, ackNow))
			for path, want := range map[string]string{
				"MSH-9": "ACK", "MSH-11": "P", "MSH-12": "2.5", "MSA-1": "AR",
				"MSA-2": tt.control, "MSA-3": tt.text, "ERR-8": tt.text, "ERR-4": "E",
			} {
				if got := ack.Get(path); got != want {
					t.Errorf("%s: got %q, want %q", path, got, want)
				}
			}
		})
	}
	if got := mustParse(t, BuildACK(nil, AckError, "x", ackNow)).Get("MSA-1"); got != "AE" {
		t.Errorf("BuildACK(nil): MSA-1 got %q, want AE", got)
	}
}

func TestSalvageControlID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"valid", string(msgA01v23), "MSG00001"},
		{"binary after header", "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|ID42|P|2.4\rPID|\x00\x01\r", "ID42"},
		{"with start byte", "\x0bMSH|^~\\&|A|B|C|D|20240101||ADT^A01|ID42|P|2.4", "ID42"},
		{"custom delimiters", string(msgCustom), "MSG00010"},
		{"bad encoding characters", "MSH|^^^^|A|B|C|D|20240101||ADT^A01|ID7|P|2.4", "ID7"},
		{"escaped", `MSH|^~\&|A|B|C|D|20240101||ADT^A01|ID\F\9|P`, "ID|9"},
		{"truncated header", "MSH|^~\\&|A|B|C", ""},
		{"no MSH", "PID|1|2|3|4|5|6|7|8|9|10|11", ""},
		{"MSH alone", "MSH\r", ""},
		{"control bytes in id", "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|ID\x01|P", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SalvageControlID([]byte(tt.in)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAtLeast25(t *testing.T) {
	for v, want := range map[string]bool{"2.3": false, "2.3.1": false, "2.4": false, "2.5": true, "2.5.1": true, "2.6": true, "2.10": true, "3": true, "": false, "x": false, "2.5^GBR": true} {
		if got := atLeast25(v, defaultDelimiters); got != want {
			t.Errorf("%q: got %v, want %v", v, got, want)
		}
	}
}
