package csvdrop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
)

// progress is a file's durable progress record, kept in the state store under the file's
// content hash: the number of data rows (after the header) already stored.
type progress struct {
	File string `json:"file"`
	Rows int    `json:"rows"`
}

func progressKey(hash string) string { return "file." + hash }

// fileFailure is a file that cannot be read at all: it goes to failed/ with the reason.
type fileFailure struct{ reason string }

func (f *fileFailure) Error() string { return f.reason }

func failf(format string, args ...any) error {
	return &fileFailure{reason: fmt.Sprintf(format, args...)}
}

// processFile reads one ready file and stores its rows. It returns nil once the file is in
// processed/ or failed/; an accessError when it cannot be opened; any other error when rows
// could not be stored, leaving the file and its progress for a later attempt.
func (a *Adapter) processFile(ctx context.Context, name string) error {
	path := filepath.Join(a.cfg.Dir, name)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // taken away since the listing
		}
		return &accessError{fmt.Errorf("opening %s: %w", name, err)}
	}
	defer f.Close()
	err = a.readFile(ctx, name, f)
	if errors.Is(err, errChanged) {
		// Not done: settle again, then read again whole; the rows stored are duplicates.
		delete(a.seen, name)
		a.deps.CountRejected(ReasonFileChanged)
		a.deps.Logger.Warn().Str("file", name).Msg("file changed while it was read; it will be read again once it settles (see csvdrop.done_marker)")
		return nil
	}
	var ff *fileFailure
	if errors.As(err, &ff) {
		f.Close()
		a.deps.CountRejected(ReasonFileFailed)
		a.deps.Logger.Warn().Str("file", name).Str("reason", ff.reason).Msg("file moved to failed/")
		return a.finish(ctx, name, "", a.cfg.FailedDir, ff.reason)
	}
	return err
}

// readFile checks the file's size, stores its rows (readRows) and finally moves it to
// processed/, where it is watched for changes (watchTaken). A file that changed while it was
// read is left where it is to settle again and be read again whole (errChanged).
func (a *Adapter) readFile(ctx context.Context, name string, f *os.File) error {
	info, err := f.Stat()
	if err != nil {
		return &accessError{fmt.Errorf("reading %s: %w", name, err)}
	}
	if info.Size() > a.cfg.MaxFileBytes {
		return failf("file is %d bytes, more than the %d allowed (csvdrop.max_file_bytes)", info.Size(), a.cfg.MaxFileBytes)
	}
	key, err := a.readRows(ctx, name, f)
	if err != nil {
		return err
	}
	after, err := f.Stat()
	if err != nil {
		return &accessError{fmt.Errorf("reading %s: %w", name, err)}
	}
	if changed(info, after) {
		return errChanged
	}
	if err := a.finish(ctx, name, key, a.cfg.ProcessedDir, ""); err != nil {
		return err
	}
	a.watch(name, after)
	return nil
}

// errChanged is a file that changed while it was read: the writer was not done.
var errChanged = errors.New("file changed while it was read")

// changed reports whether a file's size or modification time differ between two looks.
func changed(before, after os.FileInfo) bool {
	return before.Size() != after.Size() || !before.ModTime().Equal(after.ModTime())
}

