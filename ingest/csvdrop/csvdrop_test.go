package csvdrop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/ingest/csvdrop"
	"github.com/psgw/psgw/test/wait"
)

var columns = map[string]string{
	"local_id": "Ref", "event_type": "Type", "occurred_at": "Incident date", "description": "Description",
	"reporter.role": "Reporter role",
}

const header = "Ref,Type,Incident date,Description,Reporter role\r\n"

func row(n int) string {
	return fmt.Sprintf("DX-%d,incident,2025-03-14,\"Fall from bed number %d, found on floor\",Nurse\r\n", n, n)
}

// writeFile drops a file the way an export job should: written aside, then renamed in.
func writeFile(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// failWatch wraps the publisher to let the sender see failed publishes (the file stays in the
// folder, which is the drop folder's "try again later").
type failWatch struct {
	next ingest.Publisher
	mu   sync.Mutex
	fail map[string]int
}

func (w *failWatch) Publish(ctx context.Context, rec ingest.Record) (ingest.PublishResult, error) {
	res, err := w.next.Publish(ctx, rec)
	if err != nil {
		w.mu.Lock()
		w.fail[rec.LocalID]++
		w.mu.Unlock()
	}
	return res, err
}

func (w *failWatch) failures(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fail[id]
}

func TestConformance(t *testing.T) {
	adaptertest.Run(t, adaptertest.Subject{
		Kind: ingest.KindIncident,
		New: func(t *testing.T, deps ingest.Deps) (ingest.Adapter, adaptertest.Sender) {
			dir := t.TempDir()
			w := &failWatch{next: deps.Publisher, fail: map[string]int{}}
			deps.Publisher = w
			deps.State = adaptertest.NewState()
			a := csvdrop.New(csvdrop.Config{Dir: dir, Source: "datix", Columns: columns, PollInterval: 5 * time.Millisecond}, deps)
			send := func(ctx context.Context, n int) (adaptertest.Outcome, error) {
				name := fmt.Sprintf("inc-%d.csv", n)
				id := fmt.Sprintf("DX-%d", n)
				before := w.failures(id)
				writeFile(t, dir, name, []byte(header+row(n)))
				for {
					if _, err := os.Stat(filepath.Join(dir, name)); os.IsNotExist(err) {
						if _, err := os.Stat(filepath.Join(dir, "failed", name)); err == nil {
							return adaptertest.Refused, nil
						}
						return adaptertest.Accepted, nil
					}
					if w.failures(id) > before {
						return adaptertest.Retry, nil
					}
					select {
					case <-ctx.Done():
						return 0, ctx.Err()
					case <-time.After(2 * time.Millisecond):
					}
				}
			}
			return a, send
		},
	})
}

// run starts an adapter on dir and returns a stop function.
func run(t *testing.T, cfg csvdrop.Config, store ingest.Publisher, state ingest.StateStore) func() {
	t.Helper()
	if cfg.Source == "" {
		cfg.Source = "datix"
	}
	if cfg.Columns == nil {
		cfg.Columns = columns
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Millisecond
	}
	a := csvdrop.New(cfg, ingest.Deps{Name: "csvdrop", Publisher: store, State: state, Logger: zerolog.Nop(),
		Now: func() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// waitGone waits until name has left dir, and reports where it went.
func waitGone(t *testing.T, dir, name string) string {
	return waitGoneWithin(t, dir, name, 30*time.Second)
}

// waitGoneWithin waits up to d until name has left dir, and reports where it went: failed,
// processed, or gone.
func waitGoneWithin(t *testing.T, dir, name string, d time.Duration) string {
	t.Helper()
	where := ""
	wait.Until(t, d, name+" out of the drop folder", func() bool {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			return false
		}
		where = "gone"
		for _, sub := range []string{"processed", "failed"} { // failed wins, as it says more
			if _, err := os.Stat(filepath.Join(dir, sub, name)); err == nil {
				where = sub
			}
		}
		return true
	})
	return where
}

func reasonFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "failed", name+".reason.txt"))
	if err != nil {
		t.Fatalf("reason file: %v", err)
	}
	return strings.TrimSpace(string(b))
}

type incident struct {
	LocalID     string `json:"local_id"`
	Description string `json:"description"`
	Reporter    struct {
		Role string `json:"role"`
	} `json:"reporter"`
}

func decode(t *testing.T, rec ingest.Record) incident {
	t.Helper()
	var in incident
	if err := json.Unmarshal(rec.Data, &in); err != nil {
		t.Fatalf("record %s: %v", rec.ID, err)
	}
	return in
}

