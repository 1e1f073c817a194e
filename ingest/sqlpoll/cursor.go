package sqlpoll

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// cursorValue is one cursor column's value, typed so that it goes back to the driver as the
// same SQL type.
type cursorValue struct {
	Type  string `json:"type"` // time, timestamp, date, int, float, text, bytes, null
	Value string `json:"value"`
}

// The cursor value types whose text is not RFC 3339. A `timestamp` (without time zone) or
// `date` value has no zone: it goes back as text, which PostgreSQL reads as the same wall
// time, so that a `$1::timestamptz` cast converts it in the session's zone exactly as it
// converts the column, and a `$1::timestamp` cast keeps it as it is. Sent as an instant in
// UTC it would be shifted by the session's offset (an hour in a London summer), passing
// rows over (docs/adapters.md, "Cursor").
const (
	cursorTimestamp = "timestamp"
	cursorDate      = "date"
	// cursorNull is the type of a cursor value that was SQL NULL. It goes back as NULL, never
	// as an empty string, which a typed parameter would refuse on every poll.
	cursorNull = "null"
)

// wallLayout is how a zone-less timestamp is kept and sent: PostgreSQL's own input format.
const wallLayout = "2006-01-02 15:04:05.999999999"

type cursor struct {
	Values []cursorValue `json:"values"`
}

func (c cursor) args(n int) []any {
	out := make([]any, n)
	for i := range out {
		if i >= len(c.Values) {
			continue // nil: SQL NULL, before the first row
		}
		out[i] = c.Values[i].arg()
	}
	return out
}

func (v cursorValue) arg() any {
	switch v.Type {
	case cursorNull:
		return nil
	case "time":
		t, _ := time.Parse(time.RFC3339Nano, v.Value)
		return t
	case "int":
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	case "float":
		f, _ := strconv.ParseFloat(v.Value, 64)
		return f
	case "bytes":
		b, _ := hex.DecodeString(v.Value)
		return b
	default: // text, and timestamp and date as PostgreSQL reads them
		return v.Value
	}
}

func toCursorValue(v any) cursorValue { return typedCursorValue(v, "") }

