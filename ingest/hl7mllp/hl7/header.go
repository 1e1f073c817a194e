package hl7

import (
	"strings"
	"time"
)

// Header is the part of MSH that routing and acknowledging need. Values are
// unescaped first components; use the Message's MSH segment for the rest.
type Header struct {
	SendingApplication   string    // MSH-3
	SendingFacility      string    // MSH-4
	ReceivingApplication string    // MSH-5
	ReceivingFacility    string    // MSH-6
	Time                 time.Time // MSH-7; zero when absent or invalid; UTC when it has no offset
	MessageCode          string    // MSH-9-1, e.g. "ADT"
	TriggerEvent         string    // MSH-9-2, e.g. "A01"
	MessageStructure     string    // MSH-9-3, e.g. "ADT_A01"; often empty before v2.4
	ControlID            string    // MSH-10, the id the ACK's MSA-2 must echo
	ProcessingID         string    // MSH-11, "P" production, "T" training, "D" debugging
	Version              string    // MSH-12, e.g. "2.4"
	Charset              string    // MSH-18, e.g. "UNICODE UTF-8" or "8859/1"; empty when not declared
}

// Header returns the message header.
func (m *Message) Header() Header {
	if len(m.segs) == 0 {
		return Header{}
	}
	msh := m.segs[0]
	v := func(n int) string { return strings.TrimSpace(msh.Field(n).Value()) }
	typ := msh.Field(9)
	h := Header{
		SendingApplication:   v(3),
		SendingFacility:      v(4),
		ReceivingApplication: v(5),
		ReceivingFacility:    v(6),
		MessageCode:          strings.TrimSpace(typ.Component(1).Value()),
		TriggerEvent:         strings.TrimSpace(typ.Component(2).Value()),
		MessageStructure:     strings.TrimSpace(typ.Component(3).Value()),
		ControlID:            v(10),
		ProcessingID:         v(11),
		Version:              v(12),
		Charset:              v(18),
	}
	if t, err := ParseTime(v(7), nil); err == nil {
		h.Time = t
	}
	return h
}
