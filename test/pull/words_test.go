package pull

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/sqlpoll"
	"github.com/psgw/psgw/test/pgtest"
)

// TestOneCodeMapServesEveryAdapter: a source's code maps translate its own words for the
// event type, harm and sex ("Near miss", "No harm", "Male") for every adapter that brings its
// incidents: the HTTP push API (202, not 400), the CSV drop folder and the SQL poller. One
// map, three routes, every incident delivered.
func TestOneCodeMapServesEveryAdapter(t *testing.T) {
	pg := pgtest.Start(t)
	db := pg.DB()
	pg.Exec(db, `CREATE TABLE incidents (ref text PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
		kind text NOT NULL, harm text NOT NULL, sex text NOT NULL, narrative text NOT NULL)`)
	dir := t.TempDir()
	words := map[string]map[string]map[string]string{
		"event_type":             {"*": {"Near miss": "incident"}},
		"patients.physical_harm": {"*": {"No harm": "none", "Low harm": "low"}},
		"patients.sex":           {"*": {"Male": "male", "Female": "female"}},
	}
	h := newHarness(t, func(c *config.Config) {
		csvConfig(dir)(c)
		c.Sources["datix"] = config.SourceConfig{CSVColumns: datixColumns, CodeMaps: words}
		q := c.Adapters[sqlpoll.Section].(*sqlpoll.Config)
		q.DSN, q.Source = pg.DSN(), "datix"
		// The poller reads the export's column names, so the source's csv_columns serve it too.
		q.Query = `SELECT ref AS "Ref", 1 AS "Version", kind AS "Type", '2025-03-14' AS "Incident date",
			narrative AS "Description", 'Obs taken' AS "Action taken", '9434765919' AS "NHS number", '1975-03-01' AS "DOB",
			sex AS "Sex", harm AS "Harm", 'none' AS "Psychological harm", 'RRK' AS "Site", 'Nurse or midwife' AS "Reporter role",
			'RRK' AS "Reporting org", updated_at
			FROM incidents WHERE $1::timestamptz IS NULL OR (updated_at, ref) > ($1, $2) ORDER BY updated_at, ref LIMIT $3`
		q.CursorColumns = []string{"updated_at", "Ref"}
		q.PollInterval = 20 * time.Millisecond
	})

	body, _ := json.Marshal(map[string]any{
		"source": "datix", "local_id": "DX-0101", "revision": 1, "event_type": "Near miss", "occurred_at": "2025-03-14",
		"description": desc("DX-0101", 1, "pushed with the source's words"),
		"patients":    []map[string]any{{"sex": "Male", "physical_harm": "No harm"}},
		"location":    map[string]any{"organisation": "RRK"}, "reporter": map[string]any{"role": "Nurse or midwife", "organisation": "RRK"},
	})
	resp, err := http.Post(h.Base+"/api/v1/incidents", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST with the source's words: %d, want 202", resp.StatusCode)
	}
	row := strings.Replace(strings.Replace(strings.Replace(datixRow("DX-0102", 1, desc("DX-0102", 1, "exported with the source's words"), "Obs taken"),
		`"incident"`, `"Near miss"`, 1), `"female"`, `"Female"`, 1), `"low"`, `"Low harm"`, 1)
	dropFile(t, dir, "words.csv", []byte(datixHeader+"\r\n"+row+"\r\n"))
	pg.Exec(db, `INSERT INTO incidents (ref, kind, harm, sex, narrative) VALUES ('DX-0103', 'Near miss', 'No harm', 'Female', $1)`,
		desc("DX-0103", 1, "polled with the source's words"))
	h.waitDelivered(map[string]int{"DX-0101": 1, "DX-0102": 1, "DX-0103": 1})
	if n := len(h.accepted()); n != 3 {
		t.Errorf("%d writes at the national service, want 3", n)
	}
}