// typedCursorValue is the cursor value of a column of the database type dbType
// (sql.ColumnType.DatabaseTypeName; "" when unknown).
func typedCursorValue(v any, dbType string) cursorValue {
	switch x := v.(type) {
	case time.Time:
		switch strings.ToUpper(dbType) {
		case "TIMESTAMP":
			return cursorValue{cursorTimestamp, x.Format(wallLayout)}
		case "DATE":
			return cursorValue{cursorDate, x.Format("2006-01-02")}
		}
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

// when is the value as a time, for a time, timestamp or date value.
func (v cursorValue) when() (time.Time, bool) {
	var t time.Time
	var err error
	switch v.Type {
	case "time":
		t, err = time.Parse(time.RFC3339Nano, v.Value)
	case cursorTimestamp:
		t, err = time.Parse(wallLayout, v.Value)
	case cursorDate:
		t, err = time.Parse("2006-01-02", v.Value)
	default:
		return t, false
	}
	return t, err == nil
}

// compare orders two cursors as the query does, for the values it can: times and numbers
// exactly, text and bytes by their bytes (a database collation may order text otherwise), a
// NULL after everything (as ORDER BY puts NULLs last). It decides only where a re-read pass
// ends and which rows it counts as found late, never which rows are stored.
func (c cursor) compare(o cursor) int {
	for i := range min(len(c.Values), len(o.Values)) {
		a, b := c.Values[i], o.Values[i]
		if (a.Type == cursorNull) != (b.Type == cursorNull) {
			if a.Type == cursorNull {
				return 1
			}
			return -1
		}
		var r int
		if ta, ok := a.when(); ok {
			if tb, ok := b.when(); ok {
				r = ta.Compare(tb)
			}
		} else {
			switch a.Type {
			case "int":
				x, _ := strconv.ParseInt(a.Value, 10, 64)
				y, _ := strconv.ParseInt(b.Value, 10, 64)
				r = cmp.Compare(x, y)
			case "float":
				x, _ := strconv.ParseFloat(a.Value, 64)
				y, _ := strconv.ParseFloat(b.Value, 64)
				r = cmp.Compare(x, y)
			case "text":
				// Numbers a driver hands over as text (an unsigned xid8) compare as numbers.
				x, errx := strconv.ParseUint(a.Value, 10, 64)
				y, erry := strconv.ParseUint(b.Value, 10, 64)
				if errx == nil && erry == nil {
					r = cmp.Compare(x, y)
				} else {
					r = strings.Compare(a.Value, b.Value)
				}
			default:
				r = bytes.Compare([]byte(a.Value), []byte(b.Value))
			}
		}
		if r != 0 {
			return r
		}
	}
	return cmp.Compare(len(c.Values), len(o.Values))
}

// before is the cursor d earlier in its first column, the rest NULL, for a cursor whose first
// value is a time: a query "(updated_at, id) > ($1, $2)" then returns every row whose time is
// after it. ok is false for any other cursor.
func (c cursor) before(d time.Duration) (cursor, bool) {
	if len(c.Values) == 0 {
		return cursor{}, false
	}
	t, ok := c.Values[0].when()
	if !ok {
		return cursor{}, false
	}
	v := c.Values[0]
	switch t = t.Add(-d); v.Type {
	case cursorTimestamp:
		v.Value = t.Format(wallLayout)
	case cursorDate:
		v.Value = t.Format("2006-01-02")
	default:
		v.Value = t.Format(time.RFC3339Nano)
	}
	out := cursor{Values: []cursorValue{v}}
	for range c.Values[1:] {
		out.Values = append(out.Values, cursorValue{Type: cursorNull})
	}
	return out, true
}

// progress is what the adapter keeps in the state store: the head cursor (its "values", as
// before re-reading existed, so a stored cursor reads unchanged) and what the re-read passes
// need. It is loaded and saved only by load and save, so that one place can hold a lease.
type progress struct {
	cursor
	// Trail holds the head as it was at each poll that moved it, newest last, back to the
	// first one older than reread_window: where a re-read pass starts.
	Trail []checkpoint `json:"trail,omitempty"`
	// NextReread and NextReconcile are when the next passes are due.
	NextReread    time.Time `json:"next_reread,omitzero"`
	NextReconcile time.Time `json:"next_reconcile,omitzero"`
}

type checkpoint struct {
	At     time.Time     `json:"at"`
	Values []cursorValue `json:"values"`
}

// load reads the adapter's progress; none stored is the start.
func (a *Adapter) load(ctx context.Context) (progress, error) {
	var p progress
	b, err := a.deps.State.Get(ctx, a.cfg.StateKey)
	if err != nil {
		return p, fmt.Errorf("reading cursor: %w", err)
	}
	if b != nil {
		if err := json.Unmarshal(b, &p); err != nil {
			return p, fmt.Errorf("cursor %s is unreadable (delete it to start over): %w", a.cfg.StateKey, err)
		}
	}
	return p, nil
}

// save writes the adapter's progress.
func (a *Adapter) save(ctx context.Context, p progress) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding cursor: %w", err)
	}
	if err := a.deps.State.Put(ctx, a.cfg.StateKey, b); err != nil {
		return fmt.Errorf("saving cursor: %w", err)
	}
	return nil
}

