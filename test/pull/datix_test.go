package pull

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/csvdrop"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/test/wait"
)

var sentDate = regexp.MustCompile(`"date":"[^"]*"`)

// exampleDir holds the shipped Datix-style listing export and its configuration.
var exampleDir = filepath.Join("..", "..", "docs", "examples")

// datixExample replaces the harness's configuration with docs/examples/datix-listing.yaml,
// loaded as psgw run would load it, keeping only what places it in the test: the data
// directory, the listeners, the simulator, the drop folder and the polling pace.
func datixExample(t *testing.T, dir string) func(*config.Config) {
	return func(c *config.Config) {
		loaded, err := config.Load(filepath.Join(exampleDir, "datix-listing.yaml"), nil)
		if err != nil {
			t.Fatalf("loading the shipped example: %v", err)
		}
		loaded.DataDir, loaded.HTTP.Addr, loaded.Queue.Sync = c.DataDir, c.HTTP.Addr, c.Queue.Sync
		loaded.National = c.National
		loaded.Adapters[hl7mllp.Section].(*hl7mllp.Config).Addr = ""
		d := loaded.Adapters[csvdrop.Section].(*csvdrop.Config)
		d.Dir, d.ProcessedDir, d.FailedDir = dir, "", ""
		d.PollInterval, d.SettleTime = 20*time.Millisecond, 0
		*c = loaded
	}
}

