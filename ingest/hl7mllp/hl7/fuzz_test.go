package hl7

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
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
	// The adapter's framing corpus (ingest/hl7mllp/testdata/corpus), each file alone.
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "corpus", "*.*"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil && !strings.HasSuffix(name, ".txt") && !strings.HasSuffix(name, ".md") {
			f.Add(b, uint16(200))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, maxSize uint16) {
		limit := int(maxSize%512) + 1
		whole := readFrames(t, bytes.NewReader(data), limit, len(data))
		byByte := readFrames(t, iotest.OneByteReader(bytes.NewReader(data)), limit, len(data))
		// However the reads are cut, the same frames are answered, with the same content:
		// what a sender is told does not depend on how TCP delivered its bytes.
		if len(whole) != len(byByte) {
			t.Fatalf("answered frames: %d read whole, %d byte by byte", len(whole), len(byByte))
		}
		for i := range whole {
			if whole[i].msg != byByte[i].msg || whole[i].err != byByte[i].err {
				t.Fatalf("frame %d: %q, %v read whole; %q, %v byte by byte", i, whole[i].msg, whole[i].err, byByte[i].msg, byByte[i].err)
			}
		}
		// Each answered frame ended with an end byte of its own: never more answers than
		// end bytes.
		if n := bytes.Count(data, []byte{EndByte}); len(whole) > n {
			t.Fatalf("%d frames answered for %d end bytes", len(whole), n)
		}
		for _, fr := range whole {
			if fr.err == nil {
				// A good frame survives a round trip.
				var w bytes.Buffer
				if err := WriteFrame(&w, []byte(fr.msg)); err != nil {
					t.Fatal(err)
				}
				got, err := NewFrameReader(&w, limit).ReadFrame()
				if err != nil || string(got) != fr.msg {
					t.Fatalf("round trip: got %q, %v; want %q", got, err, fr.msg)
				}
			}
		}
	})
}

// readFrames reads r to its end and returns the frames a listener answers: good ones and
// those reported ErrStartInFrame, ErrTooLarge or ErrBadTrailer. It fails t if the reader
// stalls, returns a frame over limit, or one holding a framing byte.
func readFrames(t *testing.T, r io.Reader, limit, n int) []frameResult {
	fr := NewFrameReader(r, limit)
	var out []frameResult
	for calls := 0; ; calls++ {
		if calls > n+1 {
			t.Fatal("reader does not make progress")
		}
		b, err := fr.ReadFrame()
		if len(b) > limit || cap(b) > max(limit, 4096) {
			t.Fatalf("frame of %d bytes (capacity %d) with MaxSize %d", len(b), cap(b), limit)
		}
		if bytes.IndexByte(b, StartByte) >= 0 || bytes.IndexByte(b, EndByte) >= 0 {
			t.Fatal("frame holds a framing byte")
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return out
		case errors.Is(err, ErrJunk), errors.Is(err, ErrNoEndBlock):
		case err == nil, errors.Is(err, ErrStartInFrame), errors.Is(err, ErrTooLarge), errors.Is(err, ErrBadTrailer):
			out = append(out, frameResult{string(b), err})
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
}

// FuzzEachEndedFrameAnsweredOnce builds a stream as a well-behaved sender with bad data
// would: frames of any bytes (stray start bytes included, but no end byte and no start byte
// followed by MSH) each ended with 0x1C 0x0D, with any bytes but start bytes between them.
// Every frame is answered exactly once, in order, and one with no stray start byte within
// the limit is read as sent (docs/adapters.md, "Framing").
func FuzzEachEndedFrameAnsweredOnce(f *testing.F) {
	f.Add([]byte("MSH|a\xffjunk\xffMSH|b\x0bPID\xff\x1c\r"), uint16(64))
	f.Add([]byte("\xffMSH|x\x0b\x0b\x0b\xff\xff\xffMSH|y"), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, maxSize uint16) {
		limit := int(maxSize%512) + 1
		var stream bytes.Buffer
		var frames [][]byte
		for i, piece := range bytes.Split(data, []byte{0xff}) {
			if i%2 == 0 {
				stream.Write(bytes.ReplaceAll(piece, []byte{StartByte}, nil)) // between frames
				continue
			}
			payload := bytes.ReplaceAll(piece, []byte{EndByte}, nil)
			payload = bytes.ReplaceAll(payload, []byte("\x0bMSH"), []byte("\x0bMSX"))
			frames = append(frames, payload)
			stream.WriteByte(StartByte)
			stream.Write(payload)
			stream.Write([]byte{EndByte, trailerCR})
		}
		got := readFrames(t, bytes.NewReader(stream.Bytes()), limit, stream.Len())
		if len(got) != len(frames) {
			t.Fatalf("%d frames sent, %d answered", len(frames), len(got))
		}
		for i, p := range frames {
			if bytes.IndexByte(p, StartByte) < 0 && len(p) <= limit && (got[i].err != nil || got[i].msg != string(p)) {
				t.Fatalf("frame %d: got %q, %v; want %q", i, got[i].msg, got[i].err, p)
			}
		}
	})
}
