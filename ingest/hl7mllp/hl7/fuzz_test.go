package hl7

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// Seeds beyond these live in testdata/fuzz/<Name>/.
func addMessageSeeds(f *testing.F) {
	for _, tt := range allTriggers {
		f.Add(tt.msg)
	}
}

func FuzzParse(f *testing.F) {
	addMessageSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got %T, want *ParseError", err)
			}
			return
		}
		exercise(m)
		// Whatever was parsed can be acknowledged, and the ACK parses and
		// echoes the control id.
		ack, err := Parse(BuildACK(m, AckReject, "reason | ^ ~ \\ &", time.Unix(0, 0)))
		if err != nil {
			t.Fatalf("ACK does not parse: %v", err)
		}
		if !m.Latin1() {
			if got, want := ack.Get("MSA-2"), m.Get("MSH-10"); got != want {
				t.Fatalf("MSA-2: got %q, want %q", got, want)
			}
		}
		if got := ack.Get("MSA-3"); got != "reason | ^ ~ \\ &" {
			t.Fatalf("MSA-3: got %q", got)
		}
	})
}

// exercise calls every accessor on every position that exists and one past.
func exercise(m *Message) {
	_ = m.Header()
	for _, s := range m.All() {
		for i := 0; i <= s.NumFields()+1; i++ {
			f := s.Field(i)
			_ = f.Value()
			for _, r := range f.Repetitions() {
				for c := 0; c <= r.NumComponents()+1; c++ {
					comp := r.Component(c)
					for sc := 0; sc <= comp.NumSubcomponents()+1; sc++ {
						_ = comp.Subcomponent(sc)
					}
				}
			}
		}
	}
	for _, p := range []string{"MSH-9-2", "PID-3(2)-4-1", "EVN-2", "PV1-3"} {
		_ = m.Get(p)
	}
}

func FuzzExtractADT(f *testing.F) {
	addMessageSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		a, err := ExtractADT(m)
		if err != nil {
			if strings.Contains(err.Error(), "\r") {
				t.Fatalf("error carries message text: %q", err)
			}
			return
		}
		if a.Patient.NHSNumber == "" && len(a.Patient.LocalIDs) == 0 {
			t.Fatal("ADT without identifier")
		}
		if a.Patient.NHSNumber != "" && nhsNumberProblem(a.Patient.NHSNumber) != "" {
			t.Fatal("invalid NHS number accepted")
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	for _, tt := range allTriggers {
		var b bytes.Buffer
		_ = WriteFrame(&b, tt.msg)
		f.Add(b.Bytes(), uint16(64))
	}
	f.Add([]byte("junk\x0bA\x0bB\x1c\r\x0bC\x1cX\x0bD"), uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, maxSize uint16) {
		limit := int(maxSize%512) + 1
		fr := NewFrameReader(bytes.NewReader(data), limit)
		for calls := 0; ; calls++ {
			if calls > len(data)+1 {
				t.Fatal("reader does not make progress")
			}
			b, err := fr.ReadFrame()
			if len(b) > limit || cap(b) > max(limit, 4096) {
				t.Fatalf("frame of %d bytes (capacity %d) with MaxSize %d", len(b), cap(b), limit)
			}
			if bytes.IndexByte(b, StartByte) >= 0 || bytes.IndexByte(b, EndByte) >= 0 {
				t.Fatal("frame holds a framing byte")
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return
			}
			if err == nil {
				// A good frame survives a round trip.
				var w bytes.Buffer
				if err := WriteFrame(&w, b); err != nil {
					t.Fatal(err)
				}
				got, err := NewFrameReader(&w, limit).ReadFrame()
				if err != nil || !bytes.Equal(got, b) {
					t.Fatalf("round trip: got %q, %v; want %q", got, err, b)
				}
			}
		}
	})
}