func TestFiles(t *testing.T) {
	win1252 := []byte(header + "DX-1,incident,2025-03-14,\"Patient\x92s dose \x96 given \x80 late\",Nurse\r\n")
	for _, tc := range []struct {
		name      string
		data      []byte
		cfg       csvdrop.Config
		wantWhere string
		wantGood  []string          // local ids stored as incidents
		wantDesc  map[string]string // local id → description, exactly
		wantRej   map[string]string // local id → reason substring
		wantFail  string            // reason file substring
	}{
		{name: "utf8 with bom", data: append([]byte{0xEF, 0xBB, 0xBF}, header+row(1)+row(2)...),
			wantWhere: "processed", wantGood: []string{"DX-1", "DX-2"}},
		{name: "utf8 without bom", data: []byte(header + "DX-1,incident,2025-03-14,Café – naïve,Nurse\n"),
			wantWhere: "processed", wantGood: []string{"DX-1"}, wantDesc: map[string]string{"DX-1": "Café – naïve"}},
		{name: "windows-1252 detected", data: win1252, wantWhere: "processed", wantGood: []string{"DX-1"},
			wantDesc: map[string]string{"DX-1": "Patient’s dose – given € late"}},
		{name: "windows-1252 forced utf-8 rejects the row", data: win1252, cfg: csvdrop.Config{Encoding: "utf-8"},
			wantWhere: "processed", wantRej: map[string]string{"DX-1": "line 2: column \"Description\" is not valid UTF-8"}},
		{name: "quoted newlines and formulas", data: []byte(header +
			"DX-1,incident,2025-03-14,\"Line one\r\nline two, with comma\r\n\"\"quoted\"\"\",Nurse\r\n" +
			"DX-2,incident,2025-03-14,\"=HYPERLINK(\"\"http://x\"\")\",@SUM(A1)\r\n" +
			"DX-3,incident,2025-03-14,+44 called; -5 units,-Nurse\r\n"),
			wantWhere: "processed", wantGood: []string{"DX-1", "DX-2", "DX-3"},
			wantDesc: map[string]string{"DX-1": "Line one\nline two, with comma\n\"quoted\"", "DX-2": "=HYPERLINK(\"http://x\")", "DX-3": "+44 called; -5 units"}},
		{name: "ragged and bad rows go on", data: []byte(header + row(1) +
			"DX-2,incident,2025-03-14,too,many,fields\r\n" +
			"DX-3,incident\r\n" +
			"DX-4,incident,2025-03-14,bare \"quote here,Nurse\r\n" +
			"DX-5,incident,not-a-date,Bad date,Nurse\r\n" +
			",incident,2025-03-14,No id,Nurse\r\n" + row(7)),
			wantWhere: "processed", wantGood: []string{"DX-1", "DX-7"},
			wantRej: map[string]string{
				// Ref is the first column and DX-2 has the shape of DX-1: it can be read.
				"DX-2":             "line 3: has 6 fields, the header has 5",
				"DX-3":             "line 4: has 2 fields, the header has 5",
				"ragged.csv#line5": "line 5: cannot be read: bare \" in non-quoted-field",
				"DX-5":             "line 6: occurred_at",
				"ragged.csv#line7": "line 7: local_id",
			}},
		{name: "unknown extra header is ignored", data: []byte("Ref,Type,Incident date,Description,Reporter role,Ward\r\nDX-1,incident,2025-03-14,Fall,Nurse,Ward 9\r\n"),
			wantWhere: "processed", wantGood: []string{"DX-1"}},
		{name: "missing mapped header fails the file", data: []byte("Reference,Type,Incident date,Description,Reporter role\r\nDX-1,incident,2025-03-14,Fall,Nurse\r\n"),
			wantWhere: "failed", wantFail: `header lacks mapped column(s) "Ref" (for local_id)`},
		{name: "empty file", data: nil, wantWhere: "failed", wantFail: "empty file: no header line"},
		{name: "header only", data: []byte(header), wantWhere: "processed"},
		{name: "utf-16", data: []byte{0xFF, 0xFE, 'R', 0, 'e', 0}, wantWhere: "failed", wantFail: "UTF-16"},
		{name: "row too large to the end", data: []byte(header + row(1) + "DX-2,incident,2025-03-14,\"" + strings.Repeat("x", 3000)),
			cfg: csvdrop.Config{MaxRowBytes: 1024}, wantWhere: "processed", wantGood: []string{"DX-1"},
			wantRej: map[string]string{"ragged.csv#line3": "line 3: row longer than 1024 bytes (csvdrop.max_row_bytes) running to the end of the file"}},
		{name: "row too large, and the rows after it", data: []byte(header + row(1) +
			"DX-2,incident,2025-03-14,\"" + strings.Repeat("long, text\r\nwith \"\"quotes\"\" ", 100) + "\",Nurse\r\n" +
			row(3) + "\r\n\r\n" + "DX-4,incident,not-a-date,Bad date,Nurse\r\n" +
			"DX-5,incident,2025-03-14,\"" + strings.Repeat("y", 2000) + "\" and then, text\r\n" + row(6)),
			cfg: csvdrop.Config{MaxRowBytes: 1024}, wantWhere: "processed", wantGood: []string{"DX-1", "DX-3", "DX-6"},
			wantRej: map[string]string{
				"ragged.csv#line3":   "line 3: row longer than 1024 bytes (csvdrop.max_row_bytes); skipped to its end, line 103",
				"DX-4":               "line 107: occurred_at",
				"ragged.csv#line108": "line 108: row longer than 1024 bytes (csvdrop.max_row_bytes); skipped to its end, line 108",
			}},
		{name: "empty lines longer than a row", data: []byte(header + row(1) + strings.Repeat("\r\n", 600) + row(2)),
			cfg: csvdrop.Config{MaxRowBytes: 1024}, wantWhere: "processed", wantGood: []string{"DX-1", "DX-2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			store := adaptertest.NewStore()
			cfg := tc.cfg
			cfg.Dir = dir
			stop := run(t, cfg, store, adaptertest.NewState())
			name := "ragged.csv"
			writeFile(t, dir, name, tc.data)
			where := waitGone(t, dir, name)
			stop()
			if where != tc.wantWhere {
				t.Fatalf("file went to %s, want %s", where, tc.wantWhere)
			}
			if tc.wantFail != "" {
				if got := reasonFile(t, dir, name); !strings.Contains(got, tc.wantFail) {
					t.Errorf("reason: got %q, want it to contain %q", got, tc.wantFail)
				}
			}
			var good []string
			rej := map[string]string{}
			for _, rec := range store.Records() {
				if rec.Reason != "" {
					rej[rec.LocalID] = rec.Reason
					continue
				}
				good = append(good, rec.LocalID)
				if want, ok := tc.wantDesc[rec.LocalID]; ok {
					if got := decode(t, rec).Description; got != want {
						t.Errorf("%s description: got %q, want %q", rec.LocalID, got, want)
					}
				}
			}
			sort.Strings(good)
			if fmt.Sprint(good) != fmt.Sprint(tc.wantGood) && !(len(good) == 0 && len(tc.wantGood) == 0) {
				t.Errorf("stored incidents: got %v, want %v", good, tc.wantGood)
			}
			if len(rej) != len(tc.wantRej) {
				t.Errorf("rejected rows: got %v, want %d", rej, len(tc.wantRej))
			}
			for id, want := range tc.wantRej {
				if got := rej[id]; !strings.Contains(got, want) || !strings.Contains(got, "file ragged.csv") {
					t.Errorf("row %s: reason got %q, want it to name the file and contain %q", id, got, want)
				}
			}
		})
	}
}

