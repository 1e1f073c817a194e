package sqlpoll

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
)

// FuzzCursor protects the stored cursor, the only thing that says where polling resumes.
// It lives in the state store and is read back after every restart, so it may be anything
// an older version, a hand edit or a damaged store left there, and it is handed to the
// database as the query's arguments. For any stored bytes that decode, args returns one
// argument per cursor column, each of the Go type its cursor value says (NULL past the
// stored values), and never panics; and the cursor is stable: turning the arguments back
// into a cursor, as the next batch does from its last row, gives the same arguments, so
// polling neither drifts nor skips on a restart.
func FuzzCursor(f *testing.F) {
	for _, s := range []string{
		`{"values":[{"type":"time","value":"2025-03-14T09:30:00.123456Z"},{"type":"text","value":"DX-1"}]}`,
		`{"values":[{"type":"time","value":"2025-03-14T09:30:00+01:00"},{"type":"int","value":"42"}]}`,
		`{"values":[{"type":"float","value":"1e308"},{"type":"float","value":"NaN"},{"type":"float","value":"-Inf"}]}`,
		`{"values":[{"type":"bytes","value":"00ff10"},{"type":"bytes","value":"0g"},{"type":"bytes","value":"abc"}]}`,
		`{"values":[{"type":"int","value":"99999999999999999999"},{"type":"int","value":"-0x10"},{"type":"time","value":"yesterday"}]}`,
		`{"values":[{"type":"time","value":"0001-01-01T00:00:00Z"},{"type":"time","value":"9999-12-31T23:59:59.999999999-23:59"}]}`,
		`{"values":[{"type":"uuid","value":"5f0c"},{"type":"","value":""},{}]}`,
		`{"values":[{"type":"timestamp","value":"2025-10-26 01:30:00.5"},{"type":"date","value":"2025-02-30"}]}`,
		`{"values":[{"type":"text","value":"18446744073709551615"},{"type":"timestamp","value":"2025-10-26T01:30:00"}]}`,
		`{"values":[]}`, `{"values":null}`, `{}`, `{"values":[null]}`, `{"values":[{"type":"null","value":""},{"type":"text","value":"DX-1"}]}`, `{"values":[{"type":"text","value":"a\u0000\ud800"}]}`,
	} {
		f.Add([]byte(s), uint8(2))
	}
	f.Fuzz(func(t *testing.T, stored []byte, columns uint8) {
		var cur cursor
		if err := json.Unmarshal(stored, &cur); err != nil {
			return // pollOnce refuses it, naming the key to delete
		}
		n := int(columns % 8)
		args := cur.args(n)
		if len(args) != n {
			t.Fatalf("got %d arguments, want one per cursor column (%d)", len(args), n)
		}
		for i, a := range args {
			if i >= len(cur.Values) {
				if a != nil {
					t.Fatalf("argument %d past the stored values: got %#v, want NULL", i, a)
				}
				continue
			}
			ok := false
			switch a.(type) {
			case time.Time:
				ok = cur.Values[i].Type == "time"
			case int64:
				ok = cur.Values[i].Type == "int"
			case float64:
				ok = cur.Values[i].Type == "float"
			case []byte:
				ok = cur.Values[i].Type == "bytes"
			case string:
				ok = !strings.Contains(" time int float bytes null ", " "+cur.Values[i].Type+" ")
			case nil:
				ok = cur.Values[i].Type == cursorNull
			}
			if !ok {
				t.Fatalf("argument %d: got %T for a %q cursor value", i, a, cur.Values[i].Type)
			}
		}
		// The arguments, saved again as the cursor of a batch's last row, come back unchanged.
		var next cursor
		for _, a := range args[:min(n, len(cur.Values))] {
			next.Values = append(next.Values, toCursorValue(a))
		}
		b, err := json.Marshal(next)
		if err != nil {
			t.Fatalf("cursor does not encode: %v", err)
		}
		var back cursor
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("saved cursor does not decode: %v\n%s", err, b)
		}
		// Ordering and the re-read window's start never panic, and a cursor is equal to
		// itself.
		if c := cur.compare(cur); c != 0 {
			t.Fatalf("cursor compares %d with itself", c)
		}
		_ = cur.compare(back)
		if b, ok := cur.before(time.Hour); ok && len(b.Values) != len(cur.Values) {
			t.Fatalf("window start has %d values, want %d", len(b.Values), len(cur.Values))
		}
		again := back.args(n)
		for i := range args {
			if !sameArg(args[i], again[i]) {
				t.Fatalf("argument %d drifts when saved and read again: %#v, then %#v", i, args[i], again[i])
			}
		}
	})
}