// readRows scans the file f (positioned at its start), then streams its rows to the publisher
// in batches, recording progress after each batch. It returns the file's progress key once
// every row is stored; a *fileFailure when the file cannot be read at all; an accessError when
// f fails; any other error when rows or progress could not be stored. It touches nothing but
// f, the publisher and the state store, so that tests can drive it with bytes.
func (a *Adapter) readRows(ctx context.Context, name string, f io.ReadSeeker) (string, error) {
	facts, err := scanFile(f)
	if err != nil {
		return "", &accessError{fmt.Errorf("reading %s: %w", name, err)}
	}
	enc, err := chooseEncoding(a.cfg.Encoding, facts)
	if err != nil {
		return "", failf("%v", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", &accessError{fmt.Errorf("reading %s: %w", name, err)}
	}
	var prog progress
	key := progressKey(facts.hash)
	if b, err := a.deps.State.Get(ctx, key); err != nil {
		return "", fmt.Errorf("reading progress of %s: %w", name, err)
	} else if b != nil {
		if err := json.Unmarshal(b, &prog); err != nil {
			prog = progress{} // unreadable progress: start over; row ids make that safe
		}
	}

	// The rows are read from the bytes the scan saw, however the file grows meanwhile: a
	// file that changed is read again whole (readFile), and its progress belongs to them.
	var src io.Reader = io.LimitReader(f, facts.size)
	if facts.bom {
		if _, err := io.CopyN(io.Discard, src, int64(len(bomUTF8))); err != nil {
			return "", &accessError{fmt.Errorf("reading %s: %w", name, err)}
		}
	}
	if enc == EncodingWindows1252 {
		src = newWin1252Reader(src)
	}
	guard, r := a.newCSVReader(src)

	header, err := r.Read()
	switch {
	case errors.Is(err, io.EOF):
		return "", failf("empty file: no header line")
	case guard.triggered:
		return "", failf("line 1: header longer than %d bytes (csvdrop.max_row_bytes)", a.cfg.MaxRowBytes)
	case err != nil:
		return "", failf("header line: %v", err)
	}
	header = append([]string(nil), header...)
	cols, err := a.columns(name, header)
	if err != nil {
		return "", err
	}
	index := map[string]int{}
	for i, h := range header {
		if h = strings.TrimSpace(h); h != "" {
			index[h] = i
		}
	}
	rs := rowSource{a: a, file: name, header: header, cols: cols, enc: enc, index: index,
		format: newRowFormat(a.cfg), idShapes: map[string]bool{}}

	batch := make([]ingest.Record, 0, a.cfg.BatchRows)
	batchBytes := 0
	rows := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := a.publishBatch(ctx, batch); err != nil {
			return err
		}
		prog = progress{File: name, Rows: rows}
		b, _ := json.Marshal(prog)
		if err := a.deps.State.Put(ctx, key, b); err != nil {
			return fmt.Errorf("recording progress of %s: %w", name, err)
		}
		clear(batch)
		batch, batchBytes = batch[:0], 0
		return nil
	}
	for {
		guard.startRow(r.InputOffset())
		row, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		var skipped *ingest.Record
		if guard.triggered {
			// The row is longer than MaxRowBytes: skip to its end, quarantine it with its
			// line number, and read on from there with a new CSV reader.
			var rest io.Reader
			var lines int
			skipped, rest, lines, err = rs.skipLongRow(guard)
			if err != nil {
				return "", &accessError{fmt.Errorf("reading %s: %w", name, err)}
			}
			rs.lineBase += lines
			guard, r = a.newCSVReader(rest)
			if skipped == nil {
				continue // only empty lines: no row
			}
		} else if err != nil && !errors.As(err, &pe) {
			return "", &accessError{fmt.Errorf("reading %s: %w", name, err)}
		}
		rows++
		if rows <= prog.Rows {
			if skipped == nil && err == nil {
				rs.learnID(row)
			}
			continue // stored before a restart
		}
		var rec ingest.Record
		if skipped != nil {
			a.deps.CountRejected(ReasonRowTooLarge)
			rec = *skipped
		} else {
			rec = rs.record(row, err, r, guard.cutRow(r.InputOffset()))
		}
		batch = append(batch, rec)
		batchBytes += len(rec.Data)
		if len(batch) >= a.cfg.BatchRows || batchBytes >= 4<<20 {
			if err := flush(); err != nil {
				return "", err
			}
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
	}
	if err := flush(); err != nil {
		return "", err
	}
	if rows == 0 {
		a.deps.Logger.Info().Str("file", name).Msg("file has a header and no rows")
	}
	return key, nil
}

// newCSVReader reads CSV from src through a rowGuard that bounds a row to MaxRowBytes.
func (a *Adapter) newCSVReader(src io.Reader) (*rowGuard, *csv.Reader) {
	guard := &rowGuard{r: src, limit: int64(a.cfg.MaxRowBytes)}
	r := csv.NewReader(guard)
	r.Comma = a.cfg.comma()
	r.FieldsPerRecord = -1 // ragged rows are reported by us, row by row
	r.ReuseRecord = true
	return guard, r
}

// skipLongRow is called when the row starting at g.rowStart did not end within MaxRowBytes.
// It reads the row to its end as encoding/csv would (rowEnd), without keeping it, and returns
// the row's rejected record, what follows the row, and how many lines it read from g.rowStart
// on; the caller goes on with a new CSV reader over rest. Empty lines before the row are
// skipped first, without a record: the row after them may fit.
func (s rowSource) skipLongRow(g *rowGuard) (rec *ingest.Record, rest io.Reader, lines int, err error) {
	tail := g.tail
	first := 0
	for {
		switch {
		case first < len(tail) && tail[first] == '\n':
			first++
			continue
		case first+1 < len(tail) && tail[first] == '\r' && tail[first+1] == '\n':
			first += 2
			continue
		}
		break
	}
	if first > 0 {
		return nil, io.MultiReader(bytes.NewReader(bytes.Clone(tail[first:])), g.r), g.linesTo + bytes.Count(tail[:first], []byte{'\n'}), nil
	}
	line := s.lineBase + g.linesTo + 1
	e := newRowEnd(s.a.cfg.comma())
	var leftover []byte
	n, done := e.feed(tail)
	if done {
		leftover = bytes.Clone(tail[n:])
	}
	buf := make([]byte, 32<<10)
	for !done {
		m, rerr := g.r.Read(buf)
		n, done = e.feed(buf[:m])
		if done {
			leftover = bytes.Clone(buf[n:m])
			break
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return nil, nil, 0, rerr
		}
	}
	reason := fmt.Sprintf("file %s line %d: row longer than %d bytes (csvdrop.max_row_bytes); skipped to its end, line %d",
		s.file, line, s.a.cfg.MaxRowBytes, line+e.lines-1)
	if !done {
		reason = fmt.Sprintf("file %s line %d: row longer than %d bytes (csvdrop.max_row_bytes) running to the end of the file (a quote never closed?)",
			s.file, line, s.a.cfg.MaxRowBytes)
	}
	r := s.reject(line, "", reason, nil)
	return &r, io.MultiReader(bytes.NewReader(leftover), g.r), g.linesTo + e.lines, nil
}

// columns checks the header against the column mapping. A mapped column the header lacks
// fails the file; columns nobody mapped are ignored (and named once in the log).
func (a *Adapter) columns(name string, header []string) (map[string]string, error) {
	index := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if _, dup := index[h]; dup {
			return nil, failf("header names column %q twice", h)
		}
		index[h] = i
	}
	var missing []string
	used := map[string]bool{}
	for field, col := range a.cfg.Columns {
		if _, ok := index[col]; !ok {
			missing = append(missing, fmt.Sprintf("%q (for %s)", col, field))
		}
		used[col] = true
	}
	for field, col := range a.cfg.TimeColumns {
		if _, ok := index[col]; !ok {
			missing = append(missing, fmt.Sprintf("%q (the time of %s, csvdrop.time_columns)", col, field))
		}
		used[col] = true
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, failf("header lacks mapped column(s) %s; check sources.%s.csv_columns", strings.Join(missing, ", "), a.cfg.Source)
	}
	var unknown []string
	for h := range index {
		if !used[h] {
			unknown = append(unknown, h)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		a.deps.Logger.Info().Str("file", name).Strs("ignored_columns", unknown).Msg("header has columns no field is mapped to")
	}
	return a.cfg.Columns, nil
}

// rowSource turns rows of one file into records.
type rowSource struct {
	a      *Adapter
	file   string
	header []string
	index  map[string]int // header name -> column
	cols   map[string]string
	enc    string
	format rowFormat
	// idShapes are the shapes (idShape) of the incident ids of the rows read reliably so far:
	// a ragged row's id cell is taken only when it has one of them.
	idShapes map[string]bool
	// lineBase is the number of lines before the current CSV reader's first: a new reader
	// starts after a row too long to read (skipLongRow).
	lineBase int
}

// record builds the record for one row: an incident, or a rejected record carrying the file,
// line and reason. readErr is the CSV reader's error for this row, if any; cut says the row
// ends the file without a line break (rowGuard.cutRow).
//
// A row read reliably whose id cell holds an incident id is stored under that id. If its
// dates cannot be read (csvdrop.date_formats) it carries the reason, a fact about the file;
// if its content breaks the ingest rules (a word its source's code maps lack) it is stored
// as the incident it is, without a reason, and the mapper quarantines it with its problems
// each time it maps it: a code-map fix and a replay deliver it (docs/adapters.md, "Records
// that cannot be read").
func (s rowSource) record(row []string, readErr error, r *csv.Reader, cut bool) ingest.Record {
	var line int
	var pe *csv.ParseError
	if errors.As(readErr, &pe) {
		line = pe.StartLine
	} else if len(row) > 0 {
		line, _ = r.FieldPos(0)
	}
	line += s.lineBase
	where := fmt.Sprintf("file %s line %d", s.file, line)
	localID := s.cell(row, "local_id")
	switch {
	case readErr != nil:
		s.a.deps.CountRejected(ReasonRowParse)
		msg := readErr.Error()
		if pe != nil {
			msg = pe.Err.Error()
			if pe.Line != pe.StartLine {
				msg += fmt.Sprintf(" (at line %d)", s.lineBase+pe.Line)
			}
		}
		return s.reject(line, "", where+": cannot be read: "+msg, nil)
	case len(row) != len(s.header):
		s.a.deps.CountRejected(ReasonRowRagged)
		id := s.raggedID(row)
		if cut {
			// The file's last row, with no line break after it: its writer may have been in
			// the middle of it, and even of its id.
			id = ""
		}
		return s.reject(line, id, fmt.Sprintf("%s: has %d fields, the header has %d", where, len(row), len(s.header)), row)
	}
	s.learnID(row)
	if s.enc == EncodingUTF8 {
		for i, c := range row {
			if !utf8.ValidString(c) {
				s.a.deps.CountRejected(ReasonRowEncoding)
				return s.reject(line, localID, fmt.Sprintf("%s: column %q is not valid UTF-8 (set csvdrop.encoding to auto or windows-1252)", where, s.header[i]), nil)
			}
		}
	}
	row, unreadable := s.format.apply(s.index, s.cols, row)
	data, problems := fhir.IncidentFromRecord(s.a.cfg.Source, s.cols, s.header, row)
	if len(problems) > 0 {
		s.a.deps.CountRejected(ReasonRowInvalid)
		return s.reject(line, localID, where+": "+joinProblems(problems), nil, data)
	}
	in, problems := fhir.ParseIncident(data, fhir.ParseOptions{Now: s.a.deps.Now(), Sources: s.a.deps.Sources, Codes: s.a.deps.Codes})
	if in == nil || in.Source != s.a.cfg.Source {
		s.a.deps.CountRejected(ReasonRowInvalid)
		return s.reject(line, localID, where+": "+joinProblems(problems), nil, data)
	}
	if p := ingest.LocalIDProblem(in.LocalID); p != "" {
		s.a.deps.CountRejected(ReasonRowInvalid)
		if !slices.ContainsFunc(problems, func(p fhir.Problem) bool { return p.Field == "local_id" }) {
			problems = append(problems, fhir.Problem{Message: fmt.Sprintf("column %q (local_id) does not hold an incident id: %s", s.cols["local_id"], p)})
		}
		return s.reject(line, "", where+": "+joinProblems(problems), nil, data)
	}
	if len(unreadable) > 0 {
		s.a.deps.CountRejected(ReasonRowInvalid)
		return s.reject(line, in.LocalID, where+": "+strings.Join(unreadable, "; "), nil, data)
	}
	if len(problems) > 0 {
		s.a.deps.CountRejected(ReasonRowInvalid)
	}
	key := ingest.IncidentKey(in.Source, in.LocalID)
	sum := sha256.Sum256(data)
	return ingest.Record{
		Kind: ingest.KindIncident, Source: in.Source, LocalID: in.LocalID, Key: key,
		// The same incident content (or id and revision) always gives the same id, so
		// rows read again after a crash, or exported again in a later file, are dropped.
		ID:         ingest.IncidentRecordID(in.Source, key, in.RevisionOr(0), hex.EncodeToString(sum[:12])),
		Revision:   in.RevisionOr(0),
		Data:       data,
		ReceivedAt: s.a.deps.Now().UTC(),
		Origin:     where,
	}
}

func joinProblems(problems []fhir.Problem) string {
	parts := make([]string, len(problems))
	for i, p := range problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// maxIDShapes bounds the id shapes a file's rows teach (idShapes).
const maxIDShapes = 16

// idShape is an id's shape: its letters, digits and other characters, each run of letters
// written A and of digits 9 (W12345 is A9, DX-0001 is A-9). The incident ids of one export
// share a shape; a name or a word does not have theirs.
func idShape(id string) string {
	var b strings.Builder
	last := rune(0)
	for _, r := range id {
		c := r
		switch {
		case unicode.IsLetter(r):
			c = 'A'
		case unicode.IsDigit(r):
			c = '9'
		}
		if c != last || (c != 'A' && c != '9') {
			b.WriteRune(c)
		}
		last = c
	}
	return b.String()
}

// learnID notes the shape of the id of a row read reliably (its fields as many as the
// header's), for raggedID. readRows calls it for the rows it skips as stored before a
// restart too, so that a resumed file names its ragged rows as a whole read does.
func (s rowSource) learnID(row []string) {
	if len(row) != len(s.header) || s.cols["local_id"] != s.firstColumn() || len(s.idShapes) >= maxIDShapes {
		return
	}
	id := strings.TrimSpace(row[0])
	if shape := idShape(id); !s.idShapes[shape] && ingest.LocalIDProblem(id) == "" {
		s.idShapes[shape] = true
	}
}

// firstColumn is the header's first column's name.
func (s rowSource) firstColumn() string {
	if len(s.header) == 0 {
		return ""
	}
	return strings.TrimSpace(s.header[0])
}

// raggedID is the incident id of a row with more or fewer fields than the header, where it
// can be read: only when the id column is the file's first, so that no cell before it can
// have shifted it, and when the cell looks like an id (ingest.LocalIDProblem) with the
// shape of the ids of rows read reliably before it (idShape), so that the tail of a
// description broken over lines, or a name, is never taken for one. Else "" (FILE#lineN).
func (s rowSource) raggedID(row []string) string {
	if len(row) == 0 || s.cols["local_id"] != s.firstColumn() {
		return ""
	}
	id := strings.TrimSpace(row[0])
	if ingest.LocalIDProblem(id) != "" || !s.idShapes[idShape(id)] {
		return ""
	}
	return id
}

// cell returns the row's value for a mapped field, or "".
func (s rowSource) cell(row []string, field string) string {
	col, ok := s.cols[field]
	if !ok {
		return ""
	}
	for i, h := range s.header {
		if strings.TrimSpace(h) == col && i < len(row) {
			return strings.TrimSpace(row[i])
		}
	}
	return ""
}

// reject builds the record of a row that cannot be read. Its local id is the row's incident
// id when it could be read (a row read reliably, or a ragged one's by raggedID) and looks like
// an id (ingest.LocalIDProblem), so that the quarantine shows on the incident, else
// "FILE#lineN": the local id is shown on the status page, in the API and the CLI, and must
// never be a cell of free text. Its id derives from the file, the line and the reason, so a
// re-read is a duplicate.
func (s rowSource) reject(line int, localID, reason string, cells []string, data ...[]byte) ingest.Record {
	if ingest.LocalIDProblem(localID) != "" {
		localID = ingest.LookupSafe(s.file, 100) + "#line" + strconv.Itoa(line)
	}
	var body []byte
	if len(data) > 0 && data[0] != nil {
		body = data[0]
	} else {
		body, _ = json.Marshal(map[string]any{"source": s.a.cfg.Source, "file": s.file, "line": line, "reason": reason, "cells": cells})
	}
	key := ingest.IncidentKey(s.a.cfg.Source, localID)
	sum := sha256.Sum256([]byte(s.file + "\x00" + strconv.Itoa(line) + "\x00" + reason))
	return ingest.Record{
		Kind: ingest.KindIncident, Source: s.a.cfg.Source, LocalID: localID, Key: key,
		ID:         ingest.IncidentRecordID(s.a.cfg.Source, key, 0, "x"+hex.EncodeToString(sum[:12])),
		Data:       body,
		ReceivedAt: s.a.deps.Now().UTC(),
		Reason:     reason,
		Origin:     fmt.Sprintf("file %s line %d", s.file, line),
	}
}

// publishBatch publishes a batch on PublishConcurrency lanes. Rows of one incident share a
// lane, so they are stored in file order; the batch succeeds only if every row was stored.
func (a *Adapter) publishBatch(ctx context.Context, batch []ingest.Record) error {
	n := a.cfg.PublishConcurrency
	lanes := make([][]ingest.Record, n)
	for _, rec := range batch {
		h := fnv.New32a()
		h.Write([]byte(rec.Key))
		i := h.Sum32() % uint32(n)
		lanes[i] = append(lanes[i], rec)
	}
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, lane := range lanes {
		if len(lane) == 0 {
			continue
		}
		wg.Go(func() {
			for _, rec := range lane {
				if err := a.publish(bctx, rec); err != nil {
					errs[i] = err
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

func (a *Adapter) publish(ctx context.Context, rec ingest.Record) error {
	pctx, cancel := context.WithTimeout(ctx, a.cfg.PublishTimeout)
	defer cancel()
	if _, err := a.deps.Publisher.Publish(pctx, rec); err != nil {
		return fmt.Errorf("storing row of incident record %s: %w", rec.ID, err)
	}
	return nil
}

// finish moves a file (and its .done marker) into dir, writes the reason file for a failed
// one, and drops its progress record.
func (a *Adapter) finish(ctx context.Context, name, key, dir, reason string) error {
	src := filepath.Join(a.cfg.Dir, name)
	dst := filepath.Join(dir, name)
	if _, err := os.Lstat(dst); err == nil {
		ext := filepath.Ext(name)
		dst = filepath.Join(dir, strings.TrimSuffix(name, ext)+"."+a.deps.Now().UTC().Format("20060102T150405.000000000")+ext)
	}
	if err := os.Rename(src, dst); err != nil {
		return &accessError{fmt.Errorf("moving %s to %s: %w", name, dir, err)}
	}
	syncDir(a.cfg.Dir)
	if reason != "" {
		if err := os.WriteFile(dst+".reason.txt", []byte(reason+"\n"), 0o640); err != nil {
			a.deps.Logger.Warn().Err(err).Str("file", name).Msg("writing reason file failed")
		}
	}
	syncDir(dir)
	_ = os.Remove(src + ".done")
	if key != "" {
		if err := a.deps.State.Delete(ctx, key); err != nil {
			// Harmless: a stale record only says how far an identical file got.
			a.deps.Logger.Warn().Err(err).Str("file", name).Msg("dropping progress record failed")
		}
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
