// Package sqlpoll is the ingest adapter for incident systems that can only be read from their
// database. It runs a configured query on a timer, with a cursor (for example updated_at and
// id) kept in the gateway's state store, maps each result row to an incident by column name
// and publishes it. The cursor moves past a batch only after every row of it was durably
// stored, so a crash or a lost connection re-reads rows (dropped as duplicates by their ids)
// and never skips one.
//
// The query receives the cursor values as $1..$k (SQL NULL before the first row) and the batch
// size as $k+1. It must return rows in cursor order, strictly after the cursor, for example:
//
//	SELECT id AS local_id, updated_at, revision, ... FROM incidents
//	WHERE $1::timestamptz IS NULL OR (updated_at, id) > ($1, $2)
//	ORDER BY updated_at, id LIMIT $3
//
// A row updated later comes back with a newer cursor value and is a new revision: the
// source's revision column when the mapping has one, else a change of content. Rows with the
// same timestamp across a page boundary are kept apart by the tie-breaking cursor column.
// Query errors, lost connections and permission errors end Run with the error, so that the
// runner reports it on the adapter's status and retries with backoff.
//
// It runs on database/sql; PostgreSQL through pgx (driver name "pgx") is the tested driver.
package sqlpoll

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
)

// Reasons counted in psgw_ingest_errors_total{reason}.
const (
	ReasonRowInvalid = "row_invalid" // a row breaking the ingest rules, quarantined
)

// Adapter polls one query. Build it with New or the registered Factory.
type Adapter struct {
	cfg  Config
	deps ingest.Deps
}

var _ ingest.Adapter = (*Adapter)(nil)

func init() {
	ingest.Register(ingest.Module{
		Kind:    Kind,
		Section: Section,
		New:     ingest.NewSettings(Defaults),
		Factory: Factory,
		// A database that is down or refuses the query is retried for longer.
		State:      true,
		BackoffMax: 5 * time.Minute,
	})
}

// Factory builds the adapter from deps.Settings (a Config or *Config). It does no I/O. The
// column map comes from the source's csv_columns (deps.Shared) unless the settings hold one,
// and without a publish timeout of its own it takes the gateway's (queue.publish_timeout).
func Factory(deps ingest.Deps) (ingest.Adapter, error) {
	cfg, err := ingest.SettingsAs[Config](Kind, deps)
	if err != nil {
		return nil, err
	}
	if cfg.Columns == nil {
		cfg.Columns = deps.Shared.Sources[cfg.Source].CSVColumns
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = deps.Shared.PublishTimeout
	}
	switch {
	case cfg.DSN == "":
		return nil, errors.New("sqlpoll adapter: DSN is required")
	case cfg.Source == "":
		return nil, errors.New("sqlpoll adapter: Source is required")
	case strings.TrimSpace(cfg.Query) == "":
		return nil, errors.New("sqlpoll adapter: Query is required")
	case len(cfg.CursorColumns) == 0:
		return nil, errors.New("sqlpoll adapter: CursorColumns is required")
	case deps.State == nil:
		return nil, errors.New("sqlpoll adapter: needs a state store for its cursor")
	}
	return New(cfg, deps), nil
}

