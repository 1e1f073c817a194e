package sqlpoll

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/psgw/psgw/ingest"
)

// Run opens the database and polls until ctx is cancelled. Any database error ends it with
// that error; the runner restarts it with backoff.
func (a *Adapter) Run(ctx context.Context) error {
	db, err := sql.Open(a.cfg.Driver, a.cfg.DSN)
	if err != nil {
		return fmt.Errorf("opening database: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(5 * time.Minute)
	failures := 0
	for {
		full, err := a.step(ctx, db)
		if ctx.Err() != nil {
			return nil
		}
		var pe *publishError
		switch {
		case errors.As(err, &pe):
			// Not stored: the cursor stays behind the row, which is read again after a
			// backoff. The runner has already put the failure on the adapter's status.
			failures++
			a.deps.Logger.Warn().Err(err).Msg("batch not stored; will read it again")
		case err != nil:
			return err
		case full:
			failures = 0
			continue // more are waiting
		default:
			failures = 0
		}
		t := time.NewTimer(ingest.PollWait(a.cfg.PollInterval, failures))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// step reads one batch at the head, or, when the head is caught up and a pass is due, runs
// that pass. full reports a full batch: more rows are waiting.
func (a *Adapter) step(ctx context.Context, db *sql.DB) (full bool, err error) {
	a.stepMu.Lock()
	defer a.stepMu.Unlock()
	p, err := a.load(ctx)
	if err != nil {
		return false, err
	}
	now := a.deps.Now()
	if !a.behind {
		switch {
		case a.cfg.ReconcileInterval > 0 && !p.NextReconcile.IsZero() && !now.Before(p.NextReconcile):
			if err := a.pass(ctx, db, cursor{}, p.cursor, FoundByReconcile); err != nil {
				return false, err
			}
			p.NextReconcile = now.Add(a.cfg.ReconcileInterval)
			p.NextReread = now.Add(a.cfg.RereadInterval)
			return false, a.save(ctx, p)
		case a.cfg.RereadWindow > 0 && !p.NextReread.IsZero() && !now.Before(p.NextReread):
			if err := a.pass(ctx, db, p.rereadFrom(a.cfg.RereadWindow), p.cursor, FoundByReread); err != nil {
				return false, err
			}
			p.NextReread = now.Add(a.cfg.RereadInterval)
			return false, a.save(ctx, p)
		}
	}
	b, err := a.read(ctx, db, p.cursor)
	if err != nil {
		return false, err
	}
	last, n, perr := a.publish(ctx, b, nil)
	a.behind = b.full && perr == nil
	if last != nil {
		p.moved(*last, now, a.cfg.RereadWindow)
	}
	if p.NextReread.IsZero() && a.cfg.RereadWindow > 0 {
		p.NextReread = now.Add(a.cfg.RereadInterval)
	}
	if p.NextReconcile.IsZero() && a.cfg.ReconcileInterval > 0 {
		p.NextReconcile = now.Add(a.cfg.ReconcileInterval)
	}
	if last != nil || n > 0 {
		if err := a.save(ctx, p); err != nil {
			return false, err
		}
	}
	if perr != nil {
		return false, perr
	}
	if last == nil && b.full {
		return false, fmt.Errorf("every row of a full batch has a NULL in a cursor column (%s), so the cursor cannot move past them: "+
			"exclude NULL cursor values in sqlpoll.query or COALESCE them", strings.Join(a.cfg.CursorColumns, ", "))
	}
	return b.full, nil
}

// Where a row the cursor had passed over was found, the found_by label of
// psgw_sqlpoll_rows_found_late_total.
const (
	FoundByReread    = "reread"
	FoundByReconcile = "reconcile"
)

// pass reads the query again from from up to the head (to), publishing every row: rows psgw
// holds at that content are duplicates; any other was passed over by the cursor, and is
// stored, counted and logged.
func (a *Adapter) pass(ctx context.Context, db *sql.DB, from, to cursor, foundBy string) error {
	for {
		b, err := a.read(ctx, db, from)
		if err != nil {
			return err
		}
		cut := len(b.rows)
		for i, r := range b.rows {
			if r.cursor.compare(to) > 0 {
				cut = i // past the head: the head reads it
				break
			}
		}
		ended := cut < len(b.rows) || !b.full
		b.rows = b.rows[:cut]
		last, _, err := a.publish(ctx, b, func(r row, rec ingest.Record) {
			a.late.WithLabelValues(a.deps.Name, foundBy).Inc()
			a.foundLate.Add(1)
			a.lastLate.Store(a.deps.Now().UnixNano())
			a.deps.Logger.Warn().Str("found_by", foundBy).Str("record", rec.ID).Str("cursor", r.cursor.safeString()).
				Msg("row found behind the cursor: the cursor had passed it over (a transaction committed late, or a clock went back)")
		})
		if err != nil {
			return err
		}
		if ended || last == nil {
			return nil
		}
		from = *last
	}
}

// batch is one query's rows, read before anything is published so that the connection is
// free.
type batch struct {
	header []string
	rows   []row
	// full: the batch stopped at batch_size or max_batch_bytes, so more rows may follow.
	full bool
}

// read runs the query after cur. A data exception (SQLSTATE class 22: a cast or a function
// failing on a value) is a row the query cannot produce: the rows before it are the batch, or,
// when none came, the query is run again for half as many, down to the one row, which is
// then read without its failing columns (unreadable).
func (a *Adapter) read(ctx context.Context, db *sql.DB, cur cursor) (batch, error) {
	limit := a.cfg.BatchSize
	for {
		b, err := a.query(ctx, db, cur, limit)
		if err == nil || !dataException(err) {
			return b, err
		}
		if len(b.rows) > 0 {
			b.full = true // the rows before the failing one; the next batch starts at it
			return b, nil
		}
		if limit > 1 {
			limit /= 2
			continue
		}
		return a.unreadable(ctx, db, cur, err)
	}
}

func dataException(err error) bool {
	var se interface{ SQLState() string }
	return errors.As(err, &se) && strings.HasPrefix(se.SQLState(), "22")
}

// unreadable reads the row after cur that the query fails on, without the columns it fails
// on: only its cursor columns and its id column (or, when the id fails too, the cursor columns
// alone), which PostgreSQL computes without the others (a subquery's unused outputs are not
// evaluated). The row is quarantined under its id (or its cursor); when even its cursor
// cannot be read, the feed stops at cur with an error saying how to step past it.
func (a *Adapter) unreadable(ctx context.Context, db *sql.DB, cur cursor, cause error) (batch, error) {
	idCol := "local_id"
	if c, ok := a.cfg.Columns["local_id"]; ok {
		idCol = c
	}
	withID := append([]string(nil), a.cfg.CursorColumns...)
	idAt := slices.Index(withID, idCol)
	if idAt < 0 {
		idAt = len(withID)
		withID = append(withID, idCol)
	}
	var err error
	for _, cols := range [][]string{withID, a.cfg.CursorColumns} {
		var vals []any
		var types []*sql.ColumnType
		if vals, types, err = a.probe(ctx, db, cur, cols); err != nil {
			continue
		}
		// The reason names the class and SQLSTATE only, the same whichever pass reads the
		// row, so that reading it again is a duplicate.
		r := row{unreadable: cause.Error()}
		var se interface{ SQLState() string }
		if errors.As(cause, &se) {
			r.unreadable = sqlStateClass(se.SQLState()) + " (SQLSTATE " + se.SQLState() + ")"
		}
		for i := range a.cfg.CursorColumns {
			r.cursor.Values = append(r.cursor.Values, typedCursorValue(vals[i], typeName(types, i)))
		}
		if idAt < len(cols) {
			r.localID = cellText(vals[idAt], typeName(types, idAt))
		}
		return batch{rows: []row{r}, full: true}, nil
	}
	return batch{}, fmt.Errorf("the row after cursor %s cannot be read (%v), and neither can its cursor (%v): fix the row, or step past it with `psgw sqlpoll skip %s --past VALUE` (docs/adapters.md)",
		cur.safeString(), cause, dbError("reading its cursor", err), a.deps.Name)
}

// probe reads only the columns cols of the row after cur.
func (a *Adapter) probe(ctx context.Context, db *sql.DB, cur cursor, cols []string) ([]any, []*sql.ColumnType, error) {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	q := "SELECT " + strings.Join(quoted, ", ") + " FROM (" + strings.TrimRight(strings.TrimSpace(a.cfg.Query), ";") + ") AS psgw_row"
	qctx, cancel := context.WithTimeout(ctx, a.cfg.QueryTimeout)
	defer cancel()
	rs, err := db.QueryContext(qctx, q, append(cur.args(len(a.cfg.CursorColumns)), 1)...)
	if err != nil {
		return nil, nil, err
	}
	defer rs.Close()
	types, _ := rs.ColumnTypes()
	if !rs.Next() {
		if err := rs.Err(); err != nil {
			return nil, nil, err
		}
		return nil, nil, errors.New("the row is gone")
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	return vals, types, rs.Scan(ptrs...)
}

func typeName(types []*sql.ColumnType, i int) string {
	if i < len(types) {
		return types[i].DatabaseTypeName()
	}
	return ""
}

func (a *Adapter) query(ctx context.Context, db *sql.DB, cur cursor, limit int) (batch, error) {
	qctx, cancel := context.WithTimeout(ctx, a.cfg.QueryTimeout)
	defer cancel()
	at := cur.safeString()
	if len(cur.Values) == 0 {
		at = "start"
	}
	args := append(cur.args(len(a.cfg.CursorColumns)), limit)
	rs, err := db.QueryContext(qctx, a.cfg.Query, args...)
	if err != nil {
		return batch{}, dbError("running query after cursor "+at, err)
	}
	defer rs.Close()
	header, err := rs.Columns()
	if err != nil {
		return batch{}, dbError("reading columns", err)
	}
	types, _ := rs.ColumnTypes()
	cursorAt := make([]int, len(a.cfg.CursorColumns))
	for i, c := range a.cfg.CursorColumns {
		cursorAt[i] = -1
		for j, h := range header {
			if h == c {
				cursorAt[i] = j
			}
		}
		if cursorAt[i] < 0 {
			return batch{}, fmt.Errorf("cursor column %q is not among the query's columns %v", c, header)
		}
	}
	b := batch{header: header}
	vals := make([]any, len(header))
	ptrs := make([]any, len(header))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	size := 0
	for rs.Next() {
		if err := rs.Scan(ptrs...); err != nil {
			return b, dbError("reading row after cursor "+at, err)
		}
		r := row{cells: make([]string, len(header))}
		for i, v := range vals {
			r.cells[i] = cellText(v, typeName(types, i))
			size += len(r.cells[i])
		}
		for _, j := range cursorAt {
			r.cursor.Values = append(r.cursor.Values, typedCursorValue(vals[j], typeName(types, j)))
		}
		b.rows = append(b.rows, r)
		if len(b.rows) >= limit || size >= a.cfg.MaxBatchBytes {
			// Bounded in bytes too: the next batch goes on from this row.
			b.full = true
			break
		}
	}
	if err := rs.Err(); err != nil {
		last := at
		if len(b.rows) > 0 {
			last = b.rows[len(b.rows)-1].cursor.safeString()
		}
		return b, dbError("reading rows after cursor "+last, err)
	}
	return b, nil
}

// publish stores the batch's rows, publish_concurrency at a time, one incident's rows in
// order, and returns the cursor of the last row that it and every row before it were stored
// (nil when none), and how many rows were stored. A row the durable store refuses stops the
// batch there with a publishError. found, when set, is called for each row stored that was not
// a duplicate.
func (a *Adapter) publish(ctx context.Context, b batch, found func(row, ingest.Record)) (*cursor, int, error) {
	if len(b.rows) == 0 {
		return nil, 0, nil
	}
	cols := a.mapping(b.header)
	hasID := b.header == nil // a batch of one unreadable row has no header
	_, ok := cols["local_id"]
	hasID = hasID || ok
	if !hasID {
		return nil, 0, errors.New("the query returns no local_id column (name one local_id, or map it in sources.NAME.csv_columns)")
	}
	errs := make([]error, len(b.rows))
	workers := max(1, min(a.cfg.PublishConcurrency, len(b.rows)))
	queues := make([]chan int, workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := 0
	for w := range queues {
		queues[w] = make(chan int, len(b.rows))
		wg.Add(1)
		go func(in <-chan int) {
			defer wg.Done()
			failed := false
			for i := range in {
				if failed || ctx.Err() != nil {
					errs[i] = errSkipped
					continue
				}
				rec, res, err := a.store(ctx, b.header, cols, b.rows[i])
				if err != nil {
					errs[i], failed = err, true
					continue
				}
				mu.Lock()
				stored++
				mu.Unlock()
				if found != nil && !res.Duplicate {
					found(b.rows[i], rec)
				}
			}
		}(queues[w])
	}
	idAt := -1
	for i, h := range b.header {
		if h == cols["local_id"] {
			idAt = i
		}
	}
	for i, r := range b.rows {
		queues[shard(r, idAt, workers)] <- i
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	var last *cursor
	nulls := 0
	for i, r := range b.rows {
		if errs[i] != nil {
			// The cursor stops before the first row not stored.
			err := errs[i]
			for _, e := range errs {
				if e != nil && !errors.Is(e, errSkipped) {
					err = e
					break
				}
			}
			if ctx.Err() != nil {
				return last, stored, ctx.Err()
			}
			return last, stored, &publishError{err}
		}
		if r.cursor.hasNull() {
			nulls++
			continue
		}
		c := r.cursor
		last = &c
	}
	if nulls > 0 {
		// Stored, but a NULL cannot be a position to resume from: the cursor moves to the
		// last row with a whole cursor, and the query decides whether the others come back.
		a.deps.Logger.Warn().Int("rows", nulls).Strs("cursor_columns", a.cfg.CursorColumns).
			Msg("rows with a NULL cursor value were stored but cannot move the cursor; exclude or COALESCE NULLs in the query")
	}
	return last, stored, nil
}

var errSkipped = errors.New("not published: an earlier row failed")

// shard keeps one incident's rows on one worker, so that they are stored in order.
func shard(r row, idAt, n int) int {
	h := fnv.New32a()
	switch {
	case r.unreadable != "":
		h.Write([]byte(r.localID))
	case idAt >= 0 && idAt < len(r.cells):
		h.Write([]byte(r.cells[idAt]))
	}
	return int(h.Sum32() % uint32(n))
}

// store publishes one row's record.
func (a *Adapter) store(ctx context.Context, header []string, cols map[string]string, r row) (ingest.Record, ingest.PublishResult, error) {
	var rec ingest.Record
	if r.unreadable != "" {
		id := r.localID
		if ingest.LocalIDProblem(id) != "" {
			id = ""
		}
		rec = a.rejectAs(id, r, nil, "the query fails on this row: "+r.unreadable)
	} else {
		rec = a.record(header, cols, r)
	}
	pctx, cancel := context.WithTimeout(ctx, a.cfg.PublishTimeout)
	res, err := a.deps.Publisher.Publish(pctx, rec)
	cancel()
	if errors.Is(err, ingest.ErrTooLarge) {
		// The row can never be stored as it is: quarantine it without its data, or the
		// cursor could never move past it.
		big := a.rejectAs(rec.LocalID, r, nil, fmt.Sprintf("the row is %d bytes as an incident, more than the gateway's store takes in one message", len(rec.Data)))
		pctx, cancel := context.WithTimeout(ctx, a.cfg.PublishTimeout)
		res, err = a.deps.Publisher.Publish(pctx, big)
		cancel()
	}
	if err != nil {
		return rec, res, fmt.Errorf("storing row %s: %w", rec.ID, err)
	}
	return rec, res, nil
}
