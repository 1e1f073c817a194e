package csvdrop

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
)

// Seeds beyond these live in testdata/fuzz/<Name>/.

var fuzzColumns = map[string]string{
	"local_id": "Ref", "event_type": "Type", "occurred_at": "Incident date", "description": "Description",
	"reporter.role": "Reporter role", "patient.nhs_number": "NHS No", "revision": "Rev",
}

const fuzzFile = "export.csv"

var fuzzNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// csvSeeds are the shapes drop folders really receive: Excel and Datix exports with CRLF,
// a byte-order mark, Windows-1252 text, quoted cells spanning lines, European semicolons,
// ragged and broken rows, and files that are not CSV at all.
var csvSeeds = []string{
	"Ref,Type,Incident date,Description,Reporter role,NHS No,Rev\r\n" +
		"DX-1,incident,2025-03-14,\"Fall from bed, found on floor\",Nurse,9434765919,1\r\n" +
		"DX-2,risk,,\"Broken\r\nbed rail, reported twice\",Porter,,\r\n",
	"\xEF\xBB\xBFRef,Type,Incident date,Description,Reporter role,NHS No,Rev\r\nDX-3,incident,2025-01-02,Caf\xC3\xA9 spill,Nurse,,\r\n",
	"Ref,Type,Incident date,Description,Reporter role,NHS No,Rev\r\nDX-4,incident,2025-01-02,Patient\x92s \xA3 purse lost,Nurse,,\r\n",
	"Ref;Type;Incident date;Description;Reporter role;NHS No;Rev\nDX-5;outcome;2025-02-28;\"a;b\";Doctor;;2\n",
	"Ref,Type,Incident date,Description,Reporter role,NHS No,Rev\nDX-6,incident,2025-01-02\nDX-7,incident,2025-01-02,x,y,,,extra\n",
	"Ref,Type,Incident date,Description,Reporter role,NHS No,Rev\nDX-8,incident,2025-01-02,\"unterminated,Nurse,,\nDX-9,incident,2025-01-02,ok,Nurse,,\n",
	"Ref,Type,Incident date,Description,Reporter role,NHS No,Rev\nDX-10,incident,2025-01-02,=HYPERLINK(\"http://x\"),@SUM(A1),,\n",
	"Ref,Type,Incident date,Description,Reporter role,NHS No,Rev\n,incident,2025-01-02,no id,Nurse,,\nDX-11,incident,2099-01-01,future,Nurse,,\n",
	"Ref,Type,Incident date,Description,Reporter role,NHS No,Rev\n\"DX\n12\",incident,2025-01-02,x,Nurse,,\n",
	"Ref,Type,Incident date,Description,Reporter role,NHS No,Rev\rDX-13,incident,2025-01-02,old Mac line ends,Nurse,,\r",
	"Ref\tType\tIncident date\tDescription\tReporter role\tNHS No\tRev\nDX-14\tgood_care\t2025-01-02\ttabbed\tNurse\t\t\n",
	"Ref|Type|Incident date|Description|Reporter role|NHS No|Rev\nDX-15|incident|2025-01-02|piped|Nurse||\n",
	"Ref,Type,Incident date,Description,Reporter role,NHS No,Rev\n",
	"Ref,Ref,Type\n",
	"Ref,Type\nDX-16,incident\n",
	"",
	"\xFF\xFER\x00e\x00f\x00\n\x00",
	"\xEF\xBB\xBF",
	"Ref,Type,Incident date,Description,Reporter role,NHS No,Rev\n\"DX-17\"x,incident,2025-01-02,bare quote,Nurse,,\n",
	"Ref,Type,Incident date,Description,Reporter role,NHS No,Rev\nDX-18,incident,2025-01-02,\"" + strings.Repeat("long ", 200) + "\",Nurse,,\n",
	"Ref,Type,Incident date,Description,Reporter role,NHS No,Rev\nDX-19,incident,2025-01-02,bad \xC3\x28 utf8,Nurse,,\n",
	"Ref,Type,Incident date,Description,Reporter role,NHS No,Rev\nDX-20,incident,2025-01-02,x,Nurse,123,abc\nDX-20,incident,2025-01-02,x,Nurse,123,abc\n",
}

// recorder is a Publisher that keeps what it was given and can be made to fail at the n-th
// call, as a queue that goes down part-way through a file.
type recorder struct {
	mu     sync.Mutex
	recs   []ingest.Record
	calls  int
	failAt int // 0: never
}

func (p *recorder) Publish(_ context.Context, rec ingest.Record) (ingest.PublishResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.failAt > 0 && p.calls >= p.failAt {
		return ingest.PublishResult{}, ingest.ErrUnavailable
	}
	p.recs = append(p.recs, rec)
	return ingest.PublishResult{}, nil
}

type fuzzRun struct {
	key  string
	err  error
	recs []ingest.Record
}

