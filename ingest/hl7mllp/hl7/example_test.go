package hl7_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/psgw/psgw/ingest/hl7mllp/hl7"
)

// The loop an MLLP listener runs for each connection: one ACK per frame,
// with MSA-2 set to the frame's MSH-10 whenever it can be found.
func Example() {
	var conn, replies bytes.Buffer // stand in for the two directions of a net.Conn
	_ = hl7.WriteFrame(&conn, []byte("MSH|^~\\&|EPR|RGT|PSGW|RGT|20240315103000||ADT^A01|MSG1|P|2.4\r"+
		"PID|1||9434765919^^^NHS^NH||SMITH^JANE||19650412|F\r"))
	_ = hl7.WriteFrame(&conn, []byte("MSH|^~\\&|LAB|RGT|PSGW|RGT|20240315103000||ORU^R01|MSG2|P|2.4\r"))

	now := time.Date(2024, 3, 15, 10, 30, 5, 0, time.UTC)
	fr := hl7.NewFrameReader(&conn, hl7.DefaultMaxFrameSize)
	for {
		frame, err := fr.ReadFrame()
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return // connection closed
		case errors.Is(err, hl7.ErrJunk):
			continue // count it; there is nothing to acknowledge
		case err != nil:
			// A broken frame: ErrTooLarge, ErrBadTrailer, ErrStartInFrame.
			_ = hl7.WriteFrame(&replies, hl7.BuildACKRaw(hl7.SalvageControlID(frame), hl7.AckReject, err.Error(), now))
			continue
		}
		msg, err := hl7.Parse(frame)
		if err != nil {
			_ = hl7.WriteFrame(&replies, hl7.BuildACKRaw(hl7.SalvageControlID(frame), hl7.AckReject, err.Error(), now))
			continue
		}
		adt, err := hl7.ExtractADT(msg)
		if err != nil {
			fmt.Println(err)
			_ = hl7.WriteFrame(&replies, hl7.BuildACK(msg, hl7.AckReject, err.Error(), now))
			continue
		}
		// Store adt durably, then acknowledge.
		fmt.Println(adt.Event, adt.DateOfBirth, adt.Sex)
		_ = hl7.WriteFrame(&replies, hl7.BuildACK(msg, hl7.AckAccept, "", now))
	}
	// Output:
	// A01 1965-04-12 female
	// hl7: unsupported message type: ORU^R01
}
