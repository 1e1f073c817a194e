package sqlpoll_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/ingest/sqlpoll"
	"github.com/psgw/psgw/test/pgtest"
)

// zoneQuery is the docs' updated_at query as written ($1::timestamptz), over a table whose
// updated_at is the type given.
func zoneQuery(table string) string {
	return `SELECT ref AS local_id, updated_at, 'incident' AS event_type, '2025-03-14' AS occurred_at, narrative AS description
		FROM ` + table + ` WHERE $1::timestamptz IS NULL OR (updated_at, ref) > ($1, $2) ORDER BY updated_at, ref LIMIT $3`
}

// TestCursorKeepsTypeAndZone reproduces issue 17's second defect: with the documented
// $1::timestamptz cast and a session in Europe/London in summer, a row updated 30 minutes
// after the cursor was skipped, because a `timestamp` cursor went back as an instant in UTC,
// an hour off. Re-reading is off here: the cursor alone must be exact, for `timestamp` and
// `timestamptz` columns, in London and in UTC sessions.
func TestCursorKeepsTypeAndZone(t *testing.T) {
	pg := pgtest.Start(t)
	db := pg.DB()
	n := 0
	for _, typ := range []string{"timestamp", "timestamptz"} {
		for _, zone := range []string{"Europe/London", "UTC"} {
			t.Run(typ+" "+zone, func(t *testing.T) {
				n++
				table := fmt.Sprintf("zone_%d", n)
				pg.Exec(db, `CREATE TABLE `+table+` (ref text PRIMARY KEY, updated_at `+typ+` NOT NULL, narrative text NOT NULL)`)
				lp := startLatePoller(t, sqlpoll.Config{DSN: pg.DSN() + "&timezone=" + zone, Source: "datix", Query: zoneQuery(table),
					CursorColumns: []string{"updated_at", "local_id"}, PollInterval: 5 * time.Millisecond})
				pg.Exec(db, `INSERT INTO `+table+` VALUES ('DX-1', '2025-07-01 12:00:00.123456', 'Fall')`)
				waitLocal(t, lp.store, 20*time.Second, "DX-1")
				for i, at := range []string{"2025-07-01 12:00:00.123457", "2025-07-01 12:30:00", "2025-07-01 13:30:00"} {
					ref := fmt.Sprintf("DX-%d", i+2)
					pg.Exec(db, `INSERT INTO `+table+` VALUES ($1, $2, 'Fall')`, ref, at)
					waitLocal(t, lp.store, 20*time.Second, ref)
				}
				onceEach(t, lp.store.Records(), map[string]int{"DX-1": 1, "DX-2": 1, "DX-3": 1, "DX-4": 1})
			})
		}
	}
}

