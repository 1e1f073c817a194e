package pull

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/csvdrop"
	"github.com/psgw/psgw/test/wait"
)

// TestExportPausedPastSettleTime is issue 16's fifth must-show: an export job writes half a
// file, pauses past settle_time (the file is taken and moved to processed/ meanwhile), and
// writes the rest through the handle it kept open. No row is lost: every one of the 100 rows
// is delivered, once. Run twice: with the pause between two rows, and in the middle of one.
func TestExportPausedPastSettleTime(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(all string, rows []string) int // where the job pauses
	}{
		{"between rows", func(all string, rows []string) int { return len(strings.Join(rows[:51], "\r\n") + "\r\n") }},
		{"in the middle of a row", func(all string, rows []string) int { return len(strings.Join(rows[:51], "\r\n")+"\r\n") + 20 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			h := newHarness(t, func(c *config.Config) {
				csvConfig(dir)(c)
				c.Adapters[csvdrop.Section].(*csvdrop.Config).SettleTime = 200 * time.Millisecond
			})
			rows := []string{datixHeader}
			want := map[string]int{}
			for i := 1; i <= 100; i++ {
				ref := fmt.Sprintf("DX-%04d", i)
				rows = append(rows, datixRow(ref, 1, desc(ref, 1, "Paused export"), "Obs taken"))
				want[ref] = 1
			}
			all := strings.Join(rows, "\r\n") + "\r\n"
			cut := tc.cut(all, rows)

			f, err := os.Create(filepath.Join(dir, "scheduled-export.csv"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString(all[:cut]); err != nil {
				t.Fatal(err)
			}
			// The pause: longer than the settle time, so the half file is taken.
			wait.For(t, 30*time.Second, "the half file taken", func() (bool, string) {
				_, err := os.Stat(filepath.Join(dir, "processed", "scheduled-export.csv"))
				return err == nil, fmt.Sprint(err)
			})
			if _, err := f.WriteString(all[cut:]); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			h.waitDelivered(want)
			created := map[string]int{}
			for _, w := range h.accepted() {
				if w.Method == "POST" {
					created[w.LocalRef]++
				}
			}
			for ref := range want {
				if created[ref] != 1 {
					t.Errorf("%s created %d times at the national service, want once", ref, created[ref])
				}
			}
		})
	}
}