// readBytes runs readRows over data with a watchdog: a file that makes the reader loop fails
// the target instead of stalling the fuzzer.
func readBytes(t *testing.T, cfg Config, data []byte, pub *recorder, state ingest.StateStore, wrap func(io.Reader) io.Reader) fuzzRun {
	t.Helper()
	a := New(cfg, ingest.Deps{Publisher: pub, State: state, Logger: zerolog.Nop(), Now: func() time.Time { return fuzzNow }})
	var src io.ReadSeeker = bytes.NewReader(data)
	if wrap != nil {
		src = shortReads{ReadSeeker: src, r: wrap(src)}
	}
	done := make(chan fuzzRun, 1)
	go func() {
		key, err := a.readRows(context.Background(), fuzzFile, src)
		done <- fuzzRun{key: key, err: err}
	}()
	select {
	case r := <-done:
		pub.mu.Lock()
		r.recs = slices.Clone(pub.recs)
		pub.mu.Unlock()
		return r
	case <-time.After(20 * time.Second):
		t.Fatalf("readRows did not return within 20s on %d bytes", len(data))
		return fuzzRun{}
	}
}

// shortReads is a ReadSeeker whose reads go through r (iotest.OneByteReader, HalfReader), as
// a network file system may deliver them.
type shortReads struct {
	io.ReadSeeker
	r io.Reader
}

func (s shortReads) Read(p []byte) (int, error) { return s.r.Read(p) }

var reasonLine = regexp.MustCompile(`^file ` + regexp.QuoteMeta(fuzzFile) + ` line ([0-9]+): \S`)

// FuzzReadRows protects the drop folder against whatever an export job or a person leaves
// in it. A CSV file is untrusted bytes, and one bad file must neither crash the gateway nor
// lose or invent incidents. For any bytes, with any encoding setting, delimiter, row size
// limit and batch size, readRows:
//
//   - returns (never panics or loops), with nil or a file failure that says why;
//   - when it reads the whole file, publishes exactly one record per data row, as the CSV
//     reader counts them, each naming the file and a line inside it (its origin), and each
//     either an incident that reads as the incident its envelope names (which the mapper
//     checks afresh each time it maps it) or a rejected record whose reason names the file
//     and the line;
//   - gives every record a key derived from its local id, and a local id the operations API
//     can look up: non-blank UTF-8, at most fhir.MaxLocalID characters, no control characters;
//   - reads a UTF-8 file the same with or without a byte-order mark, and the same however
//     short the underlying reads are;
//   - after a queue failure part-way through, a second run stores the rows the first did
//     not, so that together they hold exactly the records of a clean run.
func FuzzReadRows(f *testing.F) {
	for i, s := range csvSeeds {
		f.Add([]byte(s), uint8(i), uint16(1<<10))
	}
	f.Add([]byte(csvSeeds[0]), uint8(3), uint16(20))
	f.Fuzz(func(t *testing.T, data []byte, opts uint8, maxRow uint16) {
		cfg := Config{
			Dir: "unused", Source: "datix", Columns: fuzzColumns, DateFormats: []string{"DD/MM/YYYY", "DD/MM/YYYY HH:mm:ss"},
			Encoding:           []string{EncodingAuto, EncodingUTF8, EncodingWindows1252}[opts%3],
			Delimiter:          []string{",", ";", "\t", "|"}[(opts/3)%4],
			BatchRows:          1 + int(opts/12)%3,
			PublishConcurrency: 2,
			MaxRowBytes:        16 + int(maxRow),
		}
		pub := &recorder{}
		clean := readBytes(t, cfg, data, pub, adaptertest.NewState(), nil)
		checkRun(t, cfg, data, clean)

		// However the reads are cut, the same records come out.
		for _, wrap := range []func(io.Reader) io.Reader{iotest.OneByteReader, iotest.HalfReader} {
			got := readBytes(t, cfg, data, &recorder{}, adaptertest.NewState(), wrap)
			sameRun(t, "short reads", clean, got)
		}

		// A UTF-8 file reads the same with a byte-order mark, and the mark is never a cell.
		// (A file starting with a UTF-16 mark is refused without it, and is not one with it.)
		if !bytes.HasPrefix(data, bomUTF8) && !bytes.HasPrefix(data, bomUTF16LE) && !bytes.HasPrefix(data, bomUTF16BE) &&
			(utf8.Valid(data) || cfg.Encoding != EncodingAuto) {
			withBOM := append(slices.Clip(bomUTF8), data...)
			got := readBytes(t, cfg, withBOM, &recorder{}, adaptertest.NewState(), nil)
			sameRun(t, "byte-order mark", clean, got)
		}

		// The queue fails at some row; a second run completes the file.
		if n := len(clean.recs); n > 0 && clean.err == nil {
			state := adaptertest.NewState()
			first := readBytes(t, cfg, data, &recorder{failAt: 1 + int(maxRow)%n}, state, nil)
			if first.err == nil {
				t.Fatal("first run: got nil error with the queue failing")
			}
			var ff *fileFailure
			if errors.As(first.err, &ff) {
				t.Fatalf("first run: queue failure reported as a file failure: %v", first.err)
			}
			second := readBytes(t, cfg, data, &recorder{}, state, nil)
			if second.err != nil {
				t.Fatalf("second run: %v", second.err)
			}
			union := append(slices.Clone(first.recs), second.recs...)
			if got, want := idSet(union), idSet(clean.recs); !slices.Equal(got, want) {
				t.Fatalf("after a resumed run: got records %v, want %v", got, want)
			}
		}
	})
}

