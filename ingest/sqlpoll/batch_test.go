package sqlpoll

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/test/pgtest"
)

// TestBatchBoundedInBytes: issue 17's fifth defect held a whole batch of large rows in memory
// (300 rows of 1 MB took psgw from 114 MB to 1.17 GB). A batch now ends once its cells hold
// max_batch_bytes, whatever batch_size says, and the next batch goes on from its last row:
// 20 rows of 100 kB with a 250 kB bound come in batches of 3 rows, every row once.
func TestBatchBoundedInBytes(t *testing.T) {
	pg := pgtest.Start(t)
	db := pg.DB()
	pg.Exec(db, `CREATE TABLE big (id bigint PRIMARY KEY, narrative text NOT NULL)`)
	pg.Exec(db, `INSERT INTO big SELECT g, 'DX-' || g || ' ' || repeat('x', 100000) FROM generate_series(1, 20) g`)
	store := adaptertest.NewStore()
	a := New(Config{DSN: pg.DSN(), Source: "datix", BatchSize: 500, MaxBatchBytes: 250_000, CursorColumns: []string{"id"},
		Query: `SELECT 'DX-' || id AS local_id, id, 'incident' AS event_type, '2025-03-14' AS occurred_at, narrative AS description
			FROM big WHERE $1::bigint IS NULL OR id > $1 ORDER BY id LIMIT $2`},
		ingest.Deps{Name: "sqlpoll", Publisher: store, State: adaptertest.NewState(), Logger: zerolog.Nop()})
	conn, err := sql.Open("pgx", pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var sizes []int
	for {
		full, err := a.step(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		recs := store.Records()
		sizes = append(sizes, len(recs))
		if !full {
			break
		}
	}
	if got := len(store.Records()); got != 20 {
		t.Fatalf("rows stored: got %d, want 20", got)
	}
	for i := 1; i < len(sizes); i++ {
		if n := sizes[i] - sizes[i-1]; n > 3 {
			t.Errorf("batch %d held %d rows of 100 kB, more than a 250 kB bound allows (3)", i+1, n)
		}
	}
	if sizes[0] > 3 {
		t.Errorf("first batch held %d rows, want at most 3", sizes[0])
	}
	seen := map[string]bool{}
	for _, r := range store.Records() {
		if seen[r.LocalID] || !strings.HasPrefix(r.LocalID, "DX-") {
			t.Errorf("record %q stored twice or misnamed", r.LocalID)
		}
		seen[r.LocalID] = true
	}
}
