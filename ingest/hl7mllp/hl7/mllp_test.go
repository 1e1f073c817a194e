package hl7

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

type frameResult struct {
	msg string
	err error
}

func readAll(t *testing.T, r io.Reader, maxSize int) []frameResult {
	t.Helper()
	fr := NewFrameReader(r, maxSize)
	var out []frameResult
	for i := 0; i < 100; i++ {
		b, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return out
		}
		out = append(out, frameResult{string(b), err})
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return out
		}
	}
	t.Fatal("reader does not make progress")
	return nil
}

func TestReadFrame(t *testing.T) {
	const sb, eb = "\x0b", "\x1c\r"
	tests := []struct {
		name    string
		in      string
		maxSize int
		want    []frameResult
	}{
		{"one frame", sb + "MSH|A" + eb, 0, []frameResult{{"MSH|A", nil}}},
		{"two frames", sb + "A" + eb + sb + "B" + eb, 0, []frameResult{{"A", nil}, {"B", nil}}},
		{"empty frame", sb + eb, 0, []frameResult{{"", nil}}},
		{"whitespace between frames", "\r\n" + sb + "A" + eb + "\n \r\n" + sb + "B" + eb + "\n", 0,
			[]frameResult{{"A", nil}, {"B", nil}}},
		{"junk before start byte", "GET / HTTP/1.1\r\n" + sb + "A" + eb, 0,
			[]frameResult{{"", ErrJunk}, {"A", nil}}},
		{"junk between frames", sb + "A" + eb + "xx" + sb + "B" + eb, 0,
			[]frameResult{{"A", nil}, {"", ErrJunk}, {"B", nil}}},
		{"junk only", "hello", 0, []frameResult{{"", ErrJunk}}},
		{"start byte inside frame", sb + "PART" + sb + "B" + eb, 0,
			[]frameResult{{"PARTB", ErrStartInFrame}}},
		{"start byte just before the end block", sb + "MSH|A" + sb + eb + sb + "MSH|B" + eb, 0,
			[]frameResult{{"MSH|A", ErrStartInFrame}, {"MSH|B", nil}}},
		{"start byte before part of MSH", sb + "MSH|A" + sb + "MSX" + eb, 0,
			[]frameResult{{"MSH|AMSX", ErrStartInFrame}}},
		{"stray start bytes in a frame", sb + "MSH|A" + sb + sb + sb + "B" + sb + eb, 0,
			[]frameResult{{"MSH|AB", ErrStartInFrame}}},
		{"frame without end block, then a message", sb + "MSH|PART" + sb + "MSH|B" + eb, 0,
			[]frameResult{{"MSH|PART", ErrNoEndBlock}, {"MSH|B", nil}}},
		{"junk after a start byte, then a message", sb + "\x00junk" + sb + "MSH|B" + eb, 0,
			[]frameResult{{"", ErrJunk}, {"MSH|B", nil}}},
		{"missing CR after end byte", sb + "A\x1cjunk" + sb + "B" + eb, 0,
			[]frameResult{{"A", ErrBadTrailer}, {"B", nil}}},
		{"end byte then start byte", sb + "A\x1c" + sb + "B" + eb, 0,
			[]frameResult{{"A", ErrBadTrailer}, {"B", nil}}},
		{"missing CR at end of stream", sb + "A\x1cX", 0, []frameResult{{"A", ErrBadTrailer}}},
		{"EOF mid-frame", sb + "MSH|trunc", 0, []frameResult{{"", io.ErrUnexpectedEOF}}},
		{"EOF after end byte", sb + "A\x1c", 0, []frameResult{{"", io.ErrUnexpectedEOF}}},
		{"EOF after start byte", sb, 0, []frameResult{{"", io.ErrUnexpectedEOF}}},
		{"too large", sb + "0123456789" + eb + sb + "ok" + eb, 4,
			[]frameResult{{"0123", ErrTooLarge}, {"ok", nil}}},
		{"exactly max size", sb + "0123" + eb, 4, []frameResult{{"0123", nil}}},
		{"too large then stray start byte", sb + "0123456789" + sb + "ok" + eb, 4,
			[]frameResult{{"0123", ErrTooLarge}}},
		{"too large then a message", sb + "MSH|0123456789" + sb + "MSH|" + eb, 4,
			[]frameResult{{"MSH|", ErrNoEndBlock}, {"MSH|", nil}}},
		{"too large bad trailer", sb + "0123456789\x1cX" + sb + "ok" + eb, 4,
			[]frameResult{{"0123", ErrTooLarge}, {"ok", nil}}},
		{"too large then EOF", sb + "0123456789", 4, []frameResult{{"", io.ErrUnexpectedEOF}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, rd := range []struct {
				name string
				r    func(string) io.Reader
			}{
				{"whole", func(s string) io.Reader { return strings.NewReader(s) }},
				{"byte by byte", func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) }},
			} {
				got := readAll(t, rd.r(tt.in), tt.maxSize)
				if len(got) != len(tt.want) {
					t.Fatalf("%s: got %v, want %v", rd.name, got, tt.want)
				}
				for i := range got {
					if got[i].msg != tt.want[i].msg || !errors.Is(got[i].err, tt.want[i].err) {
						t.Errorf("%s: frame %d: got %q, %v; want %q, %v", rd.name, i, got[i].msg, got[i].err, tt.want[i].msg, tt.want[i].err)
					}
				}
			}
		})
	}
}

