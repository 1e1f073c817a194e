package sqlpoll_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/psgw/psgw/ingest/sqlpoll"
	"github.com/psgw/psgw/test/pgtest"
	"github.com/psgw/psgw/test/wait"
)

// docsExamples returns the sqlpoll section of docs/adapters.md: its SQL blocks and the
// sqlpoll settings of its YAML blocks, as written.
func docsExamples(t *testing.T) (sqls []string, cfgs []sqlpoll.Config) {
	t.Helper()
	b, err := os.ReadFile("../../docs/adapters.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "### `sqlpoll`")
	end := strings.Index(doc[start:], "\n## ")
	doc = doc[start : start+end]
	for _, m := range regexp.MustCompile("(?s)```(sql|yaml)\n(.*?)```").FindAllStringSubmatch(doc, -1) {
		if m[1] == "sql" {
			sqls = append(sqls, m[2])
			continue
		}
		var y struct {
			SQLPoll sqlpoll.Config `yaml:"sqlpoll"`
		}
		if err := yaml.Unmarshal([]byte(m[2]), &y); err != nil {
			t.Fatalf("docs/adapters.md: a yaml example does not parse: %v", err)
		}
		cfgs = append(cfgs, y.SQLPoll)
	}
	if len(sqls) != 1 || len(cfgs) != 2 {
		t.Fatalf("docs/adapters.md's sqlpoll section: got %d sql and %d yaml examples, want 1 and 2", len(sqls), len(cfgs))
	}
	return sqls, cfgs
}

// The table the docs' queries read: a Datix-like incidents table.
const docsTable = `CREATE TABLE incidents (ref text PRIMARY KEY, version int NOT NULL DEFAULT 1,
	updated_at timestamptz NOT NULL DEFAULT now(), incident_date date NOT NULL DEFAULT '2025-03-14',
	narrative text NOT NULL, action_taken text NOT NULL DEFAULT 'Obs taken', site_ods text NOT NULL DEFAULT 'RRK',
	reporter_role text NOT NULL DEFAULT 'Nurse or midwife')`

// TestDocsQueriesAsWritten runs each example query of docs/adapters.md as written, against
// the table shape it reads, through the out-of-order commit of issue 17: A inserts and stays
// open, B inserts and commits and is read, A commits. The transaction-id example (with the
// docs' own column, trigger and index) must store A with re-reading and reconciliation off:
// its cursor never passes a row. The updated_at example stores it by re-reading. Both also
// see an update.
func TestDocsQueriesAsWritten(t *testing.T) {
	sqls, cfgs := docsExamples(t)
	for i, cfg := range cfgs {
		name := []string{"transaction-id cursor", "updated_at cursor"}[i]
		t.Run(name, func(t *testing.T) {
			pg := pgtest.Start(t)
			db := pg.DB()
			pg.Exec(db, docsTable)
			if i == 0 {
				pg.Exec(db, sqls[0])
				cfg.RereadWindow, cfg.ReconcileInterval = 0, 0
			} else {
				cfg.RereadWindow, cfg.RereadInterval = 15*time.Minute, 20*time.Millisecond
			}
			cfg.DSN, cfg.PollInterval = pg.DSN(), 5*time.Millisecond
			lp := startLatePoller(t, cfg)
			a, err := db.BeginTx(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Rollback()
			if _, err := a.Exec(`INSERT INTO incidents (ref, narrative) VALUES ('DX-A', 'Fall in bay 2')`); err != nil {
				t.Fatal(err)
			}
			pg.Exec(db, `INSERT INTO incidents (ref, narrative) VALUES ('DX-B', 'Slip in corridor')`)
			if i == 0 {
				// B waits behind A, still open: the cursor is held at the oldest open
				// transaction. Nothing can be awaited here, so give the poller (every 5ms)
				// time for many polls, and check that B is not read past A.
				time.Sleep(300 * time.Millisecond)
				select {
				case err := <-lp.done:
					t.Fatalf("Run ended: %v", err)
				default:
				}
				if n := len(lp.store.Records()); n != 0 {
					t.Fatalf("%d rows stored while A, older, is open; want B held back", n)
				}
			} else {
				waitLocal(t, lp.store, 20*time.Second, "DX-B")
			}
			if err := a.Commit(); err != nil {
				t.Fatal(err)
			}
			waitLocal(t, lp.store, 20*time.Second, "DX-A", "DX-B")
			pg.Exec(db, `UPDATE incidents SET version = 2, narrative = 'Fall in bay 2, reviewed', updated_at = now() WHERE ref = 'DX-B'`)
			wait.Until(t, 20*time.Second, "the update stored", func() bool { return len(lp.store.Records()) >= 3 })
			onceEach(t, lp.store.Records(), map[string]int{"DX-A": 1, "DX-B": 2})
			late := lp.found(sqlpoll.FoundByReread) + lp.found(sqlpoll.FoundByReconcile)
			if want := float64(i); late != want {
				t.Errorf("rows found late: got %v, want %v", late, want)
			}
		})
	}
}
