// Package sqlpoll is the ingest adapter for incident systems that can only be read from their
// database. It runs a configured query on a timer, with a cursor (for example updated_at and
// id) kept in the gateway's state store, maps each result row to an incident by column name
// and publishes it. The cursor moves past a row only after it and every row before it were
// durably stored, so a crash or a lost connection re-reads rows (dropped as duplicates).
//
// The query receives the cursor values as $1..$k (SQL NULL before the first row) and the batch
// size as $k+1. It must return rows in cursor order, strictly after the cursor, for example:
//
//	SELECT id AS local_id, updated_at, revision, ... FROM incidents
//	WHERE $1::timestamptz IS NULL OR (updated_at, id) > ($1, $2)
//	ORDER BY updated_at, id LIMIT $3
//
// A cursor alone can pass a row over for good: a transaction that commits after a later one
// (an id or a timestamp taken early, committed late), or a wall clock that goes back. So
// besides the cursor (the head) the adapter re-reads: every reread_interval it runs the query
// again from where the head was reread_window ago, and every reconcile_interval from the
// start, each up to the head, publishing what it reads. Rows psgw already holds at that
// content are duplicates and cost nothing; a row that is not is stored, counted and logged,
// since the cursor missed it. For PostgreSQL, docs/adapters.md ("Commit order") shows a query
// that never passes a row over: its cursor is the writing transaction's id, held behind the
// oldest transaction still open.
//
// One row the query cannot produce (a cast failing on it) does not stop the feed: the batch is
// read again in halves down to that one row, whose cursor and id are read without the failing
// columns, and the row is quarantined under its id. Query errors, lost connections and
// permission errors end Run with the error, naming the cursor, so that the runner reports it on
// the adapter's status and retries with backoff.
//
// It runs on database/sql; PostgreSQL through pgx (driver name "pgx") is the tested driver.
package sqlpoll

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/prometheus/client_golang/prometheus"

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
	// late counts rows a re-read pass found behind the cursor, by pass.
	late *prometheus.CounterVec
	// behind: the last batch at the head was full, so the head reads on before any pass.
	behind bool
	// stepMu is held for each poll and by SkipPast, so that an operator's cursor and a
	// poll's are never saved over each other.
	stepMu sync.Mutex
	// foundLate and lastLate (unix nanoseconds) count the rows the passes found, for Status.
	foundLate, lastLate atomic.Int64
}

var (
	_ ingest.CursorSkipper = (*Adapter)(nil)
	_ ingest.LateFinder    = (*Adapter)(nil)
)

// FoundLate returns how many rows the re-read passes found behind the cursor, and when the
// latest was.
func (a *Adapter) FoundLate() (uint64, time.Time) {
	n, at := a.foundLate.Load(), a.lastLate.Load()
	if n == 0 {
		return 0, time.Time{}
	}
	return uint64(n), time.Unix(0, at).UTC()
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
	return &Adapter{cfg: cfg.withDefaults(), deps: deps, late: lateCounter(deps.Metrics)}
}

// lateCounter registers psgw_sqlpoll_rows_found_late_total, or finds the one another sqlpoll
// adapter registered.
func lateCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "psgw_sqlpoll_rows_found_late_total",
		Help: "Rows a re-read pass (reread, reconcile) found behind an SQL poller's cursor and stored: rows the cursor had passed over.",
	}, []string{"adapter", "found_by"})
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
	}
	return c
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
			return &serverError{fmt.Sprintf("%s: %s (SQLSTATE %s)", what, sqlStateClass(se.SQLState()), se.SQLState()), se.SQLState()}
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := sqlStateClass(pe.Code)
	switch pe.Code[:min(2, len(pe.Code))] {
	case "08", "28", "3D", "42", "53", "57", "58":
		msg = pe.Message
	}
	return &serverError{fmt.Sprintf("%s: %s (SQLSTATE %s)", what, msg, pe.Code), pe.Code}
}

// serverError is the database server's error as dbError words it, keeping its SQLSTATE so
// that a data exception on one row can be told from a failing query.
type serverError struct{ msg, code string }

func (e *serverError) Error() string    { return e.msg }
func (e *serverError) SQLState() string { return e.code }

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
		in, ps := fhir.ParseIncident(data, fhir.ParseOptions{Now: a.deps.Now(), Sources: a.deps.Sources, Codes: a.deps.Codes})
		if len(ps) == 0 {
			if p := ingest.LocalIDProblem(in.LocalID); p != "" {
				// The id column holds text, not an id (a wrong mapping, a shifted view): it
				// would be shown on the status page, so the row is quarantined by cursor.
				return a.rejectAs("", r, data, fmt.Sprintf("column %q (local_id) does not hold an incident id: %s", cols["local_id"], p))
			}
			key := ingest.IncidentKey(in.Source, in.LocalID)
			h := sha256.Sum256(data)
			sum := hex.EncodeToString(h[:12])
			// The revision column's value, or the content: a re-read row is a duplicate, a
			// changed one an amendment.
			id := ingest.IncidentRecordID(in.Source, key, in.RevisionOr(0), sum)
			if a.cfg.AmendSameRevision && in.RevisionOr(0) > 0 {
				// The source does not always bump its revision: changed content under the
				// same revision is an amendment too.
				id += ".h" + sum
			}
			return ingest.Record{
				Kind: ingest.KindIncident, Source: in.Source, LocalID: in.LocalID, Key: key,
				ID: id, Revision: in.RevisionOr(0), Data: data, ReceivedAt: now,
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

// row is one result row, read before anything is published so that the connection is free.
type row struct {
	cells  []string
	cursor cursor
	// unreadable, when set, is why the query could not produce the row: it has only its
	// cursor and localID, the id column's text.
	unreadable string
	localID    string
}
