package hl7

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// MLLP framing bytes: a frame is StartByte, the message, EndByte, CR.
const (
	StartByte = 0x0B
	EndByte   = 0x1C
	trailerCR = 0x0D
)

// DefaultMaxFrameSize is the frame size limit used when MaxSize is not set.
// ADT messages are a few kilobytes; a megabyte leaves room for large
// Z-segments without letting one sender exhaust memory.
const DefaultMaxFrameSize = 1 << 20

// smallFrame is the buffer size up to which FrameReader grows by doubling.
const smallFrame = 64 << 10

// FrameReader reads MLLP frames from a stream. It never holds more than
// MaxSize bytes of a frame, and after a broken frame it resynchronises on the
// next start byte, so one bad frame does not wedge the connection.
// A FrameReader is not safe for concurrent use.
type FrameReader struct {
	// MaxSize is the largest message accepted, in bytes, without the
	// framing bytes. Zero or less means DefaultMaxFrameSize. It may be
	// changed between calls to ReadFrame.
	MaxSize int

	// AwaitTrailer, when set, is called when an end byte has arrived and
	// the byte after it has not, just before the reader waits for it; the
	// function it returns is called when the wait is over. A listener uses
	// it to shorten the read deadline to a grace period: when the wait then
	// times out, the frame is taken as ended and ReadFrame returns
	// ErrBadTrailer, so a sender that omits the final CR is answered after
	// the grace period instead of hanging until its read timeout.
	AwaitTrailer func() (done func())

	r   *bufio.Reader
	buf []byte
	// quiet is set after a bad trailer: the bytes up to the next start byte belong to that
	// broken frame, so the next skip does not report them as junk.
	quiet bool
}

// NewFrameReader returns a FrameReader that reads from r. It uses r as is
// when it is already a *bufio.Reader.
func NewFrameReader(r io.Reader, maxSize int) *FrameReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 32<<10)
	}
	return &FrameReader{MaxSize: maxSize, r: br}
}

// ReadFrame returns the next message, without its framing bytes. The slice
// is reused by the next call: copy it to keep it (Parse copies).
//
// A frame is a start byte, the message, and the end block 0x1C 0x0D: the
// sender's end block is what makes a frame, so that a listener answering each
// frame it returns (or reports as broken) gives exactly one ACK per frame the
// sender ended, in order, whatever bytes arrive (docs/adapters.md, "Framing").
// A start byte inside a frame does not end it, unless it is followed by "MSH":
// then a new message has begun and the frame before it, which its sender never
// ended, is abandoned (ErrNoEndBlock) and gets no ACK.
//
// Errors:
//   - io.EOF: the stream ended cleanly between frames.
//   - io.ErrUnexpectedEOF: the stream ended inside a frame.
//   - ErrJunk: bytes outside a frame were skipped; no bytes are returned.
//   - ErrNoEndBlock: a frame was abandoned before its end block when the next
//     message started; the returned bytes are what was kept of it. No ACK.
//   - ErrStartInFrame, ErrTooLarge, ErrBadTrailer: the frame was discarded;
//     the returned bytes are what was kept of it (at most MaxSize), only so
//     that SalvageControlID can find an id for the AR.
//   - any other error from the underlying reader, e.g. a read deadline.
//
// Whitespace between frames, which some interface engines send after each
// trailer, is skipped silently. After any error except those of the
// underlying reader, the caller may simply call ReadFrame again.
func (fr *FrameReader) ReadFrame() ([]byte, error) {
	junk, err := fr.skipToStart()
	if fr.quiet {
		junk, fr.quiet = false, false
	}
	if junk {
		// Report the junk now; an error that ended the skipping, such as
		// io.EOF, comes again from the next call.
		return nil, ErrJunk
	}
	if err != nil {
		return nil, err
	}
	_, _ = fr.r.Discard(1) // the start byte, known to be buffered

	limit := fr.MaxSize
	if limit <= 0 {
		limit = DefaultMaxFrameSize
	}
	buf := fr.buf[:0]
	tooLarge, stray := false, false
	for {
		chunk, err := fr.peek()
		if err != nil {
			fr.buf = buf
			return nil, unexpected(err)
		}
		i := indexFraming(chunk)
		data := chunk
		if i >= 0 {
			data = chunk[:i]
		}
		if !tooLarge {
			if room := limit - len(buf); len(data) > room {
				tooLarge = true
				buf = appendCapped(buf, data[:room], limit)
			} else {
				buf = appendCapped(buf, data, limit)
			}
		}
		_, _ = fr.r.Discard(len(data))
		if i < 0 {
			continue
		}
		fr.buf = buf
		if chunk[i] == EndByte {
			return fr.endFrame(buf, tooLarge, stray)
		}
		next, err := fr.startsMessage()
		if err != nil {
			return nil, unexpected(err)
		}
		if !next {
			// A stray start byte (a nested 0x0B in a field): the frame goes on to the end
			// block its sender gives it, and is answered once, there. Start bytes before
			// anything else of the frame are a run of them, which skipToStart folds into one
			// start when it sees the run whole: so must this, when the run arrives in pieces.
			_, _ = fr.r.Discard(1)
			stray = stray || len(buf) > 0 || tooLarge
			continue
		}
		// A new message begins here. Leave its start byte for the next call.
		if !bytes.HasPrefix(bytes.TrimLeft(buf, " \t\r\n"), []byte(messageHeader)) {
			// Nothing of a message was cut short (stray start bytes, binary junk):
			// nothing to answer either.
			return nil, ErrJunk
		}
		return buf, ErrNoEndBlock
	}
}

// messageHeader begins every HL7 v2 message this reader frames.
const messageHeader = "MSH"

