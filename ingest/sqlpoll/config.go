package sqlpoll

import (
	"strings"
	"time"

	"github.com/psgw/psgw/ingest"
)

// Kind is this adapter's registered kind: the adapter label of its metrics and its name on
// the status page. Section is its key in the config file.
const (
	Kind    = "sqlpoll"
	Section = "sqlpoll"
)

// Config is the adapter's settings: the sqlpoll section of the config file, whose keys are
// the yaml tags (each also PSGW_SQLPOLL_<KEY>; README, "Configuration"). Result columns are
// mapped by name: columns named like an incident field map to it, and
// sources.SOURCE.csv_columns may map others.
type Config struct {
	// Driver is the database/sql driver name; pgx (PostgreSQL) is the one built in.
	Driver string `yaml:"driver"`
	// DSN is the connection string; prefer DSNFile for one holding a password.
	DSN string `yaml:"dsn"`
	// DSNFile names a file holding the DSN. The config package reads it into DSN at
	// start-up (it takes precedence); the adapter never reads it.
	DSNFile string `yaml:"dsn_file"`
	// Source is the source system's name that rows are stored under.
	Source string `yaml:"source"`
	// Query is the polling query (see the package comment); empty disables the adapter.
	Query string `yaml:"query"`
	// CursorColumns are the result columns whose values, from the last row of a batch, become
	// the query's $1..$k next time, in ORDER BY order, e.g. [updated_at, local_id].
	CursorColumns []string `yaml:"cursor_columns"`
	// BatchSize is the query's LIMIT ($k+1).
	BatchSize int `yaml:"batch_size"`
	// PollInterval is the wait after a batch smaller than BatchSize.
	PollInterval time.Duration `yaml:"poll_interval"`
	// QueryTimeout bounds one query, connection included.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// MaxBatchBytes ends a batch early once its rows' cells hold this many bytes, so that a
	// batch of large rows is bounded in memory as well as in rows.
	MaxBatchBytes int `yaml:"max_batch_bytes"`
	// PublishConcurrency is how many rows of a batch are stored at once (one incident's rows
	// one after another); the cursor still moves only past rows stored.
	PublishConcurrency int `yaml:"publish_concurrency"`
	// RereadWindow is how far back a re-read pass starts: where the head cursor was that long
	// ago (and, for a time cursor, that long before its time; an hour more for a timestamp
	// without time zone). A row committed up to this late is found. 0 turns re-reading off.
	RereadWindow time.Duration `yaml:"reread_window"`
	// RereadInterval is how often a re-read pass runs, when the head is caught up.
	RereadInterval time.Duration `yaml:"reread_interval"`
	// ReconcileInterval is how often the whole query is read again from the start up to the
	// head, catching any row the cursor and the re-read window passed over. 0 turns it off.
	ReconcileInterval time.Duration `yaml:"reconcile_interval"`
	// AmendSameRevision makes a row whose content changed under the same revision an
	// amendment, for a source that does not always bump its revision column. Off, such a row
	// is a duplicate of the revision already stored.
	AmendSameRevision bool `yaml:"amend_same_revision"`

	// Columns maps an incident field (fhir.RecordFields) to a result column. Result columns
	// named like a field (local_id, occurred_at, patient.sex) map to it without an entry.
	// The Factory takes it from the source's csv_columns (ingest.Deps.Shared) when it is nil.
	Columns map[string]string `yaml:"-"`
	// PublishTimeout bounds the wait for durable storage of one row: queue.publish_timeout,
	// from ingest.Deps.Shared.
	PublishTimeout time.Duration `yaml:"-"`
	// StateKey names the cursor in the state store. Not a config key.
	StateKey string `yaml:"-"`
}

// Defaults returns the settings a key left out of the config file takes: the one place the
// adapter's defaults are written. PublishTimeout is left zero, so that the gateway's
// (queue.publish_timeout) applies.
func Defaults() Config {
	return Config{
		Driver:        "pgx",
		CursorColumns: []string{"updated_at", "local_id"},
		BatchSize:     500,
		PollInterval:  15 * time.Second,
		QueryTimeout:  30 * time.Second,
		StateKey:      "cursor",

		MaxBatchBytes:      16 << 20,
		PublishConcurrency: 16,
		RereadWindow:       15 * time.Minute,
		RereadInterval:     time.Minute,
		ReconcileInterval:  24 * time.Hour,
	}
}

// withDefaults fills the settings left zero from Defaults, for an adapter built in Go (tests)
// rather than from the config file, and the publish timeout of one built without a gateway
// with ingest.DefaultPublishTimeout. CursorColumns is not filled: the query's $1..$k depend on
// it, so it must be given with the query.
func (c Config) withDefaults() Config {
	d := Defaults()
	if c.Driver == "" {
		c.Driver = d.Driver
	}
	if c.BatchSize <= 0 {
		c.BatchSize = d.BatchSize
	}
	if c.PollInterval <= 0 {
		c.PollInterval = d.PollInterval
	}
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = d.QueryTimeout
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = ingest.DefaultPublishTimeout
	}
	if c.StateKey == "" {
		c.StateKey = d.StateKey
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = d.MaxBatchBytes
	}
	if c.PublishConcurrency <= 0 {
		c.PublishConcurrency = d.PublishConcurrency
	}
	if c.RereadInterval <= 0 {
		c.RereadInterval = d.RereadInterval
	}
	return c
}

// Enabled reports whether the section turns the adapter on: query is set.
func (c Config) Enabled() bool { return strings.TrimSpace(c.Query) != "" }

// Validate checks the settings of an enabled adapter, without I/O; each problem names its
// key.
func (c Config) Validate(shared ingest.Shared) error {
	if !c.Enabled() {
		return nil
	}
	p := ingest.NewProblems(Section)
	if c.DSN == "" {
		p.Add("dsn", "must be set (or sqlpoll.dsn_file) when sqlpoll.query is set")
	}
	if c.Driver != "pgx" {
		p.Add("driver", "must be pgx (the only driver built in), got %q", c.Driver)
	}
	if p.SourceName("source", c.Source) && len(shared.Sources) > 0 {
		if _, ok := shared.Sources[c.Source]; !ok {
			p.Add("source", "must be one of the configured sources, got %q", c.Source)
		}
	}
	if len(c.CursorColumns) == 0 {
		p.Add("cursor_columns", "must name at least one result column, e.g. [updated_at, local_id]")
	}
	if c.BatchSize < 1 || c.BatchSize > 100000 {
		p.Add("batch_size", "must be 1 to 100000, got %d", c.BatchSize)
	}
	p.Positive("poll_interval", c.PollInterval)
	p.Positive("query_timeout", c.QueryTimeout)
	if c.MaxBatchBytes < 1<<10 {
		p.Add("max_batch_bytes", "must be at least 1024, got %d", c.MaxBatchBytes)
	}
	if c.PublishConcurrency < 1 || c.PublishConcurrency > 256 {
		p.Add("publish_concurrency", "must be 1 to 256, got %d", c.PublishConcurrency)
	}
	if c.RereadWindow < 0 {
		p.Add("reread_window", "must not be negative (0 turns re-reading off), got %s", c.RereadWindow)
	}
	p.Positive("reread_interval", c.RereadInterval)
	if c.ReconcileInterval < 0 {
		p.Add("reconcile_interval", "must not be negative (0 turns reconciliation off), got %s", c.ReconcileInterval)
	}
	return p.Err()
}

var _ ingest.Settings = (*Config)(nil)