// New builds the adapter. It does no I/O.
func New(cfg Config, deps ingest.Deps) *Adapter {
	deps.Now = deps.Clock()
	return &Adapter{cfg: cfg.withDefaults(), deps: deps}
}

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
		n, err := a.pollOnce(ctx, db)
		if ctx.Err() != nil {
			return nil
		}
		var pe *publishError
		switch {
		case errors.As(err, &pe):
			// Not stored: the cursor stays, and the batch is read again after a backoff. The
			// runner has already put the failure on the adapter's status.
			failures++
			a.deps.Logger.Warn().Err(err).Msg("batch not stored; will read it again")
		case err != nil:
			return err
		case n >= a.cfg.BatchSize:
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

// cursorValue is one cursor column's value, typed so that it goes back to the driver as the
// same SQL type.
type cursorValue struct {
	Type  string `json:"type"` // time, int, float, text, bytes, null
	Value string `json:"value"`
}

// cursorNull is the type of a cursor value that was SQL NULL. It goes back as NULL, never as
// an empty string, which a typed parameter would refuse on every poll.
const cursorNull = "null"

type cursor struct {
	Values []cursorValue `json:"values"`
}

func (c cursor) args(n int) []any {
	out := make([]any, n)
	for i := range out {
		if i >= len(c.Values) {
			continue // nil: SQL NULL, before the first row
		}
		v := c.Values[i]
		switch v.Type {
		case cursorNull:
			out[i] = nil
		case "time":
			t, _ := time.Parse(time.RFC3339Nano, v.Value)
			out[i] = t
		case "int":
			n, _ := strconv.ParseInt(v.Value, 10, 64)
			out[i] = n
		case "float":
			f, _ := strconv.ParseFloat(v.Value, 64)
			out[i] = f
		case "bytes":
			b, _ := hex.DecodeString(v.Value)
			out[i] = b
		default:
			out[i] = v.Value
		}
	}
	return out
}

func toCursorValue(v any) cursorValue {
	switch x := v.(type) {
	case time.Time:
		return cursorValue{"time", x.Format(time.RFC3339Nano)}
	case int64:
		return cursorValue{"int", strconv.FormatInt(x, 10)}
	case int32:
		return cursorValue{"int", strconv.FormatInt(int64(x), 10)}
	case float64:
		return cursorValue{"float", strconv.FormatFloat(x, 'g', -1, 64)}
	case []byte:
		return cursorValue{"bytes", hex.EncodeToString(x)}
	case nil:
		return cursorValue{cursorNull, ""}
	default:
		return cursorValue{"text", fmt.Sprint(x)}
	}
}

// row is one result row, read before anything is published so that the connection is free.
type row struct {
	cells  []string
	cursor cursor
}

// pollOnce runs the query once, publishes every row, then moves the cursor. It returns the
// number of rows.
func (a *Adapter) pollOnce(ctx context.Context, db *sql.DB) (int, error) {
	var cur cursor
	b, err := a.deps.State.Get(ctx, a.cfg.StateKey)
	if err != nil {
		return 0, fmt.Errorf("reading cursor: %w", err)
	}
	if b != nil {
		if err := json.Unmarshal(b, &cur); err != nil {
			return 0, fmt.Errorf("cursor %s is unreadable (delete it to start over): %w", a.cfg.StateKey, err)
		}
	}
	header, rows, err := a.query(ctx, db, cur)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	cols := a.mapping(header)
	if _, ok := cols["local_id"]; !ok {
		return 0, errors.New("the query returns no local_id column (name one local_id, or map it in sources.NAME.csv_columns)")
	}
	next, nulls := -1, 0
	for i, r := range rows {
		rec := a.record(header, cols, r)
		pctx, cancel := context.WithTimeout(ctx, a.cfg.PublishTimeout)
		_, err := a.deps.Publisher.Publish(pctx, rec)
		cancel()
		if errors.Is(err, ingest.ErrTooLarge) {
			// The row can never be stored as it is: quarantine it without its data, or the
			// cursor could never move past it.
			big := a.rejectAs(rec.LocalID, r, nil, fmt.Sprintf("the row is %d bytes as an incident, more than the gateway's store takes in one message", len(rec.Data)))
			pctx, cancel := context.WithTimeout(ctx, a.cfg.PublishTimeout)
			_, err = a.deps.Publisher.Publish(pctx, big)
			cancel()
		}
		if err != nil {
			return 0, &publishError{fmt.Errorf("storing row %s: %w", rec.ID, err)}
		}
		if r.cursor.hasNull() {
			nulls++
		} else {
			next = i
		}
	}
	if nulls > 0 {
		// Stored, but a NULL cannot be a position to resume from: the cursor moves to the
		// last row with a whole cursor, and the query decides whether the others come back.
		a.deps.Logger.Warn().Int("rows", nulls).Strs("cursor_columns", a.cfg.CursorColumns).
			Msg("rows with a NULL cursor value were stored but cannot move the cursor; exclude or COALESCE NULLs in the query")
	}
	if next < 0 {
		if len(rows) >= a.cfg.BatchSize {
			return 0, fmt.Errorf("every row of a full batch has a NULL in a cursor column (%s), so the cursor cannot move past them: "+
				"exclude NULL cursor values in sqlpoll.query or COALESCE them", strings.Join(a.cfg.CursorColumns, ", "))
		}
		return len(rows), nil
	}
	last, _ := json.Marshal(rows[next].cursor)
	if err := a.deps.State.Put(ctx, a.cfg.StateKey, last); err != nil {
		return 0, fmt.Errorf("saving cursor: %w", err)
	}
	return len(rows), nil
}

func (a *Adapter) query(ctx context.Context, db *sql.DB, cur cursor) ([]string, []row, error) {
	qctx, cancel := context.WithTimeout(ctx, a.cfg.QueryTimeout)
	defer cancel()
	args := append(cur.args(len(a.cfg.CursorColumns)), a.cfg.BatchSize)
	rs, err := db.QueryContext(qctx, a.cfg.Query, args...)
	if err != nil {
		return nil, nil, dbError("running query", err)
	}
	defer rs.Close()
	header, err := rs.Columns()
	if err != nil {
		return nil, nil, dbError("reading columns", err)
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
			return nil, nil, fmt.Errorf("cursor column %q is not among the query's columns %v", c, header)
		}
	}
	var out []row
	vals := make([]any, len(header))
	ptrs := make([]any, len(header))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rs.Next() {
		if err := rs.Scan(ptrs...); err != nil {
			return nil, nil, dbError("reading row", err)
		}
		r := row{cells: make([]string, len(header))}
		for i, v := range vals {
			dbType := ""
			if i < len(types) {
				dbType = types[i].DatabaseTypeName()
			}
			r.cells[i] = cellText(v, dbType)
		}
		for _, j := range cursorAt {
			r.cursor.Values = append(r.cursor.Values, toCursorValue(vals[j]))
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, nil, dbError("reading rows", err)
	}
	return header, out, nil
}

// dbError wraps a database error for the adapter's status and logs. PostgreSQL's message text
// may quote a value from a row ("invalid input syntax for type integer: ..."), so for a
// server error only its SQLSTATE and a message known to hold no data are kept: the server's
// own text for the classes whose messages name only the query's objects, the connection or
// the server (08, 28, 3D, 42, 53, 57, 58), a generic description of the class otherwise.
func dbError(what string, err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		var se interface{ SQLState() string }
		if errors.As(err, &se) { // another driver's server error: its text is unknown
			return fmt.Errorf("%s: %s (SQLSTATE %s)", what, sqlStateClass(se.SQLState()), se.SQLState())
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := sqlStateClass(pe.Code)
	switch pe.Code[:min(2, len(pe.Code))] {
	case "08", "28", "3D", "42", "53", "57", "58":
		msg = pe.Message
	}
	return fmt.Errorf("%s: %s (SQLSTATE %s)", what, msg, pe.Code)
}

// sqlStateClass describes a SQLSTATE's class in words holding no data.
func sqlStateClass(code string) string {
	classes := map[string]string{
		"08": "connection exception", "0A": "feature not supported", "21": "cardinality violation",
		"22": "data exception: a value in a row could not be converted, compared or computed",
		"23": "integrity constraint violation", "25": "invalid transaction state", "28": "invalid authorization",
		"3D": "invalid database name", "40": "transaction rollback", "42": "syntax error or access rule violation",
		"53": "insufficient resources", "54": "program limit exceeded", "55": "object not in prerequisite state",
		"57": "operator intervention", "58": "system error", "P0": "error raised by a PL/pgSQL function",
		"XX": "internal error",
	}
	if c, ok := classes[code[:min(2, len(code))]]; ok {
		return c
	}
	return "database error"
}

// cellText renders a value as the text a CSV cell would hold.
func cellText(v any, dbType string) string {
	switch x := v.(type) {
	case nil:
		return ""
	case time.Time:
		if strings.EqualFold(dbType, "DATE") {
			return x.Format("2006-01-02")
		}
		return x.Format(time.RFC3339Nano)
	case []byte:
		return string(x)
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	default:
		return fmt.Sprint(x)
	}
}

// mapping returns field → column: the configured Columns, plus result columns named like a
// field.
func (a *Adapter) mapping(header []string) map[string]string {
	out := map[string]string{}
	for _, h := range header {
		for _, f := range fhir.RecordFields {
			if h == f {
				out[f] = h
			}
		}
	}
	for f, c := range a.cfg.Columns {
		out[f] = c
	}
	return out
}

// record builds the record for one row: an incident, or, when the row breaks the ingest
// rules, a rejected record the mapper quarantines with the reason.
func (a *Adapter) record(header []string, cols map[string]string, r row) ingest.Record {
	data, problems := fhir.IncidentFromRecord(a.cfg.Source, cols, header, r.cells)
	now := a.deps.Now().UTC()
	if len(problems) == 0 {
		in, ps := fhir.ParseIncident(data, fhir.ParseOptions{Now: a.deps.Now(), Sources: a.deps.Sources})
		if len(ps) == 0 {
			if p := ingest.LocalIDProblem(in.LocalID); p != "" {
				// The id column holds text, not an id (a wrong mapping, a shifted view): it
				// would be shown on the status page, so the row is quarantined by cursor.
				return a.rejectAs("", r, data, fmt.Sprintf("column %q (local_id) does not hold an incident id: %s", cols["local_id"], p))
			}
			key := ingest.IncidentKey(in.Source, in.LocalID)
			sum := sha256.Sum256(data)
			return ingest.Record{
				Kind: ingest.KindIncident, Source: in.Source, LocalID: in.LocalID, Key: key,
				// The revision column's value, or the content: a re-read row is a duplicate, a
				// changed one an amendment.
				ID:       ingest.IncidentRecordID(in.Source, key, in.RevisionOr(0), hex.EncodeToString(sum[:12])),
				Revision: in.RevisionOr(0), Data: data, ReceivedAt: now,
			}
		}
		problems = ps
	}
	parts := make([]string, len(problems))
	for i, p := range problems {
		parts[i] = p.String()
	}
	localID := ""
	for i, h := range header {
		if h == cols["local_id"] && i < len(r.cells) {
			localID = strings.TrimSpace(r.cells[i])
		}
	}
	if ingest.LocalIDProblem(localID) != "" {
		localID = ""
	}
	return a.rejectAs(localID, r, data, strings.Join(parts, "; "))
}

// rejectAs builds the rejected record of a row: the mapper quarantines it with the reason
// "row at cursor V: why". Its local id is localID when not empty (an id cell that looks like
// an id), else "cursor V"; V shows only cursor values that hold no text other than an id.
func (a *Adapter) rejectAs(localID string, r row, data []byte, why string) ingest.Record {
	a.deps.CountRejected(ReasonRowInvalid)
	where := "row at cursor " + r.cursor.safeString()
	if localID == "" {
		localID = ingest.LookupSafe("cursor "+r.cursor.safeString(), fhir.MaxLocalID)
	}
	reason := where + ": " + why
	key := ingest.IncidentKey(a.cfg.Source, localID)
	sum := sha256.Sum256(append(append([]byte(nil), data...), reason...))
	return ingest.Record{
		Kind: ingest.KindIncident, Source: a.cfg.Source, LocalID: localID, Key: key,
		ID:   ingest.IncidentRecordID(a.cfg.Source, key, 0, "x"+hex.EncodeToString(sum[:12])),
		Data: data, ReceivedAt: a.deps.Now().UTC(), Reason: reason,
	}
}

// safeString renders the cursor for reasons, local ids and logs: its values, comma-separated.
// Times and numbers are shown as they are, NULL as NULL, and a text or bytes value only when it
// looks like an id (ingest.LocalIDProblem); any other is shown as "#" and a hash of it, so
// that no free text from a row (a description used as a cursor column) reaches the status page.
func (c cursor) safeString() string {
	parts := make([]string, len(c.Values))
	for i, v := range c.Values {
		switch {
		case v.Type == cursorNull:
			parts[i] = "NULL"
		case v.Type == "time" || v.Type == "int" || v.Type == "float" || ingest.LocalIDProblem(v.Value) == "":
			parts[i] = v.Value
		default:
			sum := sha256.Sum256([]byte(v.Value))
			parts[i] = "#" + hex.EncodeToString(sum[:6])
		}
	}
	return strings.Join(parts, ",")
}

// hasNull reports whether a cursor value is NULL: such a row cannot be resumed from.
func (c cursor) hasNull() bool {
	for _, v := range c.Values {
		if v.Type == cursorNull {
			return true
		}
	}
	return false
}

// publishError is a row that could not be stored: retried in Run, not a reason to reconnect.
type publishError struct{ err error }

func (e *publishError) Error() string { return e.err.Error() }
func (e *publishError) Unwrap() error { return e.err }