// startsMessage reports whether the start byte at the reader's position is followed by
// "MSH", i.e. begins a new message rather than sitting inside one. It waits for more input
// only while what has arrived could still be "MSH": so it never waits for a byte the sender
// will not send before it has its ACK (a sender that ended its frame sent 0x1C, which
// settles the question).
func (fr *FrameReader) startsMessage() (bool, error) {
	for {
		b, _ := fr.r.Peek(fr.r.Buffered()) // b[0] is the start byte
		rest := b[1:]
		n := min(len(rest), len(messageHeader))
		if string(rest[:n]) != messageHeader[:n] {
			return false, nil
		}
		if n == len(messageHeader) {
			return true, nil
		}
		if _, err := fr.r.Peek(len(b) + 1); err != nil {
			return false, err
		}
	}
}

// Pending reports whether bytes other than white space are buffered: the next
// frame (or junk) has already arrived, and ReadFrame will not need to wait for it.
func (fr *FrameReader) Pending() bool {
	b, _ := fr.r.Peek(fr.r.Buffered())
	return !isSpace(b)
}

// endFrame consumes the end byte and checks the carriage return after it. The frame is
// answered once whatever was wrong with it: too large, a stray start byte, a bad trailer.
func (fr *FrameReader) endFrame(buf []byte, tooLarge, stray bool) ([]byte, error) {
	broken := func(trailer error) error {
		switch {
		case tooLarge:
			return ErrTooLarge
		case stray:
			return ErrStartInFrame
		}
		return trailer
	}
	_, _ = fr.r.Discard(1)
	var next []byte
	var err error
	if fr.r.Buffered() == 0 && fr.AwaitTrailer != nil {
		done := fr.AwaitTrailer()
		next, err = fr.r.Peek(1)
		done()
		if err != nil && isTimeout(err) {
			// Nothing followed the end byte within the grace period: the frame is
			// over, without its CR. Whatever still comes before the next start
			// byte belongs to it (a late CR is whitespace anyway).
			fr.quiet = true
			return buf, broken(ErrBadTrailer)
		}
	} else {
		next, err = fr.r.Peek(1)
	}
	if err != nil {
		return nil, unexpected(err)
	}
	if next[0] != trailerCR {
		// The bytes up to the next start byte belong to this broken frame,
		// so the next call skips them without reporting junk. They are not
		// skipped here: that would wait for the sender's next frame, which
		// it sends only after the ACK for this one, wedging the connection.
		fr.quiet = true
		return buf, broken(ErrBadTrailer)
	}
	_, _ = fr.r.Discard(1)
	return buf, broken(nil)
}

// skipToStart discards bytes up to, not including, the next start byte. It
// reports whether anything other than whitespace was discarded. A run of
// start bytes counts as junk but for its last one, which begins the frame,
// so that a flood of stray start bytes is one piece of junk, not one empty
// frame (and one AR) per byte.
func (fr *FrameReader) skipToStart() (junk bool, err error) {
	for {
		chunk, err := fr.peek()
		if err != nil {
			return junk, err
		}
		i := bytes.IndexByte(chunk, StartByte)
		if i < 0 {
			i = len(chunk)
		}
		junk = junk || !isSpace(chunk[:i])
		if i < len(chunk) {
			j := i
			for j+1 < len(chunk) && chunk[j+1] == StartByte {
				j++
			}
			junk = junk || j > i
			_, _ = fr.r.Discard(j)
			return junk, nil
		}
		_, _ = fr.r.Discard(i)
	}
}

// peek returns whatever is buffered, reading more only when nothing is.
func (fr *FrameReader) peek() ([]byte, error) {
	if fr.r.Buffered() == 0 {
		if _, err := fr.r.Peek(1); err != nil {
			return nil, err
		}
	}
	return fr.r.Peek(fr.r.Buffered())
}

// indexFraming returns the index of the first start or end byte in b, or -1.
// Two IndexByte calls beat one byte loop: both are vectorised.
func indexFraming(b []byte) int {
	i := bytes.IndexByte(b, StartByte)
	search := b
	if i >= 0 {
		search = b[:i]
	}
	if j := bytes.IndexByte(search, EndByte); j >= 0 {
		return j
	}
	return i
}

// appendCapped appends data to buf, never growing its capacity past limit.
// Small frames grow the buffer by doubling; past smallFrame it jumps straight
// to limit, so that a frame of any length costs at most limit plus the small
// steps, never the sum of a doubling series up to limit.
func appendCapped(buf, data []byte, limit int) []byte {
	need := len(buf) + len(data)
	if need > cap(buf) {
		c := max(2*cap(buf), need, 4096)
		if c > smallFrame {
			c = limit
		}
		c = min(c, max(limit, need))
		nb := make([]byte, len(buf), c)
		copy(nb, buf)
		buf = nb
	}
	return append(buf, data...)
}

func isSpace(b []byte) bool {
	for _, x := range b {
		if x != ' ' && x != '\t' && x != '\r' && x != '\n' {
			return false
		}
	}
	return true
}

// isTimeout reports whether err is a deadline passing, as net.Error reports it.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// WriteFrame writes msg as one MLLP frame in a single Write, so that a frame
// is never split across writes by this package. A message containing a
// framing byte is refused with ErrFramingByte and nothing is written.
func WriteFrame(w io.Writer, msg []byte) error {
	if indexFraming(msg) >= 0 {
		return ErrFramingByte
	}
	frame := make([]byte, 0, len(msg)+3)
	frame = append(frame, StartByte)
	frame = append(frame, msg...)
	frame = append(frame, EndByte, trailerCR)
	_, err := w.Write(frame)
	return err
}