// TestRowIDsNeverCarryCellText pins the privacy rule for local ids: a row that cannot be read
// reliably (ragged, broken quoting) is never named by one of its cells, whose columns may have
// shifted, and a cell is taken as the id only when it looks like one. The local id is shown
// on the status page, in the API and the CLI.
func TestRowIDsNeverCarryCellText(t *testing.T) {
	const prose = "Mrs Jane Doe (NHS 9434765919) found on floor"
	cols := map[string]string{"local_id": "Ref", "event_type": "Type", "occurred_at": "Incident date", "description": "Description", "reporter.role": "Reporter role"}
	data := "Type,Incident date,Description,Ref,Reporter role\r\n" +
		"incident,2025-03-14,Fall,DX-1,Nurse\r\n" + // line 2: good
		"incident,2025-03-14,Fall,Mrs Jane Doe (NHS 9434765919) found on floor,DX-3,Nurse\r\n" + // line 3: ragged, Ref shifted
		"incident,2025-03-14,Fall,\"" + prose + "\",Nurse\r\n" + // line 4: the id column holds prose
		"incident,2025-03-14,Fall,9434765919,Nurse\r\n" + // line 5: the id is an NHS number
		"incident,not-a-date,Fall,\"" + prose + "\",Nurse\r\n" + // line 6: invalid, with prose for an id
		"incident,2025-03-14,Fall \"Jane\" Doe,DX-7,Nurse\r\n" + // line 7: bare quote
		"incident,2025-03-14,Fall,DX-8 9434765919,Nurse\r\n" + // line 8: an id with an NHS number in it
		"incident,2025-03-14,Fall,Jane Doe on the floor,Nurse\r\n" // line 9: prose the incident API would take as an id
	dir := t.TempDir()
	store := adaptertest.NewStore()
	stop := run(t, csvdrop.Config{Dir: dir, Columns: cols}, store, adaptertest.NewState())
	writeFile(t, dir, "shift.csv", []byte(data))
	if where := waitGone(t, dir, "shift.csv"); where != "processed" {
		t.Fatalf("file went to %s, want processed", where)
	}
	stop()
	got := map[string]string{}
	for _, rec := range store.Records() {
		got[rec.LocalID] = rec.Reason
		for _, leak := range []string{"Jane", "Doe", "9434765919", "floor"} {
			if strings.Contains(rec.LocalID, leak) || strings.Contains(rec.Key, leak) || strings.Contains(rec.ID, leak) {
				t.Errorf("record %q: patient text %q in its local id, key or id", rec.LocalID, leak)
			}
			if strings.Contains(rec.Reason, leak) {
				t.Errorf("record %q: patient text %q in its reason %q", rec.LocalID, leak, rec.Reason)
			}
		}
	}
	want := map[string]string{
		"DX-1":            "",
		"shift.csv#line3": "line 3: has 6 fields",
		// ParseIncident refuses an NHS number as a local id, for every adapter (issue 15).
		"shift.csv#line4": "line 4: local_id: must not hold an NHS number",
		"shift.csv#line5": "line 5: local_id: must not hold an NHS number",
		"shift.csv#line6": "occurred_at: must be",
		"shift.csv#line7": "line 7: cannot be read",
		"shift.csv#line8": "line 8: local_id: must not hold an NHS number",
		"shift.csv#line9": `line 9: column "Ref" (local_id) does not hold an incident id: it holds white space`,
	}
	if len(got) != len(want) {
		t.Errorf("records: got %v, want the local ids of %v", got, want)
	}
	for id, reason := range want {
		r, ok := got[id]
		switch {
		case !ok:
			t.Errorf("no record with local id %q", id)
		case reason == "" && r != "":
			t.Errorf("%s: rejected with %q, want stored", id, r)
		case !strings.Contains(r, reason):
			t.Errorf("%s: reason got %q, want it to contain %q", id, r, reason)
		}
	}
}

