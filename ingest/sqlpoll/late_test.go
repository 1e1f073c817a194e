package sqlpoll_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/ingest/sqlpoll"
	"github.com/psgw/psgw/test/pgtest"
	"github.com/psgw/psgw/test/wait"
)

// clock is the adapter's clock: the real time plus whatever the test moved it on by, so that
// a transaction can stay open "ten minutes" without the test waiting ten minutes.
type clock struct{ ahead atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.ahead.Load())) }
func (c *clock) advance(d time.Duration) { c.ahead.Add(int64(d)) }

// latePoller runs an adapter with the test's clock and a metrics registry.
type latePoller struct {
	*poller
	reg   *prometheus.Registry
	clock *clock
	a     *sqlpoll.Adapter
}

func startLatePoller(t *testing.T, cfg sqlpoll.Config) *latePoller {
	t.Helper()
	lp := &latePoller{reg: prometheus.NewRegistry(), clock: &clock{}}
	store, state := adaptertest.NewStore(), adaptertest.NewState()
	lp.a = sqlpoll.New(cfg, ingest.Deps{Name: "sqlpoll", Publisher: store, State: state, Logger: zerolog.Nop(),
		Now: lp.clock.now, Metrics: lp.reg})
	ctx, cancel := context.WithCancel(context.Background())
	lp.poller = &poller{store: store, state: state, cancel: cancel, done: make(chan error, 1)}
	go func() { lp.done <- lp.a.Run(ctx) }()
	t.Cleanup(func() { lp.stop() })
	return lp
}

