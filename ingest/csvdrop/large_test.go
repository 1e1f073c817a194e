package csvdrop_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/ingest/csvdrop"
)

// counter is a Publisher that keeps nothing, so that the test measures the adapter's memory,
// not the store's.
type counter struct{ n, rejected atomic.Int64 }

func (c *counter) Publish(_ context.Context, rec ingest.Record) (ingest.PublishResult, error) {
	c.n.Add(1)
	if rec.Reason != "" {
		c.rejected.Add(1)
	}
	return ingest.PublishResult{}, nil
}

// TestLargeExport streams an 80 MB export (generated here) and checks that the heap stays far
// below the file's size. Its rate is logged, not asserted (test/load measures speed): the
// wait below only catches a hang, and is long because under -race on two loaded cores the
// file took 35 s alone and over 90 s beside other packages' tests.
func TestLargeExport(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads an 80 MB file")
	}
	dir := t.TempDir()
	tmp := filepath.Join(dir, ".export.tmp")
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(header)
	narrative := strings.Repeat("Patient found on the floor beside the bed; obs taken, no injury seen. ", 28) // ~2 KB
	rows := 0
	for size := len(header); size < 80<<20; rows++ {
		line := fmt.Sprintf("DX-%07d,incident,2025-03-14,\"%d %s\",Nurse\r\n", rows, rows, narrative)
		if rows%10000 == 9999 {
			line = fmt.Sprintf("DX-%07d,incident,ragged\r\n", rows) // a bad row now and then
		}
		w.WriteString(line)
		size += len(line)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	info, _ := os.Stat(tmp)

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-sampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	pub := &counter{}
	start := time.Now()
	stop := run(t, csvdrop.Config{Dir: dir}, pub, adaptertest.NewState())
	if err := os.Rename(tmp, filepath.Join(dir, "export.csv")); err != nil {
		t.Fatal(err)
	}
	where := waitGoneWithin(t, dir, "export.csv", 5*time.Minute)
	elapsed := time.Since(start)
	stop()
	close(sampling)
	<-sampled
	if where != "processed" {
		t.Fatalf("file went to %s, want processed", where)
	}
	if got := pub.n.Load(); got != int64(rows) {
		t.Errorf("rows published: got %d, want %d", got, rows)
	}
	if got, want := pub.rejected.Load(), int64(rows/10000); got != want {
		t.Errorf("rows rejected: got %d, want %d", got, want)
	}
	grew := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("%d MB, %d rows in %s (%.0f rows/s, %.1f MB/s); heap peak %.1f MB (%.1f MB above the start)",
		info.Size()>>20, rows, elapsed.Round(time.Millisecond), float64(rows)/elapsed.Seconds(),
		float64(info.Size())/(1<<20)/elapsed.Seconds(), float64(peak.Load())/(1<<20), float64(grew)/(1<<20))
	if grew > 32<<20 {
		t.Errorf("heap grew by %d MB while streaming an %d MB file, want at most 32 MB", grew>>20, info.Size()>>20)
	}
}
