package pull

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/csvdrop"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/test/wait"
)

const datixHeader = `"Ref","Version","Type","Incident date","Description","Action taken","NHS number","DOB","Sex","Harm","Psychological harm","Site","Reporter role","Reporting org"`

// datixRow is one export row; the description names the incident and revision so that the
// simulator's writes can be traced back.
func datixRow(ref string, rev int, description, action string) string {
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	return strings.Join([]string{q(ref), fmt.Sprint(rev), q("incident"), q("2025-03-14"), q(description), q(action),
		q("9434765919"), q("1975-03-01"), q("female"), q("low"), q("none"), q("RRK"), q("Nurse or midwife"), q("RRK")}, ",")
}

func desc(ref string, rev int, text string) string {
	return fmt.Sprintf("%s revision %d: %s", ref, rev, text)
}

// to1252 encodes s, which holds only Windows-1252 characters, the way Excel on Windows saves.
func to1252(t *testing.T, s string) []byte {
	special := map[rune]byte{'’': 0x92, '‘': 0x91, '–': 0x96, '€': 0x80, '“': 0x93, '”': 0x94}
	var out []byte
	for _, r := range s {
		switch b, ok := special[r]; {
		case ok:
			out = append(out, b)
		case r < 0x100:
			out = append(out, byte(r))
		default:
			t.Fatalf("%q is not in Windows-1252", r)
		}
	}
	return out
}

func dropFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".part")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func csvConfig(dir string) func(*config.Config) {
	return func(c *config.Config) {
		d := c.Adapters[csvdrop.Section].(*csvdrop.Config)
		d.Dir = dir
		d.Source = "datix"
		d.PollInterval = 20 * time.Millisecond
		d.SettleTime = 0
	}
}

// TestCSVExportsEndToEnd drops three Datix-style exports (UTF-8 with a BOM, Windows-1252, and
// UTF-8 without one; quoted newlines, formula cells, a ragged row, a re-exported row and an
// amendment). Every good row is delivered exactly once, the bad row is quarantined with its
// line number, and every file ends in processed/.
func TestCSVExportsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, csvConfig(dir))

	crlf := func(rows ...string) string { return strings.Join(rows, "\r\n") + "\r\n" }
	export1 := append([]byte{0xEF, 0xBB, 0xBF}, crlf(datixHeader,
		datixRow("DX-0001", 1, desc("DX-0001", 1, "IV antibiotic dose given two hours late."), "Dose given; prescriber informed"),
		datixRow("DX-0002", 1, desc("DX-0002", 1, "Patient found on floor.\r\nNo injury seen.\r\nObs stable."), "Falls bundle started"),
		datixRow("DX-0003", 1, desc("DX-0003", 1, "=HYPERLINK(\"http://evil\",\"click\") pasted into the form"), "@pharmacy told"),
		datixRow("DX-0004", 1, "=1+1 "+desc("DX-0004", 1, "formula-looking text"), "-"),
	)...)
	export2 := to1252(t, crlf(datixHeader,
		datixRow("DX-0005", 1, desc("DX-0005", 1, "Patient’s warfarin – missed dose, £0 cost"), "GP informed"),
		datixRow("DX-0006", 1, desc("DX-0006", 1, "“Wrong” wristband applied"), "Band replaced"),
		`"DX-0099","1","incident","2025-03-14","Ragged row with missing columns"`,
		datixRow("DX-0007", 1, desc("DX-0007", 1, "Pressure ulcer found on admission – grade 2"), "Tissue viability referral"),
	))
	export3 := []byte(strings.Join([]string{datixHeader,
		datixRow("DX-0008", 1, desc("DX-0008", 1, "Syringe driver alarm\nignored for 20 minutes"), "Alarm reset"),
		datixRow("DX-0001", 1, desc("DX-0001", 1, "IV antibiotic dose given two hours late."), "Dose given; prescriber informed"),
		datixRow("DX-0002", 2, desc("DX-0002", 2, "Patient found on floor. Review: bed rails were down."), "Falls bundle started"),
		datixRow("DX-0009", 1, desc("DX-0009", 1, "Delay in CT scan"), "+ escalated to radiology"),
		datixRow("DX-0010", 1, desc("DX-0010", 1, "Medication fridge above 8°C"), "Stock quarantined"),
	}, "\n") + "\n")

	dropFile(t, dir, "datix-2025-03-14-a.csv", export1)
	dropFile(t, dir, "datix-2025-03-14-b.csv", export2)
	h.waitDelivered(map[string]int{"DX-0001": 1, "DX-0002": 1, "DX-0003": 1, "DX-0004": 1, "DX-0005": 1, "DX-0006": 1, "DX-0007": 1})
	dropFile(t, dir, "datix-2025-03-15.csv", export3)
	h.waitDelivered(map[string]int{"DX-0001": 1, "DX-0002": 2, "DX-0008": 1, "DX-0009": 1, "DX-0010": 1})

	// The bad row: quarantined, visible through the API, with its file and line number. A
	// ragged row's cells may have shifted, but Ref is the first column and DX-0099 has the
	// shape of the file's ids: it is filed under the incident's id.
	const badID = "DX-0099"
	wait.For(t, 10*time.Second, "the ragged row quarantined", func() (bool, string) {
		r, code := h.record(badID)
		return code == 200 && r.State == "quarantined", fmt.Sprint(code, " ", r.State)
	})
	bad, _ := h.record(badID)
	if want := "file datix-2025-03-14-b.csv line 4: has 5 fields, the header has 14"; !strings.Contains(bad.LastError, want) {
		t.Errorf("quarantine reason: got %q, want it to contain %q", bad.LastError, want)
	}

	// Every file in processed/, none left or failed.
	for _, name := range []string{"datix-2025-03-14-a.csv", "datix-2025-03-14-b.csv", "datix-2025-03-15.csv"} {
		wait.For(t, 10*time.Second, name+" in processed/", func() (bool, string) {
			_, err := os.Stat(filepath.Join(dir, "processed", name))
			return err == nil, fmt.Sprint(err)
		})
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.csv")); len(left) > 0 {
		t.Errorf("files left in the drop folder: %v", left)
	}
	if failed, _ := os.ReadDir(filepath.Join(dir, "failed")); len(failed) > 0 {
		t.Errorf("files in failed/: %d", len(failed))
	}

	// Exactly once: one create per incident, one amendment for DX-0002, nothing else.
	count := map[string]int{}
	for _, w := range h.accepted() {
		count[fmt.Sprintf("%s r%d %s", w.LocalRef, w.Revision, w.Method)]++
	}
	want := map[string]int{"DX-0002 r2 PUT": 1}
	for i := 1; i <= 10; i++ {
		want[fmt.Sprintf("DX-%04d r1 POST", i)] = 1
	}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("writes at the national service:\n got %v\nwant %v", count, want)
	}
	// Text arrived as text: the Windows-1252 characters decoded, the formula untouched.
	for _, ev := range h.sim.Events() {
		res := string(ev.Resource)
		if strings.Contains(res, "DX-0005") && !strings.Contains(res, "Patient’s warfarin – missed dose, £0 cost") {
			t.Errorf("DX-0005 text was not decoded from Windows-1252: %s", res)
		}
		if strings.Contains(res, "DX-0003") && !strings.Contains(res, `=HYPERLINK(\"http://evil\",\"click\")`) {
			t.Errorf("DX-0003's formula text did not arrive as written")
		}
	}
}