func sameArg(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || math.IsNaN(x) && math.IsNaN(y))
	case []byte:
		y, ok := b.([]byte)
		return ok && string(x) == string(y)
	}
	return a == b
}

var fuzzHeader = []string{"local_id", "revision", "updated_at", "event_type", "occurred_at", "description", "patient.nhs_number", "site"}

// FuzzRecord protects the mapping of one database row to a record. Cells hold whatever the
// source database stores (free text, bytes that are not UTF-8 in an SQL_ASCII database,
// control characters, ids of any length), and the cursor value is the row's own. For any
// cells and cursor value, record:
//
//   - never panics, and gives the same record for the same row, so a row read again after a
//     restart is dropped as a duplicate;
//   - gives an incident that re-validates cleanly, or a rejected record whose reason says
//     which row ("row at cursor ...") and why;
//   - gives every record a key derived from its local id, and a local id the operations API
//     can look up: non-blank UTF-8, at most fhir.MaxLocalID characters, no control characters.
func FuzzRecord(f *testing.F) {
	for _, s := range []struct{ cells, cursor string }{
		{"DX-1\x1f2\x1f2025-03-14T09:30:00Z\x1fincident\x1f2025-03-14\x1fFall from bed\x1f9434765919\x1fRRK", "2025-03-14T09:30:00Z"},
		{"DX-2\x1f\x1f2025-03-14T09:30:00Z\x1frisk\x1f\x1fBroken bed rail\x1f\x1f", "2025-03-14T09:30:00Z,DX-2"},
		{"\x1f1\x1f\x1fincident\x1f2025-03-14\x1fno id\x1f\x1f", "2025-03-14T09:30:00Z"},
		{"DX-3\x1fnot a number\x1f\x1foutcome\x1f2099-01-01\x1ffuture\x1f123\x1f", "x"},
		{"DX\r\n4\x1f1\x1f\x1fincident\x1f2025-03-14\x1fcontrol characters in the id\x1f\x1f", "c"},
		{strings.Repeat("L", 200) + "\x1f1\x1f\x1fincident\x1f2025-03-14\x1flong id\x1f\x1f", strings.Repeat("é", 100)},
		{"DX-5\x1f1\x1f\x1fincident\x1f2025-03-14\x1fcaf\xe9 latin-1 bytes\x1f\x1f", "\xff\xfe"},
		{"DX-6\x1f1\x1f\x1fincident\x1f2025-03-14\x1fCafÃ© double-encoded\x1f\x1f", ""},
	} {
		f.Add(s.cells, s.cursor)
	}
	f.Fuzz(func(t *testing.T, cells, cursorText string) {
		a := New(Config{Source: "datix", DSN: "unused", Query: "unused", CursorColumns: []string{"updated_at"},
			Columns: map[string]string{"location.organisation": "site"}},
			ingest.Deps{Logger: zerolog.Nop(), Now: func() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }})
		r := row{cells: make([]string, len(fuzzHeader)), cursor: cursor{Values: []cursorValue{{"text", cursorText}}}}
		copy(r.cells, strings.Split(cells, "\x1f"))
		cols := a.mapping(fuzzHeader)
		rec := a.record(fuzzHeader, cols, r)
		if again := a.record(fuzzHeader, cols, r); again.ID != rec.ID || again.LocalID != rec.LocalID || again.Reason != rec.Reason {
			t.Fatalf("one row, two records: %q %q, then %q %q", rec.ID, rec.Reason, again.ID, again.Reason)
		}
		if rec.Kind != ingest.KindIncident || rec.Source != "datix" || rec.ID == "" {
			t.Fatalf("malformed record %+v", rec)
		}
		if rec.Key != ingest.IncidentKey(rec.Source, rec.LocalID) {
			t.Fatalf("record key %q does not derive from local id %q", rec.Key, rec.LocalID)
		}
		if id := rec.LocalID; strings.TrimSpace(id) == "" || utf8.RuneCountInString(id) > fhir.MaxLocalID || !utf8.ValidString(id) ||
			strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("record local id %q cannot be looked up", id)
		}
		if rec.Reason == "" {
			if _, probs := fhir.ParseIncident(rec.Data, fhir.ParseOptions{Now: a.deps.Now()}); len(probs) > 0 {
				t.Fatalf("incident record does not re-validate: %v", probs)
			}
			return
		}
		if !strings.HasPrefix(rec.Reason, "row at cursor ") || !strings.Contains(rec.Reason, ": ") {
			t.Fatalf("reason %q does not say which row and why", rec.Reason)
		}
	})
}