func TestReadFrameReaderError(t *testing.T) {
	boom := errors.New("boom")
	fr := NewFrameReader(io.MultiReader(strings.NewReader("\x0bMSH"), iotest.ErrReader(boom)), 0)
	if _, err := fr.ReadFrame(); !errors.Is(err, boom) {
		t.Errorf("got %v, want the reader's error", err)
	}
}

func TestReadFrameUsesBufioReader(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("\x0bA\x1c\r"))
	if fr := NewFrameReader(br, 0); fr.r != br {
		t.Error("a *bufio.Reader should be used as is")
	}
}

// frameSource produces one MLLP frame of n payload bytes without holding it
// in memory, and counts what was read.
type frameSource struct {
	n, pos int
	read   int64
}

var filler = bytes.Repeat([]byte{'A'}, 32<<10)

func (s *frameSource) Read(p []byte) (int, error) {
	total := s.n + 3
	if s.pos >= total {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && s.pos < total {
		switch {
		case s.pos == 0:
			p[k] = StartByte
		case s.pos == total-2:
			p[k] = EndByte
		case s.pos == total-1:
			p[k] = '\r'
		default:
			n := copy(p[k:], filler[:min(len(filler), total-2-s.pos)])
			k += n
			s.pos += n
			continue
		}
		k++
		s.pos++
	}
	s.read += int64(k)
	return k, nil
}

func TestReadFrameOversizeBoundedMemory(t *testing.T) {
	const frameSize, maxSize = 10 << 20, 1 << 20
	src := &frameSource{n: frameSize}
	fr := NewFrameReader(src, maxSize)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b, err := fr.ReadFrame()
	runtime.ReadMemStats(&after)

	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if len(b) != maxSize || cap(b) > maxSize {
		t.Errorf("kept %d bytes (capacity %d), want at most %d", len(b), cap(b), maxSize)
	}
	if src.read != frameSize+3 {
		t.Errorf("read %d bytes, want the whole frame (%d) discarded", src.read, frameSize+3)
	}
	// MaxSize plus the small doubling steps and the bufio buffer; the 10 MB
	// frame itself must never be held.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > maxSize+256<<10 {
		t.Errorf("allocated %d bytes for a %d-byte frame with MaxSize %d", alloc, frameSize, maxSize)
	} else {
		t.Logf("allocated %d bytes for a %d-byte frame with MaxSize %d", alloc, frameSize, maxSize)
	}
	if _, err := fr.ReadFrame(); !errors.Is(err, io.EOF) {
		t.Errorf("after the frame: got %v, want io.EOF", err)
	}
}

func TestReadFrameNoAllocsSteadyState(t *testing.T) {
	var stream bytes.Buffer
	if err := WriteFrame(&stream, msgA01v23); err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(stream.Bytes())
	fr := NewFrameReader(r, 0)
	if _, err := fr.ReadFrame(); err != nil { // warm the buffer
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(stream.Bytes())
		if _, err := fr.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per frame, want 0", allocs)
	}
}

