package sqlpoll_test

import (
	"testing"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/ingest/sqlpoll"
)

// TestSettingsValidate: the sqlpoll section's checks, made only when query turns the adapter
// on, each problem naming its key.
func TestSettingsValidate(t *testing.T) {
	datix := ingest.Shared{Sources: map[string]ingest.Source{"datix": {}}}
	on := func() sqlpoll.Config {
		c := sqlpoll.Defaults()
		c.Query, c.DSN, c.Source = "SELECT 1", "postgres://x", "datix"
		return c
	}
	adaptertest.CheckSettings(t, on, datix, []adaptertest.SettingsCase[sqlpoll.Config]{
		{Name: "on", Mutate: func(*sqlpoll.Config) {}, Want: ""},
		{Name: "off", Mutate: func(c *sqlpoll.Config) { c.Query, c.DSN = "  ", "" }, Want: ""},
		{Name: "no dsn", Mutate: func(c *sqlpoll.Config) { c.DSN = "" }, Want: "sqlpoll.dsn: must be set (or sqlpoll.dsn_file) when sqlpoll.query is set"},
		{Name: "driver", Mutate: func(c *sqlpoll.Config) { c.Driver = "mysql" }, Want: `sqlpoll.driver: must be pgx (the only driver built in), got "mysql"`},
		{Name: "source not configured", Mutate: func(c *sqlpoll.Config) { c.Source = "ulysses" }, Want: `sqlpoll.source: must be one of the configured sources, got "ulysses"`},
		{Name: "bad source name", Mutate: func(c *sqlpoll.Config) { c.Source = "" }, Want: "sqlpoll.source: must match"},
		{Name: "no cursor", Mutate: func(c *sqlpoll.Config) { c.CursorColumns = nil }, Want: "sqlpoll.cursor_columns: must name at least one result column"},
		{Name: "batch size", Mutate: func(c *sqlpoll.Config) { c.BatchSize = 0 }, Want: "sqlpoll.batch_size: must be 1 to 100000"},
		{Name: "query timeout", Mutate: func(c *sqlpoll.Config) { c.QueryTimeout = 0 }, Want: "sqlpoll.query_timeout: must be a positive duration"},
	})
	// With no sources configured, any well-formed source name is accepted.
	adaptertest.CheckSettings(t, on, ingest.Shared{}, []adaptertest.SettingsCase[sqlpoll.Config]{
		{Name: "any source when none are configured", Mutate: func(c *sqlpoll.Config) { c.Source = "ulysses" }, Want: ""},
	})
	if m, ok := ingest.Lookup(sqlpoll.Section); !ok || m.Kind != sqlpoll.Kind || !m.State {
		t.Errorf("section %q: got %+v, %v, want the sqlpoll module, keeping state", sqlpoll.Section, m, ok)
	}
}