func TestSettle(t *testing.T) {
	t.Run("done marker required", func(t *testing.T) {
		dir := t.TempDir()
		store := adaptertest.NewStore()
		stop := run(t, csvdrop.Config{Dir: dir, DoneMarker: true}, store, adaptertest.NewState())
		defer stop()
		writeFile(t, dir, "a.csv", []byte(header+row(1)))
		// Without the marker the file is never taken: after several polls it is still there.
		entered := store.Entered()
		select {
		case rec := <-entered:
			t.Fatalf("published %s before the .done marker existed", rec.ID)
		case <-time.After(100 * time.Millisecond):
		}
		writeFile(t, dir, "a.csv.done", nil)
		if where := waitGone(t, dir, "a.csv"); where != "processed" {
			t.Fatalf("file went to %s, want processed", where)
		}
		waitGone(t, dir, "a.csv.done")
	})
	t.Run("growing file waits", func(t *testing.T) {
		dir := t.TempDir()
		store := adaptertest.NewStore()
		clock := &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
		a := csvdrop.New(csvdrop.Config{Dir: dir, Source: "datix", Columns: columns, PollInterval: 2 * time.Millisecond, SettleTime: time.Minute},
			ingest.Deps{Name: "csvdrop", Publisher: store, State: adaptertest.NewState(), Logger: zerolog.Nop(), Now: clock.now})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		defer func() { cancel(); <-done }()
		writeFile(t, dir, "b.csv", []byte(header+row(1)))
		// The settle time starts at the first poll that lists the file, and each poll reads
		// the clock once before listing: after five reads the file has been seen by several
		// polls, unsettled, so moving the clock now settles it.
		clock.waitReads(t, 5)
		select {
		case rec := <-store.Entered():
			t.Fatalf("published %s before the file settled", rec.ID)
		default:
		}
		clock.add(2 * time.Minute)
		if where := waitGone(t, dir, "b.csv"); where != "processed" {
			t.Fatalf("file went to %s, want processed", where)
		}
	})
}