// TestCSVCrashMidFile stops the gateway while a 1,000-row export is half stored, then starts
// it again on the same data: every row is delivered once, none lost, none twice. A row whose
// POST outlived the national timeout (a loaded machine, the stop) ends unknown, which is a
// legitimate, visible outcome; it must still never be created twice.
func TestCSVCrashMidFile(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, func(c *config.Config) {
		csvConfig(dir)(c)
		c.Queue.Sync = "always" // every row fsynced: slow enough to stop part-way
		c.Adapters[csvdrop.Section].(*csvdrop.Config).PublishConcurrency = 1
	})
	const rows = 1000
	lines := []string{datixHeader}
	want := map[string]int{}
	for i := 1; i <= rows; i++ {
		ref := fmt.Sprintf("DX-%04d", i)
		lines = append(lines, datixRow(ref, 1, desc(ref, 1, "Fall on ward 9"), "Obs taken"))
		want[ref] = 1
	}
	dropFile(t, dir, "big-export.csv", []byte(strings.Join(lines, "\r\n")+"\r\n"))

	rawCount := func() uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		info, err := h.GW.Queue.StreamInfo(ctx, queue.RawStream)
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	wait.For(t, 60*time.Second, "a part of the file stored", func() (bool, string) {
		n := rawCount()
		return n >= 150, fmt.Sprint(n)
	})
	h.Stop() // mid-file
	if _, err := os.Stat(filepath.Join(dir, "big-export.csv")); err != nil {
		t.Fatalf("the file left the drop folder before the stop; the test did not stop mid-file: %v", err)
	}
	h.Start()
	unknown := h.waitSettled(want)
	wait.For(t, 10*time.Second, "file in processed/", func() (bool, string) {
		_, err := os.Stat(filepath.Join(dir, "processed", "big-export.csv"))
		return err == nil, fmt.Sprint(err)
	})
	writes := map[string]int{}
	for _, w := range h.accepted() {
		if w.Method != "POST" {
			t.Errorf("%s: a %s, want only creates", w.LocalRef, w.Method)
		}
		writes[w.LocalRef]++
	}
	for ref := range want {
		switch n := writes[ref]; {
		case n > 1:
			t.Errorf("%s: created %d times, want once", ref, n)
		case n == 0 && !unknown[ref]:
			t.Errorf("%s: delivered per the gateway but never created", ref)
		}
	}
	if len(unknown) > 0 {
		t.Logf("%d rows ended unknown (POST outlived the national timeout); none created twice", len(unknown))
	}
	if n := rawCount(); n != rows {
		t.Errorf("raw records stored: got %d, want %d (re-read rows must be dropped as duplicates)", n, rows)
	}
}
