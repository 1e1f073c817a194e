package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// sqlBackfill: a table of o.sqlRows incidents read by the SQL poller from the start, as a
// trust's first connection to its incident database would be; the rate is rows durably stored
// per second, from psgw's start to the adapter's records count reaching o.sqlRows, so it
// includes up to one poll interval (1 s here). It needs a PostgreSQL to write the table in
// (-pg-dsn). No national endpoint: the mapper maps and holds behind ingest.
func sqlBackfill(ctx context.Context, o options, work string) (result, error) {
	if o.pgDSN == "" {
		return result{}, errors.New("the sql scenario needs -pg-dsn: a PostgreSQL it may create a table in")
	}
	db, err := sql.Open("pgx", o.pgDSN)
	if err != nil {
		return result{}, err
	}
	defer db.Close()
	for _, q := range []string{
		`DROP TABLE IF EXISTS psgw_load_incidents`,
		`CREATE TABLE psgw_load_incidents (ref text PRIMARY KEY, updated_at timestamptz NOT NULL, narrative text NOT NULL)`,
		`INSERT INTO psgw_load_incidents SELECT 'SQL-' || g, timestamptz '2025-03-14 09:30:00Z' + g * interval '1 millisecond',
			'Scheduled IV antibiotic dose given about four hours late because the ward was short of staff and the dose was missed at the handover; the patient was monitored and came to no harm. SQL-' || g
			FROM generate_series(1, ` + fmt.Sprint(o.sqlRows) + `) g`,
		`CREATE INDEX ON psgw_load_incidents (updated_at, ref)`,
		`ANALYZE psgw_load_incidents`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return result{}, fmt.Errorf("preparing the table: %w", err)
		}
	}
	cfgFile := filepath.Join(work, "psgw.yaml")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return result{}, err
	}
	b, _ := json.Marshal(o.pgDSN)
	cfgYAML := "sources:\n  datix: {}\nsqlpoll:\n  dsn: " + string(b) + "\n  source: datix\n  poll_interval: 1s\n  batch_size: 500\n" +
		"  cursor_columns: [updated_at, local_id]\n  query: |\n" +
		"    SELECT ref AS local_id, updated_at, 'incident' AS event_type, '2025-03-14T09:30:00Z' AS occurred_at,\n" +
		"      narrative AS description, 'Dose given; prescriber informed; family told.' AS immediate_actions,\n" +
		"      '9434765919' AS \"patient.nhs_number\", '1975-03-01' AS \"patient.date_of_birth\", 'female' AS \"patient.sex\",\n" +
		"      'none' AS \"patient.physical_harm\", 'none' AS \"patient.psychological_harm\", 'RRK' AS \"location.organisation\",\n" +
		"      'Nurse or midwife' AS \"reporter.role\", 'RRK' AS \"reporter.organisation\"\n" +
		"    FROM psgw_load_incidents WHERE $1::timestamptz IS NULL OR (updated_at, ref) > ($1, $2)\n" +
		"    ORDER BY updated_at, ref LIMIT $3\n"
	if err := os.WriteFile(cfgFile, []byte(cfgYAML), 0o644); err != nil {
		return result{}, err
	}
	p, err := startPsgwArgs(o, filepath.Join(work, "data"), []string{"--config", cfgFile})
	if err != nil {
		return result{}, err
	}
	defer p.stop()
	start := time.Now()
	rss := sampleRSS(p.cmd.Process.Pid)
	stored, cut := 0, ""
	for stored < o.sqlRows {
		if time.Since(start) > o.timeout {
			// Reported as far as it got: a slow run is a figure too.
			cut = fmt.Sprintf("stopped at the %s timeout with %d of %d rows stored; ", o.timeout, stored, o.sqlRows)
			break
		}
		time.Sleep(200 * time.Millisecond)
		stored = adapterRecords(p, "sqlpoll")
	}
	elapsed := time.Since(start)
	peak := rss.stop()
	return result{name: fmt.Sprintf("sql backfill (%d rows)", o.sqlRows), count: stored, rate: float64(stored) / elapsed.Seconds(),
		note: fmt.Sprintf("%smax RSS %.0f MB, %.0f MB at the end; %s", cut, peak, rssMB(p.cmd.Process.Pid), p.cpuNote())}, nil
}

// adapterRecords is the records count of the named adapter in psgw's status (0 when it
// cannot be read).
func adapterRecords(p *proc, name string) int {
	resp, err := http.Get("http://" + p.httpAddr + "/api/v1/status")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var st struct {
		Adapters []struct {
			Name    string `json:"name"`
			Records int    `json:"records"`
		} `json:"adapters"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return 0
	}
	for _, a := range st.Adapters {
		if a.Name == name {
			return a.Records
		}
	}
	return 0
}
