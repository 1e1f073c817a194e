package pull

import (
	"strings"
	"testing"
)

// TestCSVRowWarningsReachTheRecord: the pull adapters' records are mapped as pushed ones are,
// so what a CSV row's mapping fell back on or left out is in the incident's record: here a
// reporter role with no LFPSE code (sent as "Other", a fallback) and an ODS code missing from
// LFPSE's list (issue 14: "the same warnings come from the pull adapters").
func TestCSVRowWarningsReachTheRecord(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, csvConfig(dir))
	row := datixRow("DX-0101", 1, desc("DX-0101", 1, "Trolley left in the corridor."), "Moved")
	row = strings.Replace(row, `"Nurse or midwife"`, `"Porter"`, 1)
	row = strings.Replace(row, `"RRK","Porter","RRK"`, `"RRK","Porter","ZZZ99"`, 1)
	dropFile(t, dir, "export.csv", []byte(datixHeader+"\r\n"+row+"\r\n"))
	h.waitDelivered(map[string]int{"DX-0101": 1})
	r, _ := h.record("DX-0101")
	var got []string
	fallbacks := 0
	for _, w := range r.Warnings {
		got = append(got, w.Field+": "+w.Message)
		if w.Fallback {
			fallbacks++
		}
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{`reporter.role: value "Porter" has no LFPSE code`, `reporter.organisation: "ZZZ99" is not in the taxonomy's list`} {
		if !strings.Contains(all, want) {
			t.Errorf("record warnings:\n%s\nwant %q among them", all, want)
		}
	}
	if fallbacks != 2 {
		t.Errorf("got %d fallbacks, want 2", fallbacks)
	}
}