// found is psgw_sqlpoll_rows_found_late_total for one pass.
func (lp *latePoller) found(by string) float64 {
	mfs, _ := lp.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "psgw_sqlpoll_rows_found_late_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "found_by" && l.GetValue() == by {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// waitLocal waits until a record of each local id is stored, and returns every record.
func waitLocal(t *testing.T, store *adaptertest.Store, timeout time.Duration, ids ...string) []ingest.Record {
	t.Helper()
	wait.For(t, timeout, fmt.Sprintf("rows %v stored", ids), func() (bool, string) {
		have := map[string]bool{}
		for _, r := range store.Records() {
			have[r.LocalID] = true
		}
		var missing []string
		for _, id := range ids {
			if !have[id] {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0, fmt.Sprintf("never stored: %v", missing)
	})
	return store.Records()
}

// onceEach checks that every record was stored once and each local id has want records.
func onceEach(t *testing.T, recs []ingest.Record, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	ids := map[string]bool{}
	for _, r := range recs {
		if ids[r.ID] {
			t.Errorf("record %s stored twice", r.ID)
		}
		ids[r.ID] = true
		got[r.LocalID]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records per incident: got %v, want %v", got, want)
	}
}

const lateTable = `CREATE TABLE %s (id bigserial PRIMARY KEY, ref text NOT NULL UNIQUE, revision int NOT NULL DEFAULT 1,
	updated_at timestamptz NOT NULL DEFAULT now(), kind text NOT NULL DEFAULT 'incident',
	occurred text NOT NULL DEFAULT '2025-03-14', narrative text NOT NULL)`

func lateQueries(table string) map[string]struct {
	query  string
	cursor []string
} {
	cols := `ref AS local_id, revision, id, updated_at, kind AS event_type, occurred::date AS occurred_at, narrative AS description FROM ` + table
	return map[string]struct {
		query  string
		cursor []string
	}{
		"id cursor": {`SELECT ` + cols + ` WHERE $1::bigint IS NULL OR id > $1 ORDER BY id LIMIT $2`, []string{"id"}},
		"timestamp cursor": {`SELECT ` + cols + ` WHERE $1::timestamptz IS NULL OR (updated_at, id) > ($1, $2)
			ORDER BY updated_at, id LIMIT $3`, []string{"updated_at", "id"}},
	}
}

// TestLateCommitsAreNotSkipped reproduces issue 17's first defect: session A inserts (taking
// the smaller id and the earlier now()) and stays open, session B inserts and commits, psgw
// reads B and moves its cursor past A's position, then A commits. With an id cursor and with
// an updated_at cursor, A's row must still be stored, once, and counted as found late; so must
// a revision committed late. A transaction open ten minutes (by the adapter's clock) is found
// by the re-read window; one open longer than the window, by reconciliation.
func TestLateCommitsAreNotSkipped(t *testing.T) {
	pg := pgtest.Start(t)
	db := pg.DB()
	n := 0
	for name := range lateQueries("") {
		for _, open := range []time.Duration{0, 10 * time.Minute, 40 * time.Minute} {
			t.Run(fmt.Sprintf("%s open %s", name, open), func(t *testing.T) {
				n++
				table := fmt.Sprintf("late_%d", n)
				pg.Exec(db, fmt.Sprintf(lateTable, table))
				q := lateQueries(table)[name]
				lp := startLatePoller(t, sqlpoll.Config{DSN: pg.DSN(), Source: "datix", Query: q.query, CursorColumns: q.cursor,
					PollInterval: 5 * time.Millisecond, RereadWindow: 15 * time.Minute, RereadInterval: 20 * time.Millisecond, ReconcileInterval: time.Hour})
				ctx := context.Background()
				a, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer a.Rollback()
				if _, err := a.Exec(`INSERT INTO ` + table + ` (ref, narrative) VALUES ('DX-A', 'Fall in bay 2')`); err != nil {
					t.Fatal(err)
				}
				pg.Exec(db, `INSERT INTO `+table+` (ref, narrative) VALUES ('DX-B', 'Slip in corridor')`)
				waitLocal(t, lp.store, 20*time.Second, "DX-B")
				// While A stays open, the clock moves on and other rows come and are stored.
				for i := range int(open / time.Minute) {
					lp.clock.advance(time.Minute)
					ref := fmt.Sprintf("DX-C%d", i)
					pg.Exec(db, `INSERT INTO `+table+` (ref, narrative) VALUES ($1, 'Fall')`, ref)
					waitLocal(t, lp.store, 20*time.Second, ref)
				}
				if err := a.Commit(); err != nil {
					t.Fatal(err)
				}
				if open > 15*time.Minute {
					// Past the window only reconciliation finds it: bring it due.
					lp.clock.advance(time.Hour)
				}
				recs := waitLocal(t, lp.store, 20*time.Second, "DX-A")
				want := map[string]int{"DX-A": 1, "DX-B": 1}
				for i := range int(open / time.Minute) {
					want[fmt.Sprintf("DX-C%d", i)] = 1
				}
				onceEach(t, recs, want)
				reread, reconcile := lp.found(sqlpoll.FoundByReread), lp.found(sqlpoll.FoundByReconcile)
				if reread+reconcile != 1 {
					t.Errorf("psgw_sqlpoll_rows_found_late_total: reread %v, reconcile %v; want 1 in all", reread, reconcile)
				}
				if n, at := lp.a.FoundLate(); n != 1 || at.IsZero() {
					t.Errorf("FoundLate (the adapter's status): %d at %v, want 1 with its time", n, at)
				}
				// An id cursor open past the window is found only by reconciliation. (The
				// timestamp cursor's window also reaches back by the rows' own times, which the
				// database's clock, not the adapter's, wrote: seconds apart here.)
				if name == "id cursor" && open > 15*time.Minute && reconcile != 1 {
					t.Errorf("found by reconciliation: got %v, want 1", reconcile)
				}
			})
		}
	}
	t.Run("amendment committed late", func(t *testing.T) {
		table := "late_amend"
		pg.Exec(db, fmt.Sprintf(lateTable, table))
		q := lateQueries(table)["timestamp cursor"]
		lp := startLatePoller(t, sqlpoll.Config{DSN: pg.DSN(), Source: "datix", Query: q.query, CursorColumns: q.cursor,
			PollInterval: 5 * time.Millisecond, RereadWindow: 15 * time.Minute, RereadInterval: 20 * time.Millisecond})
		pg.Exec(db, `INSERT INTO `+table+` (ref, narrative) VALUES ('DX-A', 'No harm')`)
		waitLocal(t, lp.store, 20*time.Second, "DX-A")
		a, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer a.Rollback()
		if _, err := a.Exec(`UPDATE ` + table + ` SET revision = 2, narrative = 'Severe harm', updated_at = now() WHERE ref = 'DX-A'`); err != nil {
			t.Fatal(err)
		}
		pg.Exec(db, `INSERT INTO `+table+` (ref, narrative) VALUES ('DX-B', 'Slip')`)
		waitLocal(t, lp.store, 20*time.Second, "DX-B")
		if err := a.Commit(); err != nil {
			t.Fatal(err)
		}
		wait.For(t, 20*time.Second, "revision 2 of DX-A, committed late, stored", func() (bool, string) {
			revs := map[int]bool{}
			for _, r := range lp.store.Records() {
				if r.LocalID == "DX-A" {
					revs[r.Revision] = true
				}
			}
			return revs[2], fmt.Sprintf("revisions stored: %v", revs)
		})
		onceEach(t, lp.store.Records(), map[string]int{"DX-A": 2, "DX-B": 1})
	})
}

// TestLongTransaction is the ten-minute case on the wall clock, not the adapter's: run with
// PSGW_LONG_TESTS=1 (it takes ten minutes).
func TestLongTransaction(t *testing.T) {
	if testing.Short() || !strings.Contains(" 1 true yes ", " "+strings.ToLower(envLong())+" ") {
		t.Skip("set PSGW_LONG_TESTS=1 to hold a transaction open for ten real minutes")
	}
	pg := pgtest.Start(t)
	db := pg.DB()
	pg.Exec(db, fmt.Sprintf(lateTable, "long_tx"))
	q := lateQueries("long_tx")["timestamp cursor"]
	lp := startLatePoller(t, sqlpoll.Config{DSN: pg.DSN(), Source: "datix", Query: q.query, CursorColumns: q.cursor,
		PollInterval: time.Second, RereadWindow: 15 * time.Minute, ReconcileInterval: time.Hour})
	a, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Rollback()
	if _, err := a.Exec(`INSERT INTO long_tx (ref, narrative) VALUES ('DX-A', 'Fall')`); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(10 * time.Minute)
	i := 0
	for time.Now().Before(end) {
		ref := fmt.Sprintf("DX-C%d", i)
		pg.Exec(db, `INSERT INTO long_tx (ref, narrative) VALUES ($1, 'Fall')`, ref)
		waitLocal(t, lp.store, time.Minute, ref)
		i++
		time.Sleep(20 * time.Second) // pacing: a row every 20 s while A stays open, not a wait for a condition
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	recs := waitLocal(t, lp.store, 3*time.Minute, "DX-A")
	want := map[string]int{"DX-A": 1}
	for j := range i {
		want[fmt.Sprintf("DX-C%d", j)] = 1
	}
	onceEach(t, recs, want)
	t.Logf("a transaction open %s: its row stored once after commit; %d rows committed meanwhile, each once", 10*time.Minute, i)
}

func envLong() string { return os.Getenv("PSGW_LONG_TESTS") }