// record reads one incident's delivery record, with the id escaped for the path.
func (h *harness) recordOf(localID string) (state, lastError string, code int) {
	h.t.Helper()
	resp, err := http.Get(h.Base + "/api/v1/incidents/datix/" + url.PathEscape(localID))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		State     string `json:"state"`
		LastError string `json:"last_error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return r.State, r.LastError, resp.StatusCode
}

func (h *harness) waitState(localID, state string) string {
	h.t.Helper()
	var last string
	wait.For(h.t, 60*time.Second, localID+" "+state, func() (bool, string) {
		st, why, code := h.recordOf(localID)
		last = why
		return code == 200 && st == state, fmt.Sprint(code, " ", st, " ", why)
	})
	return last
}

// TestDatixListingExport is issue 16's fourth must-show. With the shipped example
// configuration (docs/examples/datix-listing.yaml), the shipped export (UTF-8 with a BOM, UK
// dates, the time in a Time column, the event type, harm and sex in words) is delivered
// whole, nothing quarantined. A second export, saved by Excel as Windows-1252, holds good
// rows, two rows with words the code maps lack and a ragged row: the good rows are delivered,
// the three bad ones quarantined under their own incident ids. The two words are added to the
// code maps, psgw restarted with them and the two incidents replayed: both are delivered.
func TestDatixListingExport(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, datixExample(t, dir))

	shipped, err := os.ReadFile(filepath.Join(exampleDir, "datix-listing.csv"))
	if err != nil {
		t.Fatal(err)
	}
	dropFile(t, dir, "datix-listing.csv", shipped)
	for i := 10231; i <= 10236; i++ {
		h.waitState(fmt.Sprintf("W%d", i), "delivered")
	}
	// UK wall clock: 09:30 on 14 March is GMT, 17:25 on 20 July is BST (the export wrote
	// that date as a date-time at midnight); the words became codes.
	byRef := map[string]string{}
	for _, ev := range h.sim.Events() {
		res := string(ev.Resource)
		for _, ref := range []string{"four hours late", "died two days later", "blood sample"} {
			if strings.Contains(res, ref) {
				byRef[ref] = res
			}
		}
	}
	for ref, want := range map[string][]string{
		"four hours late":     {`"date":"2025-03-14T09:30:00Z"`, `"url":"PhysicalHarm","valueCode":"4"`},
		"died two days later": {`"date":"2025-07-20T17:25:00+01:00"`, `"url":"PhysicalHarm","valueCode":"1"`},
		"blood sample":        {`"url":"PhysicalHarm","valueCode":"5"`},
	} {
		for _, w := range want {
			if !strings.Contains(byRef[ref], w) {
				t.Errorf("the incident %q: %s not in what was sent (%s)", ref, w, sentDate.FindString(byRef[ref]))
			}
		}
	}

	second := to1252(t, strings.Join([]string{
		"ID,Type,Incident date,Time,Reported date,Site code,Specialty,Description,Action taken,Severity of harm,Psychological harm,Sex,Date of birth,NHS number,Reporter job title",
		`W10240,Incident,03/08/2025,08:15,03/08/2025,RRK,Paediatrics,"Child’s weight recorded in lb, dose worked out in kg – caught by pharmacist",Dose recalculated,No harm,No harm,Female,14/02/2019,,Pharmacist`,
		`W10241,Incident,04/08/2025,11:50,04/08/2025,RRK,Elderly Care,"Pressure ulcer found on admission – grade 2",Tissue viability referral,Low harm,,Male,02/02/1940,,Staff nurse`,
		`W10242,Incident,05/08/2025,16:00,05/08/2025,RRK,General Medicine,"Insulin given twice; blood glucose monitored",Diabetes team informed,No harm – impact prevented,,Female,09/09/1950,,Staff nurse`,
		`W10243,Prevented incident,06/08/2025,09:05,06/08/2025,RRK,Emergency Department,"Allergy band missing; noticed at drug round",Band applied,No harm,No harm,Male,10/10/1966,,Staff nurse`,
		`W10244,Incident,07/08/2025,13:00,07/08/2025,RRK,Elderly Care,Ragged row,with an unquoted comma,Obs done,Low harm,,Male,01/01/1941,,Staff nurse`,
		`W10245,Near miss,08/08/2025,23:59,09/08/2025,RRK,Maternity,"Wrong baby’s name on a cot card; corrected",Card replaced,No harm,,Not known,,,Midwife`,
	}, "\r\n")+"\r\n")
	dropFile(t, dir, "datix-listing-2.csv", second)
	for _, id := range []string{"W10240", "W10241", "W10245"} {
		h.waitState(id, "delivered")
	}
	for id, want := range map[string]string{
		"W10242": `file datix-listing-2.csv line 4: patients[0].physical_harm: must be one of none, low, moderate, severe, fatal, or a word of the source's that sources.datix.code_maps["patients.physical_harm"] maps to one`,
		"W10243": `file datix-listing-2.csv line 5: event_type: must be incident, risk, outcome or good_care, or a word of the source's that sources.datix.code_maps["event_type"] maps to one`,
		"W10244": "file datix-listing-2.csv line 6: has 16 fields, the header has 15",
	} {
		if got := h.waitState(id, "quarantined"); got != want {
			t.Errorf("%s: quarantined with %q, want %q", id, got, want)
		}
	}

	// The fix: the two words mapped, psgw restarted with them, the two incidents replayed.
	maps := h.Cfg.Sources["datix"].CodeMaps
	maps["patients.physical_harm"]["*"]["No harm – impact prevented"] = "none"
	maps["event_type"]["*"]["Prevented incident"] = "incident"
	h.Restart()
	for _, id := range []string{"W10242", "W10243"} {
		req, _ := http.NewRequest(http.MethodPost, h.Base+"/api/v1/incidents/datix/"+id+"/replay", nil)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", "pull") // access control is off: any value (docs/api.md)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("replay %s: %d", id, resp.StatusCode)
		}
	}
	for _, id := range []string{"W10242", "W10243"} {
		h.waitState(id, "delivered")
	}
	if st, _, _ := h.recordOf("W10244"); st != "quarantined" {
		t.Errorf("the ragged row: %s after the replays, want still quarantined (only a corrected export fixes it)", st)
	}
	if failed, _ := os.ReadDir(filepath.Join(dir, "failed")); len(failed) > 0 {
		t.Errorf("files in failed/: %d", len(failed))
	}
}
