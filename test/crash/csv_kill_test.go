package crash

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/wait"
)

// TestCSVKill9MidFile drops one export in the CSV folder and SIGKILLs the psgw process twice
// while the file is part-way stored. After restarts, every row is delivered exactly once and
// the file ends in processed/.
func TestCSVKill9MidFile(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	s, err := gateway.NewSimulator([]string{key}, sim.Faults{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(s)
	defer simSrv.Close()

	drop := t.TempDir()
	cfgFile := filepath.Join(t.TempDir(), "psgw.yaml")
	cfg := `csvdrop:
  dir: ` + drop + `
  source: datix
  poll_interval: 50ms
  settle_time: 0s
  publish_concurrency: 1
sources:
  datix:
    csv_columns:
      local_id: Ref
      revision: Version
      event_type: Type
      occurred_at: Incident date
      description: Description
      patient.date_of_birth: DOB
      patient.sex: Sex
      location.organisation: Site
`
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gatewayProc{t: t, bin: binary(t), addr: freePort(t)}
	g.env = append(os.Environ(),
		"PSGW_DATA_DIR="+t.TempDir(), "PSGW_HTTP_ADDR="+g.addr, "PSGW_MLLP_ADDR=", "PSGW_LOG_LEVEL=error",
		"PSGW_NATIONAL_BASE_URL="+simSrv.URL, "PSGW_NATIONAL_SUBSCRIPTION_KEY="+key,
	)
	g.args = []string{"--config", cfgFile}
	g.mustStart()
	defer g.stop()

	const rows = 3000
	var b strings.Builder
	b.WriteString("Ref,Version,Type,Incident date,Description,DOB,Sex,Site\r\n")
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&b, "CSV-%05d,1,incident,2025-03-14,\"Incident CSV-%05d revision 1: a fall, no harm.\",1950-01-02,male,RRK\r\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(drop, ".export.part"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(drop, ".export.part"), filepath.Join(drop, "export.csv")); err != nil {
		t.Fatal(err)
	}

	rawRecords := func() uint64 {
		resp, err := http.Get("http://" + g.addr + "/api/v1/status")
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		var st struct {
			RawRecords uint64 `json:"raw_records"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&st)
		return st.RawRecords
	}
	kills := 0
	for _, at := range []uint64{rows / 5, rows / 2} {
		// Polled every 5 ms, tighter than wait.Interval: the kill must land mid-file.
		deadline := time.Now().Add(2 * time.Minute)
		for rawRecords() < at {
			if time.Now().After(deadline) {
				t.Fatalf("only %d rows stored after 2 minutes", rawRecords())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if _, err := os.Stat(filepath.Join(drop, "export.csv")); err != nil {
			t.Fatalf("the file left the folder before the kill; not mid-file: %v", err)
		}
		g.kill()
		kills++
		g.mustStart()
	}
	// Every row ends delivered, or unknown when a kill hit its POST in flight (the gateway then
	// cannot know whether the national service stored it, and does not guess).
	state := func(id string) string {
		resp, err := http.Get("http://" + g.addr + "/api/v1/incidents/datix/" + id)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var rec record
		_ = json.NewDecoder(resp.Body).Decode(&rec)
		return rec.State
	}
	var unknown []string
	next := 1
	wait.For(t, 3*time.Minute, "every row delivered or unknown", func() (bool, string) {
		for ; next <= rows; next++ {
			id := fmt.Sprintf("CSV-%05d", next)
			switch st := state(id); st {
			case "delivered":
			case "unknown":
				unknown = append(unknown, id)
			default:
				return false, fmt.Sprintf("%s is %q", id, st)
			}
		}
		return true, ""
	})
	wait.For(t, time.Minute, "the file in processed/", func() (bool, string) {
		_, err := os.Stat(filepath.Join(drop, "processed", "export.csv"))
		return err == nil, fmt.Sprint(err)
	})
	creates := map[string]int{}
	re := regexp.MustCompile(`Incident (CSV-\d{5}) revision`)
	for _, ev := range s.Events() {
		if m := re.FindStringSubmatch(string(ev.Resource)); m != nil {
			creates[m[1]]++
		}
	}
	isUnknown := map[string]bool{}
	for _, id := range unknown {
		isUnknown[id] = true
	}
	for i := 1; i <= rows; i++ {
		id := fmt.Sprintf("CSV-%05d", i)
		switch {
		case creates[id] > 1:
			t.Errorf("%s: created %d times", id, creates[id])
		case !isUnknown[id] && creates[id] != 1:
			t.Errorf("%s: delivered per the gateway but created %d times", id, creates[id])
		}
	}
	// Each kill can leave at most one POST per delivery worker (8) unknown.
	if len(unknown) > kills*8 {
		t.Errorf("%d rows unknown, more than %d kills × 8 workers", len(unknown), kills)
	}
	if n := rawRecords(); n != rows {
		t.Errorf("raw records stored: %d, want %d (rows re-read after a kill must be dropped as duplicates)", n, rows)
	}
	t.Logf("unknown after the kills: %d %v", len(unknown), unknown)
	t.Logf("%d rows, %d SIGKILLs mid-file: every row created once; raw records %d", rows, kills, rawRecords())
}
