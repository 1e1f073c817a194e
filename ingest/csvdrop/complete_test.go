package csvdrop_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/ingest/csvdrop"
	"github.com/psgw/psgw/test/wait"
)

// storedIDs lists the local ids of the incidents stored, each once.
func storedIDs(store *adaptertest.Store) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range store.Records() {
		if !seen[r.LocalID] {
			seen[r.LocalID] = true
			out = append(out, r.LocalID)
		}
	}
	sort.Strings(out)
	return out
}

// runLive runs an adapter on dir on the real clock, with a settle time, until the test ends.
func runLive(t *testing.T, dir string, settle time.Duration, store ingest.Publisher, onReject func(string)) {
	t.Helper()
	a := csvdrop.New(csvdrop.Config{Dir: dir, Source: "datix", Columns: columns, PollInterval: 5 * time.Millisecond, SettleTime: settle},
		ingest.Deps{Name: "csvdrop", Publisher: store, State: adaptertest.NewState(), Logger: zerolog.Nop(), Now: time.Now, OnReject: onReject})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// TestExportPausedPastSettleTime is issue 16's fourth defect: an export job writes half a
// file, pauses longer than settle_time, and writes the rest. The file was taken after the
// pause began and moved to processed/; the job, still holding it open, wrote its other rows
// there, and they were never read. Now a file that changes after it was taken is noticed and
// read again: every row is stored.
func TestExportPausedPastSettleTime(t *testing.T) {
	dir := t.TempDir()
	store := adaptertest.NewStore()
	runLive(t, dir, 50*time.Millisecond, store, nil)

	f, err := os.Create(filepath.Join(dir, "export.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(header + row(1) + row(2) + row(3)); err != nil {
		t.Fatal(err)
	}
	// The pause: the first half settles and is taken.
	if where := waitGone(t, dir, "export.csv"); where != "processed" {
		t.Fatalf("the first half went to %s", where)
	}
	if _, err := f.WriteString(row(4) + row(5) + row(6)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint([]string{"DX-1", "DX-2", "DX-3", "DX-4", "DX-5", "DX-6"})
	wait.For(t, 20*time.Second, "every row stored, those written after the pause too", func() (bool, string) {
		got := fmt.Sprint(storedIDs(store))
		return got == want, "stored " + got
	})
}

// TestFileChangedWhileRead: a file that grows while its rows are being stored is not moved
// to processed/ as it was read: it settles again and is read again whole, so the rows it
// gained are stored too (and those stored before are duplicates).
func TestFileChangedWhileRead(t *testing.T) {
	dir := t.TempDir()
	store := adaptertest.NewStore()
	var mu sync.Mutex
	var rejects []string
	store.Hold()
	runLive(t, dir, 20*time.Millisecond, store, func(r string) { mu.Lock(); rejects = append(rejects, r); mu.Unlock() })
	path := filepath.Join(dir, "export.csv")
	if err := os.WriteFile(path, []byte(header+row(1)+row(2)), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := <-store.Entered() // a row is being stored: the file was taken
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("the file left the folder while its rows were being stored (%s): %v", rec.LocalID, err)
	}
	if _, err := f.WriteString(row(3)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	store.Release()
	if where := waitGone(t, dir, "export.csv"); where != "processed" {
		t.Fatalf("file went to %s", where)
	}
	if got, want := fmt.Sprint(storedIDs(store)), fmt.Sprint([]string{"DX-1", "DX-2", "DX-3"}); got != want {
		t.Errorf("stored %s, want %s", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(rejects) != "[file_changed]" {
		t.Errorf("counted %v, want one file_changed", rejects)
	}
}

// TestExportPausedMidRow: the job pauses in the middle of a row, even of its id, past the
// settle time (twice over, for a file that ends mid-line). The rows before the cut are
// stored; the cut row, read as it was, is never filed under the piece of its id it had
// (DX-1 of DX-12), only under its file and line; once the job writes the rest, the file is
// read again and every row is stored under its own id.
func TestExportPausedMidRow(t *testing.T) {
	dir := t.TempDir()
	store := adaptertest.NewStore()
	runLive(t, dir, 30*time.Millisecond, store, nil)
	f, err := os.Create(filepath.Join(dir, "export.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all := header + row(10) + row(11) + row(12) + row(13)
	cut := len(header+row(10)+row(11)) + len("DX-1")
	if _, err := f.WriteString(all[:cut]); err != nil {
		t.Fatal(err)
	}
	if where := waitGone(t, dir, "export.csv"); where != "processed" {
		t.Fatalf("the first part went to %s", where)
	}
	if _, err := f.WriteString(all[cut:]); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint([]string{"DX-10", "DX-11", "DX-12", "DX-13", "export.csv#line4"})
	wait.For(t, 20*time.Second, "stored "+want, func() (bool, string) {
		got := fmt.Sprint(storedIDs(store))
		return got == want, "stored " + got
	})
}
