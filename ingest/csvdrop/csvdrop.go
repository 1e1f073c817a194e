// Package csvdrop is the ingest adapter for incident systems that export CSV files (Datix,
// Ulysses, InPhase exports) into a drop folder. It polls the folder, reads each settled file
// as a stream, maps every row to an incident by header name (sources.NAME.csv_columns) and
// publishes it. What the source (the folder) is told:
//
//   - the file moves to processed/ once every row of it is durably stored (or quarantined);
//   - a file that cannot be read at all (empty, no usable header, UTF-16, too large) moves
//     to failed/, with NAME.reason.txt beside it saying why;
//   - a file whose rows cannot be stored now (queue down) stays where it is and is tried
//     again later; a crash part-way through resumes where the stored rows end.
//
// Dates are read with DateFormats and joined to TimeColumns on the UK wall clock; the source's
// own words for the event type, harm and sex go through its code maps (ingest.Deps.Codes).
// A row that cannot be read (ragged, broken quoting, invalid text, longer than MaxRowBytes,
// a date no format reads) does not stop the file: it is stored as a rejected record with its
// file, line number and reason, and the mapper quarantines it, so the operator sees it under
// GET /api/v1/incidents/{source}/{local_id} (its incident id where it can be read, or
// "FILE#lineN"). A row read into an incident that breaks the ingest rules is stored as that
// incident, under its id, and quarantined by the mapper, which reads it afresh with the
// current code maps each time: a fixed map and a replay deliver it.
//
// Settling: a file is taken once a NAME.done marker exists beside it, or, unless DoneMarker is
// set, once its size and modification time have not changed for SettleTime. Cells are plain
// text: a cell starting with =, +, - or @ is passed on as that text and never evaluated.
package csvdrop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/psgw/psgw/ingest"
)

// Reasons counted in psgw_ingest_errors_total{reason}.
const (
	ReasonRowRagged   = "row_ragged"    // a row with more or fewer fields than the header
	ReasonRowParse    = "row_parse"     // broken quoting
	ReasonRowEncoding = "row_encoding"  // not valid UTF-8 when encoding is utf-8
	ReasonRowInvalid  = "row_invalid"   // the row breaks the ingest rules (missing id, bad date)
	ReasonRowTooLarge = "row_too_large" // a row longer than MaxRowBytes, skipped to its end
	ReasonFileFailed  = "file_failed"   // a whole file moved to failed/
	ReasonFileChanged = "file_changed"  // a file that changed while or after it was read: read again
)

// Adapter polls one drop folder. Build it with New or the registered Factory.
type Adapter struct {
	cfg  Config
	deps ingest.Deps
	// seen remembers each waiting file's size and mtime, and since when, for the settle rule.
	// Only Run touches it, and Run is never concurrent with itself.
	seen map[string]fileStat
	// failures counts consecutive polls that could not store rows, for the backoff.
	failures int
	// taken are the files moved to processed/ still watched for changes, by path (watch.go);
	// reread are the files moved back to be read again, which the settle rule takes even
	// with DoneMarker. Only Run touches them.
	taken  map[string]takenFile
	reread map[string]bool
}

type fileStat struct {
	size  int64
	mtime time.Time
	since time.Time
}

var _ ingest.Adapter = (*Adapter)(nil)

func init() {
	ingest.Register(ingest.Module{
		Kind:    Kind,
		Section: Section,
		New:     ingest.NewSettings(Defaults),
		Factory: Factory,
		// Files are read at the pace of the poll; a failing folder is retried for longer.
		State:      true,
		BackoffMax: 5 * time.Minute,
	})
}

// Factory builds the adapter from deps.Settings (a Config or *Config). It does no I/O. The
// column map comes from the source's csv_columns (deps.Shared) unless the settings hold one,
// and without a publish timeout of its own it takes the gateway's (queue.publish_timeout).
func Factory(deps ingest.Deps) (ingest.Adapter, error) {
	cfg, err := ingest.SettingsAs[Config](Kind, deps)
	if err != nil {
		return nil, err
	}
	if cfg.Columns == nil {
		cfg.Columns = deps.Shared.Sources[cfg.Source].CSVColumns
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = deps.Shared.PublishTimeout
	}
	switch {
	case cfg.Dir == "":
		return nil, errors.New("csvdrop adapter: Dir is required")
	case cfg.Source == "":
		return nil, errors.New("csvdrop adapter: Source is required")
	case cfg.Columns["local_id"] == "":
		return nil, errors.New("csvdrop adapter: Columns must map local_id")
	case deps.State == nil:
		return nil, errors.New("csvdrop adapter: needs a state store for file progress")
	}
	if _, err := chooseEncoding(cfg.Encoding, fileFacts{}); err != nil {
		return nil, fmt.Errorf("csvdrop adapter: %w", err)
	}
	cfg = cfg.withDefaults()
	cfg.MaxRowBytes = int(ingest.FitRecordLimit(deps, Section+".max_row_bytes", int64(cfg.MaxRowBytes)))
	return New(cfg, deps), nil
}

