package pull

import (
	"fmt"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/sqlpoll"
	"github.com/psgw/psgw/test/pgtest"
)

// TestPostgresRevisions polls a real PostgreSQL table while rows are inserted (ten sharing one
// timestamp, read in pages of three), updated and updated again, with the database restarted
// and the gateway restarted in between. Each update is made only after the previous revision
// was delivered, so the poller sees every revision: the national service must get exactly
// revisions 1..n of each incident, in order, each once, created once. (A revision overwritten
// in a current-state table before any poll read it cannot be seen by any poller; waiting
// rules that out, so a missing revision here is a lost one.)
func TestPostgresRevisions(t *testing.T) {
	pg := pgtest.Start(t)
	db := pg.DB()
	pg.Exec(db, `CREATE TABLE incidents (
		ref text PRIMARY KEY, version int NOT NULL DEFAULT 1, updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
		happened date NOT NULL DEFAULT '2025-03-14', narrative text NOT NULL, action_taken text NOT NULL DEFAULT 'Obs taken')`)
	// A trigger, as a real incident system's audit columns do: every update is a new version.
	pg.Exec(db, `CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN NEW.version := OLD.version + 1; NEW.updated_at := clock_timestamp(); RETURN NEW; END $$`)
	pg.Exec(db, `CREATE TRIGGER bump BEFORE UPDATE ON incidents FOR EACH ROW EXECUTE FUNCTION bump()`)

	h := newHarness(t, func(c *config.Config) {
		q := c.Adapters[sqlpoll.Section].(*sqlpoll.Config)
		q.DSN = pg.DSN()
		// Result columns are named like incident fields, so this source needs no csv_columns
		// (the harness's "datix" source maps a CSV export's headers).
		c.Sources["datix"] = config.SourceConfig{}
		q.Source = "datix"
		q.Query = `SELECT ref AS local_id, version AS revision, updated_at, 'incident' AS event_type,
			happened AS occurred_at, narrative AS description, action_taken AS immediate_actions,
			'female' AS "patient.sex", 'low' AS "patient.physical_harm", 'none' AS "patient.psychological_harm",
			'RRK' AS "location.organisation", 'Nurse or midwife' AS "reporter.role", 'RRK' AS "reporter.organisation"
			FROM incidents WHERE $1::timestamptz IS NULL OR (updated_at, ref) > ($1, $2)
			ORDER BY updated_at, ref LIMIT $3`
		q.BatchSize = 3
		q.PollInterval = 20 * time.Millisecond
		q.QueryTimeout = 5 * time.Second
	})
	revs := map[string]int{}
	update := func(refs ...string) {
		for _, ref := range refs {
			revs[ref]++
			pg.Exec(db, `UPDATE incidents SET narrative = $2 WHERE ref = $1`, ref, desc(ref, revs[ref], "reviewed again"))
		}
	}

	// Ten rows in one transaction: one updated_at, cut by pages of three.
	tx := "BEGIN;"
	for i := 1; i <= 10; i++ {
		ref := fmt.Sprintf("DX-%04d", i)
		revs[ref] = 1
		tx += fmt.Sprintf(`INSERT INTO incidents (ref, updated_at, narrative) VALUES ('%s', now(), '%s');`, ref, desc(ref, 1, "fall on ward 9"))
	}
	pg.Exec(db, tx+"COMMIT;")
	h.waitDelivered(revs)

	// Every update below waits for the revision before it to be delivered first.
	update("DX-0001", "DX-0002", "DX-0005", "DX-0010")
	h.waitDelivered(revs)

	pg.Restart() // the poller's connection is cut; the runner reports it and retries
	update("DX-0001", "DX-0005")
	h.waitDelivered(revs)

	h.Restart() // the cursor comes back from JetStream KV
	update("DX-0001", "DX-0003")
	h.waitDelivered(revs)
	pg.Restart()
	update("DX-0001")
	h.waitDelivered(revs)

	// Per incident, the national service got exactly revisions 1..n, in order, each once: the
	// first a create, the rest amendments.
	seen := map[string][]int{}
	methods := map[string][]string{}
	for _, w := range h.accepted() {
		seen[w.LocalRef] = append(seen[w.LocalRef], w.Revision)
		methods[w.LocalRef] = append(methods[w.LocalRef], w.Method)
	}
	if len(seen) != len(revs) {
		t.Errorf("incidents written: got %d, want %d", len(seen), len(revs))
	}
	for ref, n := range revs {
		want := make([]int, n)
		wantMethods := make([]string, n)
		for i := range want {
			want[i], wantMethods[i] = i+1, "PUT"
		}
		wantMethods[0] = "POST"
		if got := seen[ref]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: revisions written %v, want exactly %v", ref, got, want)
		}
		if got := methods[ref]; fmt.Sprint(got) != fmt.Sprint(wantMethods) {
			t.Errorf("%s: writes %v, want %v (created once, then amended)", ref, got, wantMethods)
		}
	}
}