type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	reads int
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// waitReads waits until the clock has been read n more times than when it was called.
func (c *fakeClock) waitReads(t *testing.T, n int) {
	t.Helper()
	c.mu.Lock()
	want := c.reads + n
	c.mu.Unlock()
	wait.For(t, 10*time.Second, "the adapter polling (reading its clock)", func() (bool, string) {
		c.mu.Lock()
		got := c.reads
		c.mu.Unlock()
		return got >= want, fmt.Sprintf("clock read %d times, want %d", got, want)
	})
}

// TestResumeAfterCrash stops the adapter while a file is half stored, then starts a new one on
// the same folder and state: every row ends up stored exactly once.
func TestResumeAfterCrash(t *testing.T) {
	dir := t.TempDir()
	state := adaptertest.NewState()
	store := adaptertest.NewStore()
	var b strings.Builder
	b.WriteString(header)
	const rows = 1000
	for i := 1; i <= rows; i++ {
		b.WriteString(row(i))
	}
	cfg := csvdrop.Config{Dir: dir, BatchRows: 50}
	crash := &crashAfter{next: store, n: 420, crashed: make(chan struct{})}
	stop := run(t, cfg, crash, state)
	writeFile(t, dir, "big.csv", []byte(b.String()))
	<-crash.crashed
	stop() // the "crash": cancelled mid-file with publishes failing
	if _, err := os.Stat(filepath.Join(dir, "big.csv")); err != nil {
		t.Fatalf("the half-read file left the drop folder: %v", err)
	}
	if state.Keys() != 1 {
		t.Fatalf("progress records: got %d, want 1", state.Keys())
	}
	calls := len(store.Calls())
	stop = run(t, cfg, store, state)
	if where := waitGone(t, dir, "big.csv"); where != "processed" {
		t.Fatalf("file went to %s, want processed", where)
	}
	stop()
	if n := len(store.Records()); n != rows {
		t.Errorf("stored rows: got %d, want %d", n, rows)
	}
	// Resumed from the progress record: at most one batch per lane was sent again.
	if again := len(store.Calls()) - rows; again > 50 {
		t.Errorf("rows sent again after the restart: got %d, want at most one batch (50); %d calls before", again, calls)
	}
	if state.Keys() != 0 {
		t.Errorf("progress records after the file finished: got %d, want 0", state.Keys())
	}
}

// crashAfter stores n records, then fails every publish as a dying gateway would.
type crashAfter struct {
	next    ingest.Publisher
	mu      sync.Mutex
	n       int
	crashed chan struct{}
	once    sync.Once
}

func (c *crashAfter) Publish(ctx context.Context, rec ingest.Record) (ingest.PublishResult, error) {
	c.mu.Lock()
	c.n--
	dead := c.n < 0
	c.mu.Unlock()
	if dead {
		c.once.Do(func() { close(c.crashed) })
		return ingest.PublishResult{}, ingest.ErrUnavailable
	}
	return c.next.Publish(ctx, rec)
}

// TestQuarantinedRowsShowOnTheAdapterStatus: a quarantined row shows on the runner's status.
func TestQuarantinedRowsShowOnTheAdapterStatus(t *testing.T) {
	dir := t.TempDir()
	store := adaptertest.NewStore()
	runner, err := ingest.NewRunner(csvdrop.Factory, ingest.Deps{Name: "csvdrop", Publisher: store, State: adaptertest.NewState(),
		Logger: zerolog.Nop(), Settings: csvdrop.Config{Dir: dir, Source: "datix", Columns: columns, PollInterval: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { runner.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	writeFile(t, dir, "st.csv", []byte(header+row(1)+"DX-2,incident\r\n"))
	if where := waitGone(t, dir, "st.csv"); where != "processed" {
		t.Fatalf("file went to %s, want processed", where)
	}
	st := runner.Status()
	if st.Rejected != 1 || st.LastRejection != csvdrop.ReasonRowRagged || st.LastRejectionAt.IsZero() || st.Records != 2 {
		t.Errorf("status: got %d records, rejected %d, last %q at %v; want 2 records (one quarantined), 1 row_ragged", st.Records, st.Rejected, st.LastRejection, st.LastRejectionAt)
	}
}
