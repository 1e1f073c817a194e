package csvdrop_test

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/ingest/csvdrop"
)

var withColumns = ingest.Shared{Sources: map[string]ingest.Source{"datix": {CSVColumns: map[string]string{"local_id": "Ref", "occurred_at": "Date"}}}}

// TestSettingsValidate: the csvdrop section's checks, made only when dir turns the adapter on,
// each problem naming its key.
func TestSettingsValidate(t *testing.T) {
	on := func() csvdrop.Config {
		c := csvdrop.Defaults()
		c.Dir, c.Source = "/srv/drop", "datix"
		return c
	}
	adaptertest.CheckSettings(t, on, withColumns, []adaptertest.SettingsCase[csvdrop.Config]{
		{Name: "on", Mutate: func(*csvdrop.Config) {}, Want: ""},
		{Name: "off", Mutate: func(c *csvdrop.Config) { c.Dir, c.Pattern = "", "" }, Want: ""},
		{Name: "source without columns", Mutate: func(c *csvdrop.Config) { c.Source = "ulysses" }, Want: `csvdrop.source: must name a source in sources whose csv_columns map local_id, got "ulysses"`},
		{Name: "bad source name", Mutate: func(c *csvdrop.Config) { c.Source = "Datix" }, Want: `csvdrop.source: must match [a-z0-9_-]{1,64}`},
		{Name: "no pattern", Mutate: func(c *csvdrop.Config) { c.Pattern = "" }, Want: "csvdrop.pattern: must be set"},
		{Name: "bad pattern", Mutate: func(c *csvdrop.Config) { c.Pattern = "[" }, Want: "csvdrop.pattern: is not a valid pattern"},
		{Name: "poll interval", Mutate: func(c *csvdrop.Config) { c.PollInterval = 0 }, Want: "csvdrop.poll_interval: must be a positive duration"},
		{Name: "settle time", Mutate: func(c *csvdrop.Config) { c.SettleTime = -1 }, Want: "csvdrop.settle_time: must not be negative"},
		{Name: "encoding", Mutate: func(c *csvdrop.Config) { c.Encoding = "latin1" }, Want: "csvdrop.encoding: must be auto, utf-8 or windows-1252"},
		{Name: "two-character delimiter", Mutate: func(c *csvdrop.Config) { c.Delimiter = ";;" }, Want: "csvdrop.delimiter: must be one character"},
		{Name: "quote as delimiter", Mutate: func(c *csvdrop.Config) { c.Delimiter = `"` }, Want: "csvdrop.delimiter"},
		{Name: "row limit", Mutate: func(c *csvdrop.Config) { c.MaxRowBytes = 10 }, Want: "csvdrop.max_row_bytes: must be 1024 to"},
		{Name: "file limit", Mutate: func(c *csvdrop.Config) { c.MaxFileBytes = 10 }, Want: "csvdrop.max_file_bytes: must be at least 1024"},
		{Name: "concurrency", Mutate: func(c *csvdrop.Config) { c.PublishConcurrency = 65 }, Want: "csvdrop.publish_concurrency: must be 1 to 64"},
		{Name: "watch time", Mutate: func(c *csvdrop.Config) { c.WatchTime = 0 }, Want: "csvdrop.watch_time: must be a positive duration"},
		{Name: "date formats", Mutate: func(c *csvdrop.Config) { c.DateFormats = []string{"DD/MM/YYYY", "DD/MM/YYYY HH:mm"} }, Want: ""},
		{Name: "date format without a day", Mutate: func(c *csvdrop.Config) { c.DateFormats = []string{"DD/MM/YYYY", "MM/YYYY"} },
			Want: `csvdrop.date_formats[1]: "MM/YYYY": a date format needs a year (YYYY), a month (MM) and a day (DD)`},
		{Name: "time column", Mutate: func(c *csvdrop.Config) { c.TimeColumns = map[string]string{"occurred_at": "Time"} }, Want: ""},
		{Name: "time column of a field without a date", Mutate: func(c *csvdrop.Config) { c.TimeColumns = map[string]string{"reported_at": "Reported time"} },
			Want: "csvdrop.time_columns.reported_at: needs sources.datix.csv_columns to map reported_at to the column holding its date"},
		{Name: "time column of no date field", Mutate: func(c *csvdrop.Config) { c.TimeColumns = map[string]string{"description": "Time"} },
			Want: "csvdrop.time_columns.description: must be one of occurred_at, reported_at"},
	})
}

// TestFactoryTakesTheSourcesColumns: the registered settings hold no column map; the Factory
// takes the source's csv_columns from what the gateway shares.
func TestFactoryTakesTheSourcesColumns(t *testing.T) {
	m, ok := ingest.Lookup(csvdrop.Section)
	if !ok || m.Kind != csvdrop.Kind || !m.State {
		t.Fatalf("section %q: got %+v, %v, want the csvdrop module, keeping state", csvdrop.Section, m, ok)
	}
	s := m.New()
	s.(*csvdrop.Config).Dir, s.(*csvdrop.Config).Source = t.TempDir(), "datix"
	deps := ingest.Deps{Name: csvdrop.Kind, Settings: s, Publisher: adaptertest.NewStore(), Logger: zerolog.Nop(), State: adaptertest.NewState()}
	if _, err := m.Factory(deps); err == nil || !strings.Contains(err.Error(), "local_id") {
		t.Errorf("no columns anywhere: got %v, want an error about local_id", err)
	}
	deps.Shared = withColumns
	if _, err := m.Factory(deps); err != nil {
		t.Errorf("columns from the source: %v", err)
	}
}
