package hl7

import (
	"errors"
	"strconv"
	"strings"
)

// Framing errors returned by FrameReader.ReadFrame. After each of them the
// reader has resynchronised: the next ReadFrame starts at the next start
// byte, so the caller keeps reading from the same connection.
var (
	// ErrJunk means bytes other than whitespace arrived outside a frame and
	// were skipped. There is no message and no control id: count it and keep
	// reading. Do not send an ACK for it, because the sender would take that
	// ACK as the answer to its next message.
	ErrJunk = errors.New("hl7: bytes outside an MLLP frame skipped")

	// ErrStartInFrame means a stray start byte arrived inside a frame (one
	// not followed by "MSH", such as a 0x0B nested in a name). The frame was
	// read on to the end block its sender gave it and is discarded; the
	// returned bytes are its content without the stray bytes, enough to
	// salvage a control id with SalvageControlID. Reply one AR and keep
	// reading.
	ErrStartInFrame = errors.New("hl7: MLLP start byte inside a frame")

	// ErrNoEndBlock means a frame was abandoned without its end block: a
	// start byte followed by "MSH" began the next message first. Its sender
	// never ended it, so it gets no ACK (one would be taken as the answer to
	// the next message); the returned bytes are what was kept of it. Count
	// it and keep reading: the next call returns the new message.
	ErrNoEndBlock = errors.New("hl7: MLLP frame abandoned before its end block")

	// ErrTooLarge means a frame was longer than FrameReader.MaxSize. It was
	// discarded without being buffered; the returned bytes are its first
	// MaxSize bytes, for SalvageControlID. Reply AR and keep reading.
	ErrTooLarge = errors.New("hl7: MLLP frame larger than the size limit")

	// ErrBadTrailer means the end byte 0x1C was not followed by 0x0D. The
	// frame is discarded; the returned bytes are its content, for
	// SalvageControlID. Reply AR and keep reading.
	ErrBadTrailer = errors.New("hl7: MLLP end byte not followed by carriage return")

	// ErrFramingByte is returned by WriteFrame for a message that contains
	// an MLLP start or end byte and so cannot be framed. It is a bug in the
	// caller: nothing was written.
	ErrFramingByte = errors.New("hl7: message contains an MLLP framing byte")

	// ErrUnsupported means ExtractADT was given a message type or trigger
	// event that psgw does not handle. It is wrapped with the type, e.g.
	// "ADT^A17". Reply AR: resending will not help.
	ErrUnsupported = errors.New("hl7: unsupported message type")
)

// ParseError reports a message that breaks HL7 syntax or one of the rules
// this package enforces on a field. Reply AR: resending the same message will
// not help. Reason never contains a value taken from the message, so the
// error is safe to log and to put in an ACK.
type ParseError struct {
	Segment string // segment name, e.g. "PID"; empty when the segment is unknown
	Field   int    // HL7 field number (1-based); 0 when the error is about the segment or message
	Line    int    // 1-based segment number in the message; 0 when not relevant
	Reason  string // the rule that was broken, lowercase
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("hl7")
	if e.Segment != "" {
		b.WriteByte(' ')
		b.WriteString(e.Segment)
		if e.Field > 0 {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(e.Field))
		}
	}
	if e.Line > 0 {
		b.WriteString(" segment ")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}