func checkRun(t *testing.T, cfg Config, data []byte, run fuzzRun) {
	t.Helper()
	if run.err != nil {
		var ff *fileFailure
		if !errors.As(run.err, &ff) {
			t.Fatalf("got error %T %v, want nil or a file failure", run.err, run.err)
		}
		if strings.TrimSpace(ff.reason) == "" {
			t.Fatal("file failure without a reason")
		}
	} else if run.key == "" {
		t.Fatal("file read without a progress key")
	}
	lines := bytes.Count(data, []byte("\n")) + 1
	for _, rec := range run.recs {
		if rec.Kind != ingest.KindIncident || rec.Source != "datix" || rec.ID == "" {
			t.Fatalf("malformed record %+v", rec)
		}
		if rec.Key != ingest.IncidentKey(rec.Source, rec.LocalID) {
			t.Fatalf("record key %q does not derive from local id %q", rec.Key, rec.LocalID)
		}
		if id := rec.LocalID; strings.TrimSpace(id) == "" || utf8.RuneCountInString(id) > fhir.MaxLocalID || !utf8.ValidString(id) ||
			strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("record local id %q cannot be looked up", id)
		}
		if m := reasonLine.FindStringSubmatch(rec.Origin + ": x"); m == nil {
			t.Fatalf("origin %q does not name the file and line", rec.Origin)
		} else if n, _ := strconv.Atoi(m[1]); n < 2 || n > lines {
			t.Fatalf("origin %q names line %d of a file with %d lines and a header", rec.Origin, n, lines)
		}
		if rec.Reason == "" {
			// Stored as the incident it is, problems or none: the mapper reads it afresh each
			// time, so it must read as the incident its envelope names.
			in, _ := fhir.ParseIncident(rec.Data, fhir.ParseOptions{Now: fuzzNow})
			if in == nil || in.Source != rec.Source || in.LocalID != rec.LocalID {
				t.Fatalf("record %q without a reason does not read as its incident", rec.LocalID)
			}
			continue
		}
		m := reasonLine.FindStringSubmatch(rec.Reason)
		if m == nil {
			t.Fatalf("reason %q does not name the file and line", rec.Reason)
		}
		if n, _ := strconv.Atoi(m[1]); n < 2 || n > lines {
			t.Fatalf("reason %q names line %d of a file with %d lines and a header", rec.Reason, n, lines)
		}
	}
	if run.err == nil {
		if want := countRows(cfg, data); len(run.recs) != want {
			t.Fatalf("got %d records, want one for each of the %d rows", len(run.recs), want)
		}
	}
}

// countRows counts the data rows of a file with a plain csv.Reader over the decoded text.
func countRows(cfg Config, data []byte) int {
	enc, _ := chooseEncoding(cfg.Encoding, fileFacts{bom: bytes.HasPrefix(data, bomUTF8), validUTF8: utf8.Valid(data)})
	var src io.Reader = bytes.NewReader(bytes.TrimPrefix(data, bomUTF8))
	if enc == EncodingWindows1252 {
		src = newWin1252Reader(src)
	}
	r := csv.NewReader(src)
	r.Comma = cfg.comma()
	r.FieldsPerRecord = -1
	n := -1 // the header
	for {
		_, err := r.Read()
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			return n
		}
		n++
	}
}

func sameRun(t *testing.T, what string, want, got fuzzRun) {
	t.Helper()
	if (want.err == nil) != (got.err == nil) || (want.err != nil && want.err.Error() != got.err.Error()) {
		t.Fatalf("%s: got error %v, want %v", what, got.err, want.err)
	}
	if g, w := recordSet(got.recs), recordSet(want.recs); !slices.Equal(g, w) {
		t.Fatalf("%s: got records\n%q\nwant\n%q", what, g, w)
	}
}

// recordSet renders records order-free: batches are published on parallel lanes.
func recordSet(recs []ingest.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID + " " + r.LocalID + " " + r.Reason + " " + string(r.Data)
	}
	slices.Sort(out)
	return out
}

func idSet(recs []ingest.Record) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.ID)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
