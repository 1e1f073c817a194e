package csvdrop

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Encodings accepted in Config.Encoding.
const (
	EncodingAuto        = "auto"         // UTF-8 when the whole file is valid UTF-8, else Windows-1252
	EncodingUTF8        = "utf-8"        // UTF-8, with or without a byte-order mark
	EncodingWindows1252 = "windows-1252" // the Excel and Datix default on Windows
)

var (
	bomUTF8    = []byte{0xEF, 0xBB, 0xBF}
	bomUTF16LE = []byte{0xFF, 0xFE}
	bomUTF16BE = []byte{0xFE, 0xFF}
)

// fileFacts is what one streaming pass over a file learns before its rows are read.
type fileFacts struct {
	hash      string // SHA-256 of the bytes, hex: the file's identity for its progress record
	size      int64
	bom       bool // starts with the UTF-8 byte-order mark
	utf16     bool // starts with a UTF-16 byte-order mark (not supported)
	validUTF8 bool
}

// scanFile reads r once, in fixed-size chunks, so that memory does not grow with the file.
// What it finds does not depend on how r cuts its reads.
func scanFile(r io.Reader) (fileFacts, error) {
	var f fileFacts
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var carry []byte // the start of a UTF-8 sequence cut by the chunk boundary
	var head []byte  // the first bytes, for the byte-order mark, however short the reads
	f.validUTF8 = true
	for {
		n, err := r.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			h.Write(chunk)
			f.size += int64(n)
			if len(head) < len(bomUTF8) {
				head = append(head, chunk[:min(len(chunk), len(bomUTF8)-len(head))]...)
			}
			if f.validUTF8 {
				data := append(carry, chunk...)
				cut := len(data) - incompleteTail(data)
				f.validUTF8 = utf8.Valid(data[:cut])
				carry = append(carry[:0:0], data[cut:]...)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return f, err
		}
	}
	if len(carry) > 0 {
		f.validUTF8 = false // the file ends inside a multi-byte sequence
	}
	f.bom = bytes.HasPrefix(head, bomUTF8)
	f.utf16 = bytes.HasPrefix(head, bomUTF16LE) || bytes.HasPrefix(head, bomUTF16BE)
	f.hash = hex.EncodeToString(h.Sum(nil))
	return f, nil
}

// incompleteTail returns how many bytes at the end of b start a UTF-8 sequence that the next
// chunk may complete (0 to 3).
func incompleteTail(b []byte) int {
	for i := 1; i <= 3 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
			return 0
		}
		if c >= 0xC0 { // a start byte: is its sequence longer than what is here?
			need := 2
			switch {
			case c >= 0xF0:
				need = 4
			case c >= 0xE0:
				need = 3
			}
			if need > i {
				return i
			}
			return 0
		}
	}
	return 0
}

// chooseEncoding applies Config.Encoding to what the scan found. Detection is only used
// where it is safe: a file that is valid UTF-8 throughout (or declares it with a BOM) is
// read as UTF-8; any other is read as Windows-1252, in which every byte is a character.
func chooseEncoding(setting string, f fileFacts) (string, error) {
	if f.utf16 {
		return "", errors.New("file is UTF-16 (it starts with a UTF-16 byte-order mark); export it as UTF-8 or Windows-1252 CSV")
	}
	switch setting {
	case EncodingUTF8, EncodingWindows1252:
		return setting, nil
	case EncodingAuto, "":
		if f.bom || f.validUTF8 {
			return EncodingUTF8, nil
		}
		return EncodingWindows1252, nil
	}
	return "", fmt.Errorf("unknown encoding %q", setting)
}

// win1252 maps the bytes 0x80 to 0x9F, the only ones where Windows-1252 differs from
// ISO-8859-1 (whose byte values equal their code points). The five bytes Windows-1252 leaves
// undefined map to the C1 control of the same value, as the WHATWG Encoding Standard does.
var win1252 = [32]rune{
	'\u20AC', '\u0081', '\u201A', '\u0192', '\u201E', '\u2026', '\u2020', '\u2021',
	'\u02C6', '\u2030', '\u0160', '\u2039', '\u0152', '\u008D', '\u017D', '\u008F',
	'\u0090', '\u2018', '\u2019', '\u201C', '\u201D', '\u2022', '\u2013', '\u2014',
	'\u02DC', '\u2122', '\u0161', '\u203A', '\u0153', '\u009D', '\u017E', '\u0178',
}

func decode1252(b byte) rune {
	if b >= 0x80 && b <= 0x9F {
		return win1252[b-0x80]
	}
	return rune(b)
}

// win1252Reader decodes Windows-1252 to UTF-8 as it streams.
type win1252Reader struct {
	r       io.Reader
	in      []byte
	pending []byte
	err     error
}

func newWin1252Reader(r io.Reader) *win1252Reader {
	return &win1252Reader{r: r, in: make([]byte, 32<<10)}
}

func (d *win1252Reader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		n, err := d.r.Read(d.in)
		out := d.pending[:0]
		for _, b := range d.in[:n] {
			if b < 0x80 {
				out = append(out, b)
			} else {
				out = utf8.AppendRune(out, decode1252(b))
			}
		}
		d.pending = out
		d.err = err
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}

// rowGuard sits between the decoder and the CSV reader and stops a single row from growing
// without bound (an unterminated quote, a file with no line breaks): it hands the CSV reader
// at most limit+1 bytes past the start of the current row, and fails with errRowTooLarge when
// the reader asks for more, which it does only when the row has not ended by then. So a row,
// with its line break, of more than limit+1 bytes fails, and whether it does never depends on
// how the reads beneath are cut.
//
// It keeps the bytes from the current row's start (tail), at most limit+1 of them, and counts
// the line feeds before it, so that the reader can skip an over-long row to its end (see
// skipRow) and carry on.
type rowGuard struct {
	r         io.Reader
	read      int64 // bytes handed to the CSV reader
	rowStart  int64 // where the current row starts (the CSV reader's InputOffset)
	limit     int64
	triggered bool

	tail      []byte // the bytes handed over from tailStart on
	tailStart int64
	linesTo   int // line feeds before tailStart

	eof      bool // the source has ended
	lastByte byte // the last byte handed over
}

// cutRow reports whether the row the CSV reader just returned, ending at offset (its
// InputOffset), is the last of the file and has no line break after it: the file may have
// been taken while its writer was in the middle of it.
func (g *rowGuard) cutRow(offset int64) bool {
	return g.eof && offset == g.read && g.lastByte != '\n' && g.lastByte != '\r'
}

var errRowTooLarge = errors.New("row too large")

// startRow tells the guard where the next row starts (the CSV reader's InputOffset).
func (g *rowGuard) startRow(off int64) {
	g.rowStart = off
	if drop := int(off - g.tailStart); drop > 0 {
		g.linesTo += bytes.Count(g.tail[:drop], []byte{'\n'})
		g.tail = append(g.tail[:0], g.tail[drop:]...)
		g.tailStart = off
	}
}

func (g *rowGuard) Read(p []byte) (int, error) {
	room := g.rowStart + g.limit + 1 - g.read
	if room <= 0 {
		g.triggered = true
		return 0, errRowTooLarge
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := g.r.Read(p)
	g.read += int64(n)
	g.tail = append(g.tail, p[:n]...)
	if n > 0 {
		g.lastByte = p[n-1]
	}
	if errors.Is(err, io.EOF) {
		g.eof = true
	}
	return n, err
}