// TestClockChange: a `timestamp` (no zone) column written with the local wall clock in
// London, across the night the clocks go back (2025-10-26: 01:59 BST is followed by 01:00
// GMT). Rows written in the second 01:xx hour sort before the cursor, already at 01:55; none
// may be skipped. The adapter's clock moves on as the night's would, so the re-read window
// (15m by the adapter's clock) does not reach them by itself: the hour the window reaches
// further back for a zone-less timestamp does.
func TestClockChange(t *testing.T) {
	pg := pgtest.Start(t)
	db := pg.DB()
	pg.Exec(db, `CREATE TABLE clocks (ref text PRIMARY KEY, updated_at timestamp NOT NULL, narrative text NOT NULL)`)
	lp := startLatePoller(t, sqlpoll.Config{DSN: pg.DSN() + "&timezone=Europe/London", Source: "datix", Query: zoneQuery("clocks"),
		CursorColumns: []string{"updated_at", "local_id"}, PollInterval: 5 * time.Millisecond,
		RereadWindow: 15 * time.Minute, RereadInterval: 20 * time.Millisecond})
	// Written in this order, each 5 to 35 minutes after the one before by the real clock.
	steps := []struct {
		wall string
		gap  time.Duration // on the adapter's clock since the row before
	}{
		{"2025-10-26 00:20:00", 0}, {"2025-10-26 01:10:00", 50 * time.Minute}, {"2025-10-26 01:55:00", 45 * time.Minute},
		// The clocks go back: 01:59:59 BST is followed by 01:00:00 GMT.
		{"2025-10-26 01:05:00", 10 * time.Minute}, {"2025-10-26 01:40:00", 35 * time.Minute}, {"2025-10-26 01:58:00", 18 * time.Minute},
		{"2025-10-26 02:05:00", 7 * time.Minute}, {"2025-10-26 02:40:00", 35 * time.Minute},
	}
	want := map[string]int{}
	for i, s := range steps {
		lp.clock.advance(s.gap)
		ref := fmt.Sprintf("DX-%d", i+1)
		pg.Exec(db, `INSERT INTO clocks VALUES ($1, $2, 'Fall')`, ref, s.wall)
		waitLocal(t, lp.store, 20*time.Second, ref)
		want[ref] = 1
	}
	onceEach(t, lp.store.Records(), want)
	if got := lp.found(sqlpoll.FoundByReread); got != 2 {
		t.Errorf("rows found by re-reading: got %v, want 2 (the second 01:05 and 01:40; the second 01:58 is after the cursor)", got)
	}
}

// TestBadRowMidTable reproduces issue 17's fourth defect: a cast in the query failing on one
// row (a text column holding 2025-02-30, cast ::date: SQLSTATE 22008) failed the whole query,
// so nothing after it was ever read. Now the rows before and after it are stored and the bad
// one is quarantined under its own id, with a reason naming its cursor and the SQLSTATE and
// quoting nothing from the row. Batches of 7 over 40 rows put the bad row inside a batch.
func TestBadRowMidTable(t *testing.T) {
	pg := pgtest.Start(t)
	db := pg.DB()
	pg.Exec(db, `CREATE TABLE dates (id bigint PRIMARY KEY, ref text NOT NULL, occurred text NOT NULL, narrative text NOT NULL)`)
	pg.Exec(db, `INSERT INTO dates SELECT g, 'DX-' || g, CASE WHEN g = 23 THEN '2025-02-30' ELSE '2025-02-14' END, 'Fall'
		FROM generate_series(1, 40) g`)
	lp := startLatePoller(t, sqlpoll.Config{DSN: pg.DSN(), Source: "datix", BatchSize: 7, PollInterval: 5 * time.Millisecond,
		Query: `SELECT ref AS local_id, id, 'incident' AS event_type, occurred::date AS occurred_at, narrative AS description
			FROM dates WHERE $1::bigint IS NULL OR id > $1 ORDER BY id LIMIT $2`, CursorColumns: []string{"id"}})
	want := map[string]int{}
	ids := []string{}
	for i := 1; i <= 40; i++ {
		want[fmt.Sprintf("DX-%d", i)] = 1
		ids = append(ids, fmt.Sprintf("DX-%d", i))
	}
	recs := waitLocal(t, lp.store, 20*time.Second, ids...)
	onceEach(t, recs, want)
	for _, r := range recs {
		if (r.Reason != "") != (r.LocalID == "DX-23") {
			t.Errorf("%s: reason %q", r.LocalID, r.Reason)
		}
		if r.LocalID == "DX-23" {
			if want := "row at cursor 23: the query fails on this row: "; len(r.Reason) < len(want) || r.Reason[:len(want)] != want ||
				!strings.Contains(r.Reason, "SQLSTATE 22008") || strings.Contains(r.Reason, "2025-02-30") {
				t.Errorf("DX-23 reason %q: want it to start %q, name SQLSTATE 22008 and not quote the value", r.Reason, want)
			}
		}
	}
	pg.Exec(db, `INSERT INTO dates VALUES (41, 'DX-41', '2025-02-15', 'Slip')`)
	waitLocal(t, lp.store, 20*time.Second, "DX-41")
}
