package hl7

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"
	"unicode/utf8"
)

// AckCode is the acknowledgment code in MSA-1 (original acknowledgment mode).
type AckCode string

// The acknowledgment codes psgw sends; see the contract, section 3.
const (
	AckAccept AckCode = "AA" // durably stored
	AckError  AckCode = "AE" // could not be stored now; the sender should resend later
	AckReject AckCode = "AR" // cannot be parsed or is not supported; resending will not help
)

// Field lengths that receivers enforce: MSA-3 is ST(80) before v2.5, ERR-8
// is TX(250).
const (
	maxMSA3 = 80
	maxERR  = 250
)

// errorCode is HL7 table 0357 "application internal error": the gateway
// does not tell senders more than that, the text says why.
const errorCode = "207^Application internal error^HL70357"

// BuildACK returns the acknowledgment of msg: MSH with sender and receiver
// swapped, MSH-7 now, MSH-9 ACK^<trigger>^ACK, a new MSH-10, the request's
// processing id, version, charset and delimiters; MSA with code, the
// request's MSH-10 and text; and for AE and AR an ERR segment with the text
// (ERR-3/4/8 from v2.5 on, ERR-1 before). text is escaped, so it may hold
// anything, and is truncated to the field lengths receivers enforce. text
// must not hold patient data. A nil msg gives BuildACKRaw("", ...).
// The ACK is ISO-8859-1 when the request was, else UTF-8.
func BuildACK(msg *Message, code AckCode, text string, now time.Time) []byte {
	if msg == nil || len(msg.segs) == 0 {
		return BuildACKRaw("", code, text, now)
	}
	msh := msg.segs[0]
	raw := func(n int) string { return msh.Field(n).Raw() }
	a := ack{
		d:        msg.c.d,
		encoding: raw(2),
		sender:   raw(5) + string(msg.c.d.Field) + raw(6),
		receiver: raw(3) + string(msg.c.d.Field) + raw(4),
		trigger:  msh.Field(9).Component(2).Raw(),
		procID:   raw(11),
		version:  raw(12),
		charset:  raw(18),
		control:  raw(10),
	}
	b := a.build(code, text, now)
	if msg.c.latin1 {
		return toLatin1(b)
	}
	return b
}

// BuildACKRaw returns an acknowledgment for a frame that could not be parsed
// at all: default delimiters, version 2.5, processing id P, and MSA-2 set to
// controlID, which may be empty. Use SalvageControlID to find it.
func BuildACKRaw(controlID string, code AckCode, text string, now time.Time) []byte {
	d := defaultDelimiters
	a := ack{
		d:        d,
		encoding: `^~\&`,
		sender:   "|",
		receiver: "|",
		control:  d.Encode(controlID),
	}
	return a.build(code, text, now)
}

// ack holds the request's header fields still encoded with d, so they are
// copied into the ACK without decoding and re-encoding.
type ack struct {
	d                                          Delimiters
	encoding, sender, receiver                 string
	trigger, procID, version, charset, control string
}

func (a ack) build(code AckCode, text string, now time.Time) []byte {
	fs := string(a.d.Field)
	var b strings.Builder
	b.Grow(256 + 2*len(text))
	w := func(parts ...string) {
		for _, p := range parts {
			b.WriteString(p)
		}
	}
	version := or(a.version, "2.5")
	msgType := "ACK"
	if a.trigger != "" {
		cs := string(a.d.Component)
		msgType = "ACK" + cs + a.trigger + cs + "ACK"
	}
	w("MSH", fs, a.encoding, fs, a.sender, fs, a.receiver, fs, now.Format("20060102150405-0700"), fs,
		fs, msgType, fs, newControlID(), fs, or(a.procID, "P"), fs, version)
	if a.charset != "" {
		w(strings.Repeat(fs, 6), a.charset)
	}
	w("\rMSA", fs, a.d.Encode(string(code)), fs, a.control, fs, a.d.Encode(truncate(text, maxMSA3)), "\r")
	if code != AckAccept {
		msgText := a.d.Encode(truncate(text, maxERR))
		if atLeast25(version, a.d) {
			cs := string(a.d.Component)
			code := strings.ReplaceAll(errorCode, "^", cs)
			w("ERR", fs, fs, fs, code, fs, "E", fs, fs, fs, fs, msgText, "\r")
		} else {
			// v2.3/2.4 ERR-1 (ELD): segment^sequence^field^code&text&system.
			cs, ss := string(a.d.Component), string(a.d.Subcomponent)
			w("ERR", fs, cs, cs, cs, "207", ss, msgText, ss, "HL70357", "\r")
		}
	}
	return []byte(b.String())
}

// newControlID returns 20 random hex characters: unique without shared
// state, and within MSH-10's ST(20) limit.
func newControlID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// atLeast25 reports whether an encoded MSH-12 names v2.5 or later.
func atLeast25(version string, d Delimiters) bool {
	v, _ := nth(version, d.Component, 0)
	major, minor, _ := strings.Cut(v, ".")
	if major != "2" {
		return allDigits(major) && atoi(major) > 2
	}
	minor, _, _ = strings.Cut(minor, ".")
	return allDigits(minor) && len(minor) < 4 && atoi(minor) >= 5
}

func truncate(s string, runes int) string {
	for i := range s {
		if runes == 0 {
			return s[:i]
		}
		runes--
	}
	return s
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// toLatin1 re-encodes UTF-8 as ISO-8859-1, writing "?" for characters it
// cannot hold.
func toLatin1(b []byte) []byte {
	out := b[:0:0]
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		if r > 0xff {
			r = '?'
		}
		out = append(out, byte(r))
	}
	return out
}

// SalvageControlID returns MSH-10 from the start of a frame that Parse
// refused or that was cut short, so its AR can still carry MSA-2. It returns
// "" when no plausible id is there: only printable ASCII of at most 199
// characters counts, so nothing odd is echoed back.
func SalvageControlID(b []byte) string {
	for len(b) > 0 && (b[0] == '\r' || b[0] == '\n' || b[0] == StartByte) {
		b = b[1:]
	}
	if len(b) < 4 || string(b[:3]) != "MSH" {
		return ""
	}
	line := b
	for i, x := range line {
		if x == '\r' || x == '\n' {
			line = line[:i]
			break
		}
	}
	if len(line) < 4 {
		return ""
	}
	if len(line) > 4096 {
		line = line[:4096]
	}
	s := string(line)
	id, ok := nth(s, s[3], 9)
	if !ok {
		return ""
	}
	if d, err := readDelimiters(line); err == nil {
		id, _ = nth(id, d.Component, 0)
		id = d.Decode(id)
	}
	id = strings.TrimSpace(id)
	if len(id) > 199 {
		return ""
	}
	for i := 0; i < len(id); i++ {
		if id[i] < ' ' || id[i] > '~' {
			return ""
		}
	}
	return id
}
