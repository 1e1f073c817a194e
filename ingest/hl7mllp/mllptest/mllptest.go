// Package mllptest is an MLLP client for tests: it sends HL7 v2 frames over a real TCP (or
// TLS) connection and reads the ACKs, as an EPR's interface engine would.
package mllptest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/psgw/psgw/ingest/hl7mllp/hl7"
)

// Client is one connection to an MLLP listener. Not safe for concurrent use.
type Client struct {
	Conn net.Conn
	fr   *hl7.FrameReader
}

// Dial connects to addr; with tlsConfig set, over TLS. The connection's deadline is ctx's.
func Dial(ctx context.Context, addr string, tlsConfig *tls.Config) (*Client, error) {
	var c net.Conn
	var err error
	if tlsConfig != nil {
		d := tls.Dialer{Config: tlsConfig}
		c, err = d.DialContext(ctx, "tcp", addr)
	} else {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	return &Client{Conn: c, fr: hl7.NewFrameReader(c, 0)}, nil
}

// NewClient wraps a connection the caller made (from a chosen local address, say).
func NewClient(c net.Conn) *Client { return &Client{Conn: c, fr: hl7.NewFrameReader(c, 0)} }

// Close closes the connection.
func (c *Client) Close() error { return c.Conn.Close() }

// Ack is the part of an ACK that tests check.
type Ack struct {
	Code    string // MSA-1: AA, AE or AR
	Control string // MSA-2: the acknowledged message's MSH-10
	Text    string // MSA-3
	ERR     bool   // an ERR segment is present
	Raw     string
}

// Send writes msg as one frame and reads one ACK.
func (c *Client) Send(msg []byte) (Ack, error) {
	if err := hl7.WriteFrame(c.Conn, msg); err != nil {
		return Ack{}, err
	}
	return c.ReadAck()
}

// SendRaw writes b as is (for broken framing) and reads one ACK.
func (c *Client) SendRaw(b []byte) (Ack, error) {
	if _, err := c.Conn.Write(b); err != nil {
		return Ack{}, err
	}
	return c.ReadAck()
}

// ReadAck reads and parses one ACK frame.
func (c *Client) ReadAck() (Ack, error) {
	frame, err := c.fr.ReadFrame()
	if err != nil {
		return Ack{}, err
	}
	m, err := hl7.Parse(frame)
	if err != nil {
		return Ack{}, fmt.Errorf("parsing ACK: %w", err)
	}
	msa, ok := m.First("MSA")
	if !ok {
		return Ack{}, fmt.Errorf("ACK without MSA: %q", frame)
	}
	_, hasERR := m.First("ERR")
	return Ack{Code: msa.Field(1).Value(), Control: msa.Field(2).Value(), Text: msa.Field(3).Value(), ERR: hasERR, Raw: string(frame)}, nil
}

// Patient is the PID content of a test message. Every patient in tests is invented; NHS
// numbers must be the published test numbers, which pass Modulus 11.
type Patient struct {
	NHS, Local, DOB, Sex, Ethnicity, Location string
	// Family and Given are PID-5's family and given names; TEST^PATIENT when both are empty.
	Family, Given string
}

// ADT builds an ADT message with CR segment endings. at is EVN-2.
func ADT(event, control string, at time.Time, p Patient) []byte {
	return ADTMerge(event, control, at, p, nil)
}

// ADTMerge builds an ADT message; for A40, prior is MRG-1's patient.
func ADTMerge(event, control string, at time.Time, p Patient, prior *Patient) []byte {
	ts := at.UTC().Format("20060102150405") + "+0000"
	lines := []string{
		"MSH|^~\\&|EPR|RGT|PSGW|RGT|" + ts + "||ADT^" + event + "^ADT_A01|" + control + "|P|2.4",
		"EVN|" + event + "|" + ts,
		"PID|1||" + ids(p) + "||" + name(p) + "||" + p.DOB + "|" + p.Sex + strings.Repeat("|", 14) + p.Ethnicity,
	}
	if p.Location != "" {
		lines = append(lines, "PV1|1|I|"+p.Location+"^BAY1^BED1^RGT")
	}
	if prior != nil {
		lines = append(lines, "MRG|"+ids(*prior))
	}
	return []byte(strings.Join(lines, "\r") + "\r")
}

func name(p Patient) string {
	if p.Family == "" && p.Given == "" {
		return "TEST^PATIENT"
	}
	return p.Family + "^" + p.Given
}

func ids(p Patient) string {
	var reps []string
	if p.NHS != "" {
		reps = append(reps, p.NHS+"^^^NHS^NH")
	}
	if p.Local != "" {
		reps = append(reps, p.Local+"^^^RGT^MR")
	}
	return strings.Join(reps, "~")
}
