package pull

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/sqlpoll"
	"github.com/psgw/psgw/test/pgtest"
	"github.com/psgw/psgw/test/wait"
)

// TestUnreadableRows: issue 17's fourth defect through the whole gateway. A cast failing on
// one row mid-table (2025-02-30 as a date, SQLSTATE 22008) no longer stops the feed: the rows
// before and after it are delivered and the bad one is quarantined under its own id, visible
// in the API with a reason naming its cursor. A row whose cursor itself cannot be computed
// stops the feed with an error naming the cursor position, on the adapter's status; the
// operator steps past it (POST /api/v1/adapters/sqlpoll/skip, which psgw sqlpoll skip calls)
// and the rows after it are delivered.
func TestUnreadableRows(t *testing.T) {
	pg := pgtest.Start(t)
	db := pg.DB()
	pg.Exec(db, `CREATE TABLE incidents (id bigint PRIMARY KEY, ref text NOT NULL, occurred text NOT NULL, narrative text NOT NULL)`)
	pg.Exec(db, `INSERT INTO incidents SELECT g, 'DX-' || lpad(g::text, 4, '0'), CASE WHEN g = 6 THEN '2025-02-30' ELSE '2025-02-14' END,
		'DX-' || lpad(g::text, 4, '0') || ' revision 1 fall' FROM generate_series(1, 12) g`)
	h := newHarness(t, func(c *config.Config) {
		c.Sources["datix"] = config.SourceConfig{}
		q := c.Adapters[sqlpoll.Section].(*sqlpoll.Config)
		q.DSN, q.Source = pg.DSN(), "datix"
		// The id is divided by zero on row 20 only: its cursor cannot be computed.
		q.Query = `SELECT ref AS local_id, id / (CASE WHEN id = 20 THEN 0 ELSE 1 END) AS id, 'incident' AS event_type,
			occurred::date AS occurred_at, narrative AS description, 'Obs taken' AS immediate_actions,
			'RRK' AS "location.organisation", 'Nurse or midwife' AS "reporter.role", 'RRK' AS "reporter.organisation"
			FROM incidents WHERE $1::bigint IS NULL OR incidents.id > $1 ORDER BY incidents.id LIMIT $2`
		q.CursorColumns = []string{"id"}
		q.BatchSize = 5
		q.PollInterval = 20 * time.Millisecond
	})
	want := map[string]int{}
	for i := 1; i <= 12; i++ {
		if i != 6 {
			want[fmt.Sprintf("DX-%04d", i)] = 1
		}
	}
	h.waitDelivered(want)
	state := h.waitState("DX-0006", "quarantined")
	r, _ := h.record("DX-0006")
	if !strings.HasPrefix(r.LastError, "row at cursor 6: the query fails on this row") || !strings.Contains(r.LastError, "SQLSTATE 22008") ||
		strings.Contains(r.LastError, "2025-02-30") {
		t.Errorf("DX-0006 is %s with %q; want the cursor, the SQLSTATE, and not the value", state, r.LastError)
	}

	pg.Exec(db, `INSERT INTO incidents SELECT g, 'DX-' || lpad(g::text, 4, '0'), '2025-02-14', 'DX-' || lpad(g::text, 4, '0') || ' revision 1 fall'
		FROM generate_series(19, 22) g`)
	h.waitDelivered(map[string]int{"DX-0019": 1})
	wait.For(t, 30*time.Second, "the adapter's error naming the cursor", func() (bool, string) {
		st := h.adapterStatus("sqlpoll")
		return strings.Contains(st.LastError, "the row after cursor 19 cannot be read") && strings.Contains(st.LastError, "psgw sqlpoll skip"), st.LastError
	})
	req, _ := http.NewRequest(http.MethodPost, h.Base+"/api/v1/adapters/sqlpoll/skip", bytes.NewReader([]byte(`{"past": ["20"]}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", "pull") // access control is off: any value (docs/api.md)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"previous":"19"`) {
		t.Fatalf("skip: %d %s, want 200 naming the previous cursor 19", resp.StatusCode, body)
	}
	h.waitDelivered(map[string]int{"DX-0021": 1, "DX-0022": 1})
	if _, code := h.record("DX-0020"); code != http.StatusNotFound {
		t.Errorf("DX-0020, stepped past: %d, want 404", code)
	}
}

type adapterStatus struct {
	Name      string `json:"name"`
	LastError string `json:"last_error"`
}

func (h *harness) adapterStatus(name string) adapterStatus {
	resp, err := http.Get(h.Base + "/api/v1/status")
	if err != nil {
		return adapterStatus{}
	}
	defer resp.Body.Close()
	var st struct {
		Adapters []adapterStatus `json:"adapters"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&st)
	for _, a := range st.Adapters {
		if a.Name == name {
			return a
		}
	}
	return adapterStatus{}
}