// moved records that the head moved to c at now, keeping the trail back to the first
// checkpoint older than the re-read window.
func (p *progress) moved(c cursor, now time.Time, window time.Duration) {
	if len(p.Trail) == 0 {
		// Where the head was before: a row committed late behind the very first cursor is
		// re-read from there.
		p.Trail = append(p.Trail, checkpoint{At: now, Values: p.Values})
	}
	p.cursor = c
	p.Trail = append(p.Trail, checkpoint{At: now, Values: c.Values})
	cut := 0
	for i, cp := range p.Trail {
		if now.Sub(cp.At) >= window {
			cut = i // the newest checkpoint at least a window old
		}
	}
	p.Trail = p.Trail[cut:]
	if len(p.Trail) > maxTrail {
		// A head that moves on every poll for a long window: keep the oldest, thin the rest.
		p.Trail = append(p.Trail[:1], p.Trail[len(p.Trail)-maxTrail+1:]...)
	}
}

// maxTrail bounds the checkpoints kept (the state store takes a few KiB per key).
const maxTrail = 16

// rereadFrom is where a re-read pass starts: the head as it was reread_window ago (the oldest
// checkpoint), and, for a time cursor, no later than the window before the head's time, plus
// an hour for a zone-less timestamp, whose wall clock goes back an hour in autumn.
func (p progress) rereadFrom(window time.Duration) cursor {
	from := p.cursor
	if len(p.Trail) > 0 {
		from = cursor{Values: p.Trail[0].Values}
	}
	back := window
	if len(p.Values) > 0 && p.Values[0].Type == cursorTimestamp {
		back += time.Hour
	}
	if c, ok := p.cursor.before(back); ok && (len(from.Values) > 0 && c.compare(from) < 0) {
		from = c
	}
	return from
}

// SkipPast sets the head cursor to values (one per cursor column), each typed like the value
// it replaces (text where there is none, NULL for "NULL"), so that the next poll reads after
// them: an operator's step past a row that cannot be read at all. It waits for a poll in
// progress to end, so that the poll's own save cannot overwrite it.
func (a *Adapter) SkipPast(ctx context.Context, values []string) (string, error) {
	if len(values) != len(a.cfg.CursorColumns) {
		return "", fmt.Errorf("give one value per cursor column (%s), got %d", strings.Join(a.cfg.CursorColumns, ", "), len(values))
	}
	a.stepMu.Lock()
	defer a.stepMu.Unlock()
	p, err := a.load(ctx)
	if err != nil {
		return "", err
	}
	previous := p.cursor.safeString()
	next := cursor{}
	for i, v := range values {
		typ := "text"
		if i < len(p.Values) && p.Values[i].Type != cursorNull {
			typ = p.Values[i].Type
		}
		cv := cursorValue{Type: typ, Value: v}
		if v == "NULL" {
			cv = cursorValue{Type: cursorNull}
		} else if err := cv.check(); err != nil {
			return "", fmt.Errorf("value %d (%s): %w", i+1, a.cfg.CursorColumns[i], err)
		}
		next.Values = append(next.Values, cv)
	}
	if len(p.Values) > 0 && next.compare(p.cursor) < 0 {
		return "", fmt.Errorf("the cursor is at %s: %s is behind it, and stepping back is not stepping past (delete the cursor to start over)", previous, next.safeString())
	}
	p.moved(next, a.deps.Now(), a.cfg.RereadWindow)
	a.deps.Logger.Warn().Str("from", previous).Str("to", next.safeString()).Msg("cursor moved by an operator: rows between are not read by the cursor")
	return previous, a.save(ctx, p)
}

// check reports whether the value parses as its type.
func (v cursorValue) check() error {
	var err error
	switch v.Type {
	case "time", cursorTimestamp, cursorDate:
		if _, ok := v.when(); !ok {
			err = fmt.Errorf("%q is not a %s (want e.g. %s)", v.Value, v.Type, map[string]string{
				"time": "2025-03-14T09:30:00Z", cursorTimestamp: "2025-03-14 09:30:00", cursorDate: "2025-03-14"}[v.Type])
		}
	case "int":
		_, err = strconv.ParseInt(v.Value, 10, 64)
	case "float":
		_, err = strconv.ParseFloat(v.Value, 64)
	case "bytes":
		_, err = hex.DecodeString(v.Value)
	}
	return err
}
