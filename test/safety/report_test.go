package safety

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestSafetyCaseReportSummary keeps the figures of docs/safety/safety-case-report.md (its
// summary's count of open hazards and its table of initial and residual risks) equal to the
// hazard log's, so that the report cannot go on describing an older log.
func TestSafetyCaseReportSummary(t *testing.T) {
	l := mustLoad(t, logPath)
	b, err := os.ReadFile(filepath.Join(root, "docs", "safety", "safety-case-report.md"))
	if err != nil {
		t.Fatal(err)
	}
	report := string(b)
	var initial, residual [6]int
	open := 0
	for _, h := range l.Hazards {
		initial[h.Initial.Risk]++
		residual[h.Residual.Risk]++
		if h.Status == "open" {
			open++
		}
	}
	if m := regexp.MustCompile(`\*\*(\d+) of the (\d+) hazards are open\*\*`).FindStringSubmatch(report); m == nil {
		t.Error(`the report's summary no longer says "**N of the M hazards are open**"`)
	} else if m[1] != strconv.Itoa(open) || m[2] != strconv.Itoa(len(l.Hazards)) {
		t.Errorf("the report says %s of %s hazards are open; the log has %d of %d", m[1], m[2], open, len(l.Hazards))
	}
	for _, row := range []struct {
		name   string
		counts [6]int
	}{{"initial", initial}, {"residual", residual}} {
		m := regexp.MustCompile(`(?m)^\| ` + row.name + ` \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$`).FindStringSubmatch(report)
		if m == nil {
			t.Errorf("the report has no %s row in its table of risks", row.name)
			continue
		}
		for r := 1; r <= 5; r++ {
			if m[r] != strconv.Itoa(row.counts[r]) {
				t.Errorf("%s risk %d: the report says %s hazards, the log has %d", row.name, r, m[r], row.counts[r])
			}
		}
	}
}