func TestWriteFrame(t *testing.T) {
	var buf bytes.Buffer
	for _, m := range [][]byte{msgA01v23, msgCustom, {}} {
		if err := WriteFrame(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	got := readAll(t, &buf, 0)
	want := []frameResult{{string(msgA01v23), nil}, {string(msgCustom), nil}, {"", nil}}
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("frame %d: got %q, %v; want %q", i, got[i].msg, got[i].err, want[i].msg)
		}
	}
	for _, bad := range []string{"A\x0bB", "A\x1cB"} {
		var w bytes.Buffer
		if err := WriteFrame(&w, []byte(bad)); !errors.Is(err, ErrFramingByte) || w.Len() != 0 {
			t.Errorf("%q: got %v and %d bytes written, want ErrFramingByte and nothing", bad, err, w.Len())
		}
	}
}

// TestBadTrailerDoesNotWaitForTheNextFrame: a sender waits for the ACK of a frame before it
// sends the next, so the reader must report a bad trailer from what has arrived, without
// reading on to the next start byte.
func TestBadTrailerDoesNotWaitForTheNextFrame(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("\x0bA\x1cXjunk")) }()
	fr := NewFrameReader(pr, 0)
	got := make(chan error, 1)
	go func() {
		_, err := fr.ReadFrame()
		got <- err
	}()
	select {
	case err := <-got:
		if !errors.Is(err, ErrBadTrailer) {
			t.Fatalf("got %v, want ErrBadTrailer", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFrame waited for more input after a bad trailer")
	}
	go func() { _, _ = pw.Write([]byte("more\x0bB\x1c\r")) }()
	msg, err := fr.ReadFrame()
	if err != nil || string(msg) != "B" {
		t.Fatalf("next frame: got %q, %v; want \"B\" with no junk reported", msg, err)
	}
}

// TestStrayStartBytesGetNoFrame: a flood of start bytes is junk, not one empty frame per
// byte, so a listener does not answer each with an AR (an amplifier for whoever sends them).
func TestStrayStartBytesGetNoFrame(t *testing.T) {
	in := strings.Repeat("\x0b", 230) + "MSH|A\x1c\r" + "\x0b \x0b" + "MSH|B\x1c\r" + strings.Repeat("\x0b", 50)
	for _, rd := range []struct {
		name     string
		r        io.Reader
		maxJunks int
	}{
		{"whole", strings.NewReader(in), 3},
		{"byte by byte", iotest.OneByteReader(strings.NewReader(in)), len(in)},
	} {
		t.Run(rd.name, func(t *testing.T) {
			fr := NewFrameReader(rd.r, 0)
			var frames []string
			junks := 0
			for calls := 0; calls <= len(in)+1; calls++ {
				b, err := fr.ReadFrame()
				switch {
				case errors.Is(err, ErrJunk):
					junks++
					continue
				case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
					if got, want := strings.Join(frames, ","), "MSH|A,MSH|B"; got != want {
						t.Errorf("frames: got %q, want %q", got, want)
					}
					if junks > rd.maxJunks {
						t.Errorf("junk reports: got %d, want at most %d", junks, rd.maxJunks)
					}
					return
				case err != nil:
					t.Fatalf("got %q, %v; want only the two messages and junk (no frame to answer)", b, err)
				}
				frames = append(frames, string(b))
			}
			t.Fatal("reader does not make progress")
		})
	}
}

// TestAwaitTrailer: an end byte with nothing after it ends the frame once the grace period
// that AwaitTrailer sets has passed, instead of waiting for the read timeout; a CR that
// arrives later is whitespace, and the next frame reads normally.
func TestAwaitTrailer(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	fr := NewFrameReader(server, 0)
	var awaited int
	fr.AwaitTrailer = func() func() {
		awaited++
		_ = server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		return func() { _ = server.SetReadDeadline(time.Time{}) }
	}
	go func() {
		_, _ = client.Write([]byte("\x0bMSH|A\x1c"))
	}()
	start := time.Now()
	b, err := fr.ReadFrame()
	if string(b) != "MSH|A" || !errors.Is(err, ErrBadTrailer) {
		t.Fatalf("end byte and then nothing: got %q, %v; want MSH|A, ErrBadTrailer", b, err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("the frame ended after %s, want about the grace period", waited)
	}
	if awaited != 1 {
		t.Errorf("AwaitTrailer called %d times, want 1", awaited)
	}
	go func() {
		_, _ = client.Write([]byte("\r\x0bMSH|B\x1c\r"))
	}()
	b, err = fr.ReadFrame()
	if string(b) != "MSH|B" || err != nil {
		t.Fatalf("after a late CR: got %q, %v; want MSH|B", b, err)
	}
}
