package cluster

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/test/pgtest"
)

// sqlBatch is the replicas' sqlpoll.batch_size: small, so that the rows a killed holder had
// stored past its last saved cursor (at most a batch or two) are few beside the hundreds a
// poller starting over would read again.
const sqlBatch = 20

// sqlSource is an incident system's database that both replicas are configured to poll
// (sqlpoll); whichever holds the adapter.sqlpoll lease does. It is a PostgreSQL server on
// this machine (test/pgtest), not a container: no PostgreSQL image can be pulled here, and
// the host's server binaries are what the other SQL tests run. It listens on the test
// network's gateway address as well as loopback, so that the containers reach it.
type sqlSource struct {
	pg *pgtest.Server
	db *sql.DB
	// dsn is the connection string as the containers use it.
	dsn string
}

// startSQL starts PostgreSQL listening on the gateway address of the network nw as well as
// loopback, accepting the network's containers, and makes the incidents table.
func startSQL(t *testing.T, e *env) *sqlSource {
	t.Helper()
	pg := pgtest.Start(t)
	db := pg.DB()
	gw := e.docker("network", "inspect", "--format", "{{(index .IPAM.Config 0).Gateway}}", e.nw)
	subnet := e.docker("network", "inspect", "--format", "{{(index .IPAM.Config 0).Subnet}}", e.nw)
	var hba string
	if err := db.QueryRow("SHOW hba_file").Scan(&hba); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(hba, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "\nhost all all %s trust\n", subnet)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pg.Exec(db, fmt.Sprintf("ALTER SYSTEM SET listen_addresses = '127.0.0.1,%s'", gw))
	pg.Restart()
	u, err := url.Parse(pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	u.Host = gw + ":" + u.Port()
	pg.Exec(db, `CREATE TABLE incidents (
		local_id text PRIMARY KEY, revision int NOT NULL, updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
		description text NOT NULL)`)
	return &sqlSource{pg: pg, db: db, dsn: u.String()}
}

// config is the sqlpoll section the replicas run with: the rows' columns map through the
// source's csv_columns (deploy/cluster/psgw.yaml); re-reading and reconciliation are off, so
// that every duplicate the new holder counts after a takeover is a row read again from the
// saved cursor.
func (s *sqlSource) config() string {
	return fmt.Sprintf(`
sqlpoll:
  dsn: %q
  source: datix
  query: |
    SELECT local_id, revision, updated_at, 'incident' AS event_type,
           '2025-03-14T09:30:00Z' AS occurred_at, description, 'RRK' AS organisation,
           'none' AS physical_harm, 'none' AS psychological_harm
    FROM incidents
    WHERE $1::timestamptz IS NULL OR (updated_at, local_id) > ($1, $2)
    ORDER BY updated_at, local_id
    LIMIT $3
  cursor_columns: [updated_at, local_id]
  batch_size: %d
  poll_interval: 1s
  query_timeout: 10s
  reread_window: 0s
  reconcile_interval: 0s
`, s.dsn, sqlBatch)
}

// insertThroughout commits a row every 500 ms, and amends (revision 2) the row committed ten
// before every fifth, one transaction each, until ctx ends.
func (s *sqlSource) insertThroughout(ctx context.Context, t *testing.T) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		id := fmt.Sprintf("SQL-%05d", i)
		s.exec(ctx, t, `INSERT INTO incidents (local_id, revision, description) VALUES ($1, 1, $2)`,
			id, fmt.Sprintf("Incident %s revision 1: scheduled dose given late.", id))
		if i%5 == 0 && i > 10 {
			old := fmt.Sprintf("SQL-%05d", i-10)
			s.exec(ctx, t, `UPDATE incidents SET revision = 2, updated_at = clock_timestamp(), description = $2 WHERE local_id = $1`,
				old, fmt.Sprintf("Incident %s revision 2: scheduled dose given late, reviewed.", old))
		}
	}
}

// exec runs a statement. What it committed is read back from the table (snapshot), so a
// statement whose answer was lost (a timeout on a loaded machine) is only logged.
func (s *sqlSource) exec(ctx context.Context, t *testing.T, q string, args ...any) {
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := s.db.ExecContext(qctx, q, args...); err != nil && ctx.Err() == nil {
		t.Logf("the incident database: %v", err)
	}
}

// snapshot is every row committed so far at its newest revision, as the table holds it.
func (s *sqlSource) snapshot(t *testing.T) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, "SELECT local_id, revision FROM incidents")
	if err != nil {
		t.Fatalf("reading the incident database: %v", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var rev int
		if err := rows.Scan(&id, &rev); err != nil {
			t.Fatal(err)
		}
		out[id] = rev
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// amended counts the rows of a snapshot at revision 2.
func amended(rows map[string]int) int {
	n := 0
	for _, v := range rows {
		if v > 1 {
			n++
		}
	}
	return n
}

// sqlWithCluster appends the sqlpoll section to the replicas' shared configuration.
func sqlWithCluster(shared []byte, s *sqlSource) string {
	return strings.TrimRight(string(shared), "\n") + "\n" + s.config()
}
