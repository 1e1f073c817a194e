package hl7

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckEncoding(t *testing.T) {
	msg := func(charset, pid string) []byte {
		return []byte("MSH|^~\\&|EPR|RGT|PSGW|RGT|20250310090000+0000||ADT^A08|C1|P|2.4|||||GBR|" + charset +
			"\rEVN||20250310090000+0000\rPID|1||9434765919^^^NHS^NH||" + pid + "||19650412|F\r")
	}
	const (
		latin1 = "CL\xc9MENT^ANA"     // É in ISO 8859-1
		utf8   = "CL\xc3\x89MENT^ANA" // É in UTF-8
		ascii  = "CLEMENT^ANA"
	)
	for _, tc := range []struct {
		name, charset, pid, def string
		want                    string // part of the error; "" for none
	}{
		{"ascii undeclared, default ascii", "", ascii, CharsetASCII, ""},
		{"latin-1 undeclared, default ascii", "", latin1, CharsetASCII, "byte 129 is not ASCII (MSH-18 is empty, so the default character set ASCII applies"},
		{"utf-8 undeclared, default ascii", "", utf8, CharsetASCII, "not ASCII (MSH-18 is empty"},
		{"latin-1 undeclared, default 8859/1", "", latin1, CharsetLatin1, ""},
		{"utf-8 undeclared, default 8859/1", "", utf8, CharsetLatin1, ""},
		{"latin-1 undeclared, default utf-8", "", latin1, CharsetUTF8, "not valid UTF-8 (MSH-18 is empty, so the default character set UNICODE UTF-8 applies"},
		{"utf-8 undeclared, default utf-8", "", utf8, CharsetUTF8, ""},
		{"latin-1 declared 8859/1", "8859/1", latin1, CharsetASCII, ""},
		{"latin-1 declared ISO IR100", "ISO IR100", latin1, CharsetASCII, ""},
		{"utf-8 declared utf-8", "UNICODE UTF-8", utf8, CharsetASCII, ""},
		{"latin-1 declared utf-8", "UNICODE UTF-8", latin1, CharsetLatin1, "is not valid UTF-8, which MSH-18 declares"},
		{"cut utf-8 declared utf-8", "UNICODE UTF-8", "CL\xc3", CharsetASCII, "not valid UTF-8"},
		{"latin-1 declared ascii", "ASCII", latin1, CharsetLatin1, "is not ASCII, which MSH-18 declares"},
		{"ascii declared unknown", "ISO IR87", ascii, CharsetASCII, ""},
		{"8-bit declared unknown", "ISO IR87", latin1, CharsetLatin1, `not ASCII and MSH-18 declares "ISO IR87", a character set psgw does not read`},
		{"8-bit, unknown default", "", latin1, "EBCDIC", `the default character set (mllp.default_charset) is "EBCDIC"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckEncoding(msg(tc.charset, tc.pid), tc.def)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *ParseError containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "hl7 PID segment 3: byte ") {
				t.Errorf("got %q, want it to name the segment", err)
			}
			for _, leak := range []string{"CL", "\xc9", "9434765919"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("the reason %q quotes the message (%q)", err, leak)
				}
			}
		})
	}
	// Not HL7 at all: left to Parse.
	if err := CheckEncoding([]byte("\xff\xfe"), CharsetASCII); err != nil {
		t.Errorf("not HL7: got %v, want nil (Parse refuses it)", err)
	}
}
