package pull

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/sqlpoll"
	"github.com/psgw/psgw/test/pgtest"
)

// TestEditedBackIsDelivered reproduces issue 17's third defect: an incident without a
// revision edited from A to B and back to A, within the duplicate window, was dropped as a
// duplicate of the first A, so the national record kept B. Over the SQL poller and over HTTP
// push, the national service must end with A: created once, amended twice. Sending the
// latest content again is still a duplicate that makes no national write.
func TestEditedBackIsDelivered(t *testing.T) {
	pg := pgtest.Start(t)
	db := pg.DB()
	pg.Exec(db, `CREATE TABLE incidents (ref text PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT clock_timestamp(), narrative text NOT NULL)`)
	h := newHarness(t, func(c *config.Config) {
		c.Sources["datix"] = config.SourceConfig{}
		q := c.Adapters[sqlpoll.Section].(*sqlpoll.Config)
		q.DSN, q.Source = pg.DSN(), "datix"
		q.Query = `SELECT ref AS local_id, updated_at, 'incident' AS event_type, '2025-03-14' AS occurred_at,
			narrative AS description, 'Obs taken' AS immediate_actions, 'RRK' AS "location.organisation",
			'Nurse or midwife' AS "reporter.role", 'RRK' AS "reporter.organisation"
			FROM incidents WHERE $1::timestamptz IS NULL OR (updated_at, ref) > ($1, $2) ORDER BY updated_at, ref LIMIT $3`
		q.CursorColumns = []string{"updated_at", "local_id"}
		q.PollInterval = 20 * time.Millisecond
	})
	// The description says which content it is: "revision 1" is A, "revision 2" is B.
	a, b := "fall on ward 9", "fall on ward 9, reviewed"
	pg.Exec(db, `INSERT INTO incidents (ref, narrative) VALUES ('DX-0001', $1)`, desc("DX-0001", 1, a))
	h.post(t, "DX-0002", desc("DX-0002", 1, a), false)
	h.waitDelivered(map[string]int{"DX-0001": 1, "DX-0002": 1})
	pg.Exec(db, `UPDATE incidents SET narrative = $1, updated_at = clock_timestamp() WHERE ref = 'DX-0001'`, desc("DX-0001", 2, b))
	h.post(t, "DX-0002", desc("DX-0002", 2, b), false)
	h.waitDelivered(map[string]int{"DX-0001": 2, "DX-0002": 2})
	pg.Exec(db, `UPDATE incidents SET narrative = $1, updated_at = clock_timestamp() WHERE ref = 'DX-0001'`, desc("DX-0001", 1, a))
	h.post(t, "DX-0002", desc("DX-0002", 1, a), false)
	h.waitDelivered(map[string]int{"DX-0001": 3, "DX-0002": 3})
	// A again, now the latest content: a duplicate.
	h.post(t, "DX-0002", desc("DX-0002", 1, a), true)

	writes := map[string][]string{}
	for _, w := range h.accepted() {
		writes[w.LocalRef] = append(writes[w.LocalRef], fmt.Sprintf("%s %d", w.Method, w.Revision))
	}
	for _, ref := range []string{"DX-0001", "DX-0002"} {
		if got, want := fmt.Sprint(writes[ref]), "[POST 1 PUT 2 PUT 1]"; got != want {
			t.Errorf("%s: national writes %s, want %s (A, B, then A again: the national record ends with A)", ref, got, want)
		}
	}
}

// post pushes an incident without a revision and checks the 202's duplicate flag.
func (h *harness) post(t *testing.T, ref, description string, wantDuplicate bool) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"source": "datix", "local_id": ref, "event_type": "incident", "occurred_at": "2025-03-14",
		"description": description, "immediate_actions": "Obs taken",
		"location": map[string]any{"organisation": "RRK"}, "reporter": map[string]any{"role": "Nurse or midwife", "organisation": "RRK"},
	})
	resp, err := http.Post(h.Base+"/api/v1/incidents", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Duplicate bool `json:"duplicate"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&res)
	if resp.StatusCode != http.StatusAccepted || res.Duplicate != wantDuplicate {
		t.Fatalf("POST %s: %d duplicate %v, want 202 duplicate %v", ref, resp.StatusCode, res.Duplicate, wantDuplicate)
	}
}
