package hl7

import (
	"errors"
	"strings"
	"testing"
)

func mustParse(t testing.TB, b []byte) *Message {
	t.Helper()
	m, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

func TestParseDelimiters(t *testing.T) {
	tests := []struct {
		name string
		msh  string
		want Delimiters
	}{
		{"standard", `MSH|^~\&|EPR`, Delimiters{'|', '^', '~', '\\', '&', 0}},
		{"custom", `MSH#!*$@#EPR`, Delimiters{'#', '!', '*', '$', '@', 0}},
		{"v2.7 truncation", `MSH|^~\&#|EPR`, Delimiters{'|', '^', '~', '\\', '&', '#'}},
		{"header only", `MSH|^~\&`, Delimiters{'|', '^', '~', '\\', '&', 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, []byte(tt.msh+"\r"))
			if got := m.Delimiters(); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantSeg    string
		wantField  int
		wantReason string
	}{
		{"empty", "", "", 0, "empty message"},
		{"only line endings", "\r\n\r", "", 0, "empty message"},
		{"no MSH", "PID|1||123\rMSH|^~\\&|X\r", "MSH", 0, "no MSH segment"},
		{"batch header", "BHS|^~\\&|X\rMSH|^~\\&|X\r", "MSH", 0, "no MSH segment"},
		{"MSH alone", "MSH", "MSH", 0, "no MSH segment"},
		{"alphanumeric field separator", "MSHA^~\\&|X\r", "MSH", 1, "field separator must be printable ASCII punctuation"},
		{"space field separator", "MSH ^~\\&|X\r", "MSH", 1, "field separator must be printable ASCII punctuation"},
		{"missing MSH-2", "MSH||EPR\r", "MSH", 2, "encoding characters must be 4 or 5 characters"},
		{"MSH-2 too short", "MSH|^~\\|EPR\r", "MSH", 2, "encoding characters must be 4 or 5 characters"},
		{"MSH-2 too long", "MSH|^~\\&#!|EPR\r", "MSH", 2, "encoding characters must be 4 or 5 characters"},
		{"letter in MSH-2", "MSH|^~\\A|EPR\r", "MSH", 2, "encoding characters must be printable ASCII punctuation"},
		{"duplicate encoding character", "MSH|^~\\^|EPR\r", "MSH", 2, "delimiter characters must be distinct"},
		{"field separator repeated in MSH-2", "MSH|^~\\&|EPR\r"[:4] + "^~|&\r", "MSH", 2, "encoding characters must be 4 or 5 characters"},
		{"NUL byte", "MSH|^~\\&|EPR\rPID|1\x00\r", "", 0, "control byte in message: binary data is not HL7"},
		{"control byte", "MSH|^~\\&|EPR\rPID|\x01\x02\r", "", 0, "control byte in message: binary data is not HL7"},
		{"MLLP byte inside", "MSH|^~\\&|EPR\r\x0bPID|1\r", "", 0, "control byte in message: binary data is not HL7"},
		{"invalid UTF-8 declared UTF-8", "MSH|^~\\&|EPR|||||||||||||||UNICODE UTF-8\rPID|1||\xff\xfe\r", "", 0, "invalid UTF-8 although MSH-18 declares UTF-8"},
		{"lowercase segment id", "MSH|^~\\&|EPR\rpid|1\r", "", 0, "invalid segment id"},
		{"long segment id", "MSH|^~\\&|EPR\rPIDX|1\r", "", 0, "invalid segment id"},
		{"short segment id", "MSH|^~\\&|EPR\rPI\r", "", 0, "invalid segment id"},
		{"second MSH", "MSH|^~\\&|EPR\rPID|1\rMSH|^~\\&|EPR\r", "MSH", 0, "more than one MSH segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("got message with %d segments, want error %q", len(m.segs), tt.wantReason)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got %T %v, want *ParseError", err, err)
			}
			if pe.Segment != tt.wantSeg || pe.Field != tt.wantField || pe.Reason != tt.wantReason {
				t.Errorf("got %s/%d/%q, want %s/%d/%q", pe.Segment, pe.Field, pe.Reason, tt.wantSeg, tt.wantField, tt.wantReason)
			}
		})
	}
}

func TestParseErrorText(t *testing.T) {
	tests := []struct {
		err  *ParseError
		want string
	}{
		{&ParseError{Reason: "empty message"}, "hl7: empty message"},
		{&ParseError{Segment: "MSH", Reason: "no MSH segment"}, "hl7 MSH: no MSH segment"},
		{&ParseError{Segment: "PID", Field: 3, Reason: "no patient identifier"}, "hl7 PID-3: no patient identifier"},
		{&ParseError{Line: 4, Reason: "invalid segment id"}, "hl7 segment 4: invalid segment id"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseLineEndings(t *testing.T) {
	cr := strings.TrimRight(string(msgA01v23), "\r")
	tests := []struct {
		name           string
		in             string
		wantNormalised bool
	}{
		{"CR", cr, false},
		{"LF", strings.ReplaceAll(cr, "\r", "\n"), true},
		{"CRLF", strings.ReplaceAll(cr, "\r", "\r\n"), true},
		{"mixed with blank lines", "\n" + strings.Replace(strings.ReplaceAll(cr, "\r", "\r\n"), "\r\n", "\n\n", 1) + "\n\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, []byte(tt.in))
			if got := m.LineEndingsNormalised(); got != tt.wantNormalised {
				t.Errorf("LineEndingsNormalised: got %v, want %v", got, tt.wantNormalised)
			}
			if got := len(m.All()); got != 4 {
				t.Errorf("segments: got %d, want 4", got)
			}
			if got := m.Get("PV1-3"); got != "WARD7" {
				t.Errorf("PV1-3: got %q, want %q", got, "WARD7")
			}
			if strings.ContainsAny(m.Text(), "\n") {
				t.Errorf("Text still has a line feed")
			}
		})
	}
}

func TestParseCharset(t *testing.T) {
	tests := []struct {
		name       string
		in         []byte
		wantLatin1 bool
		wantName   string
	}{
		{"Latin-1 declared", msgA08v24, true, "CLÉMENT"},
		{"Latin-1 undeclared", []byte("MSH|^~\\&|EPR\rPID|1||X||M\xfcLLER\r"), true, "MüLLER"},
		{"UTF-8", []byte("MSH|^~\\&|EPR|||||||||||||||UNICODE UTF-8\rPID|1||X||MÜLLER\r"), false, "MÜLLER"},
		{"UTF-8 misdeclared as 8859/1", []byte("MSH|^~\\&|EPR|||||||||||||||8859/1\rPID|1||X||MÜLLER\r"), false, "MÜLLER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, tt.in)
			if got := m.Latin1(); got != tt.wantLatin1 {
				t.Errorf("Latin1: got %v, want %v", got, tt.wantLatin1)
			}
			if got := m.Get("PID-5"); got != tt.wantName {
				t.Errorf("PID-5: got %q, want %q", got, tt.wantName)
			}
		})
	}
}

func TestParseCopiesInput(t *testing.T) {
	b := append([]byte(nil), msgA01v23...)
	m := mustParse(t, b)
	for i := range b {
		b[i] = 'X'
	}
	if got := m.Get("MSH-10"); got != "MSG00001" {
		t.Errorf("MSH-10 after overwriting the input: got %q, want %q", got, "MSG00001")
	}
}