// New builds the adapter. It does no I/O.
func New(cfg Config, deps ingest.Deps) *Adapter {
	deps.Now = deps.Clock()
	return &Adapter{cfg: cfg.withDefaults(), deps: deps, seen: map[string]fileStat{}, taken: map[string]takenFile{}, reread: map[string]bool{}}
}

// Run polls the folder until ctx is cancelled. A folder that cannot be listed or created, or a
// file that cannot be opened (permissions), is returned as an error after the rest of the poll,
// so that the runner reports it and retries with backoff. Rows that cannot be stored now leave
// their file in place to be tried again, with backoff, on a later poll.
func (a *Adapter) Run(ctx context.Context) error {
	for _, d := range []string{a.cfg.ProcessedDir, a.cfg.FailedDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	for {
		err := a.poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		t := time.NewTimer(ingest.PollWait(a.cfg.PollInterval, a.failures))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// poll lists the folder once and processes every ready file, oldest name first.
func (a *Adapter) poll(ctx context.Context) error {
	entries, err := os.ReadDir(a.cfg.Dir)
	if err != nil {
		return fmt.Errorf("listing drop folder: %w", err)
	}
	now := a.deps.Now()
	a.watchTaken(now)
	present := map[string]bool{}
	var accessErrs []error
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".done") {
			continue
		}
		if ok, _ := filepath.Match(a.cfg.Pattern, name); !ok {
			continue
		}
		present[name] = true
		if !a.ready(name, now) {
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		err := a.processFile(ctx, name)
		var access *accessError
		switch {
		case err == nil:
			delete(a.seen, name)
			delete(a.reread, name)
			a.failures = 0
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &access):
			accessErrs = append(accessErrs, err)
		default:
			// Rows could not be stored (or progress not recorded): leave the file for a later
			// poll; the runner already reported the failed publish.
			a.failures++
			a.deps.Logger.Warn().Err(err).Str("file", name).Msg("file not finished; will retry")
			return nil
		}
	}
	for name := range a.seen {
		if !present[name] {
			delete(a.seen, name)
		}
	}
	for name := range a.reread {
		if !present[name] {
			delete(a.reread, name)
		}
	}
	return errors.Join(accessErrs...)
}

// ready applies the settle rule to one file.
func (a *Adapter) ready(name string, now time.Time) bool {
	path := filepath.Join(a.cfg.Dir, name)
	if _, err := os.Stat(path + ".done"); err == nil {
		return true
	}
	if a.cfg.DoneMarker && !a.reread[name] {
		return false
	}
	info, err := os.Stat(path)
	if err != nil {
		return false // gone since the listing
	}
	st, ok := a.seen[name]
	if !ok || st.size != info.Size() || !st.mtime.Equal(info.ModTime()) {
		a.seen[name] = fileStat{size: info.Size(), mtime: info.ModTime(), since: now}
		return false
	}
	settled := now.Sub(st.since)
	if settled >= a.cfg.SettleTime && settled < 2*a.cfg.SettleTime && endsMidLine(path, info.Size()) {
		// A writer that paused in the middle of a row is given a second settle time.
		return false
	}
	return settled >= a.cfg.SettleTime
}

// endsMidLine reports whether the file's last byte is not a line break.
func endsMidLine(path string, size int64) bool {
	if size == 0 {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, size-1); err != nil {
		return false
	}
	return b[0] != '\n' && b[0] != '\r'
}

// accessError is a file the adapter may not open: reported on the status and retried, not
// moved to failed/, since an operator can fix the permission.
type accessError struct{ err error }

func (e *accessError) Error() string { return e.err.Error() }
func (e *accessError) Unwrap() error { return e.err }
