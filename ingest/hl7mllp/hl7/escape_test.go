package hl7

import (
	"testing"
)

func TestDecode(t *testing.T) {
	std := defaultDelimiters
	trunc := std
	trunc.Truncation = '#'
	tests := []struct {
		name   string
		d      Delimiters
		latin1 bool
		in     string
		want   string
	}{
		{"plain", std, false, "SMITH", "SMITH"},
		{"field", std, false, `A\F\B`, "A|B"},
		{"component", std, false, `A\S\B`, "A^B"},
		{"subcomponent", std, false, `A\T\B`, "A&B"},
		{"repetition", std, false, `A\R\B`, "A~B"},
		{"escape", std, false, `A\E\B`, `A\B`},
		{"line break", std, false, `LINE1\.br\LINE2`, "LINE1\nLINE2"},
		{"hex ASCII", std, false, `\X414243\`, "ABC"},
		{"hex UTF-8", std, false, `CL\XC389\MENT`, "CLÉMENT"},
		{"hex Latin-1 fallback", std, false, `CL\XC9\MENT`, "CLÉMENT"},
		{"hex in Latin-1 message", std, true, `\XC389\`, "Ã\u0089"},
		{"hex control byte kept", std, false, `A\X00\B`, `A\X00\B`},
		{"hex odd length kept", std, false, `\X414\`, `\X414\`},
		{"hex not hex kept", std, false, `\XZZ\`, `\XZZ\`},
		{"unknown kept", std, false, `\H\BOLD\N\`, `\H\BOLD\N\`},
		{"truncation undeclared kept", std, false, `\P\`, `\P\`},
		{"truncation declared", trunc, false, `A\P\B`, "A#B"},
		{"unterminated kept", std, false, `C:\TEMP`, `C:\TEMP`},
		{"empty sequence kept", std, false, `A\\B`, `A\\B`},
		{"windows path survives", std, false, `C:\path\file`, `C:\path\file`},
		{"several", std, false, `\F\\S\\T\\R\\E\`, `|^&~\`},
		{"custom", Delimiters{'#', '!', '*', '$', '@', 0}, false, `A$F$B$S$C$E$D`, "A#B!C$D"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (codec{d: tt.d, latin1: tt.latin1}).unescape(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	std := defaultDelimiters
	tests := []struct {
		name, in, want string
	}{
		{"plain", "rejected", "rejected"},
		{"delimiters", `a|b^c~d\e&f`, `a\F\b\S\c\R\d\E\e\T\f`},
		{"line breaks", "a\r\nb\nc\rd", `a\.br\b\.br\c\.br\d`},
		{"control bytes", "a\x00b\x1bc\x7f", "a b c "},
		{"UTF-8 kept", "Müller", "Müller"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := std.Encode(tt.in)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, d := range []Delimiters{defaultDelimiters, {'#', '!', '*', '$', '@', '%'}} {
		for _, s := range []string{"", "plain", `|^~\&#!*$@%`, `\F\ literal`, "tab\tok", "Ünïcödé"} {
			if got := d.Decode(d.Encode(s)); got != s {
				t.Errorf("%q with %q: got %q", s, string([]byte{d.Field, d.Component}), got)
			}
		}
	}
}
