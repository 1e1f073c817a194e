package csvdrop

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/psgw/psgw/ingest"
)

// Kind is this adapter's registered kind: the adapter label of its metrics and its name on
// the status page. Section is its key in the config file.
const (
	Kind    = "csvdrop"
	Section = "csvdrop"
)

// Config is the adapter's settings: the csvdrop section of the config file, whose keys are
// the yaml tags (each also PSGW_CSVDROP_<KEY>; README, "Configuration"). Rows are mapped by
// header name with sources.SOURCE.csv_columns, which must map local_id.
type Config struct {
	// Dir is the drop folder that is polled; empty disables the adapter.
	Dir string `yaml:"dir"`
	// Source is the source system's name that the rows are stored under; it must be in
	// sources, with csv_columns mapping local_id.
	Source string `yaml:"source"`
	// ProcessedDir and FailedDir receive finished and unreadable files. Default Dir/processed
	// and Dir/failed; they must be on Dir's file system (files are renamed, not copied).
	ProcessedDir string `yaml:"processed_dir"`
	FailedDir    string `yaml:"failed_dir"`
	// Pattern selects the files to take (filepath.Match on the base name).
	Pattern string `yaml:"pattern"`
	// PollInterval is how often the folder is listed.
	PollInterval time.Duration `yaml:"poll_interval"`
	// SettleTime is how long a file's size and modification time must stay unchanged before
	// it is read; 0 reads it at once. A NAME.done marker makes a file ready at once.
	SettleTime time.Duration `yaml:"settle_time"`
	// DoneMarker, when true, takes only files with a NAME.done marker beside them.
	DoneMarker bool `yaml:"done_marker"`
	// WatchTime is how long a file is watched after it moved to processed/: if it changes
	// (its writer was not done), it is moved back and read again.
	WatchTime time.Duration `yaml:"watch_time"`
	// Encoding is auto, utf-8 or windows-1252.
	Encoding string `yaml:"encoding"`
	// Delimiter is the one-character field separator.
	Delimiter string `yaml:"delimiter"`
	// MaxRowBytes caps one row; a longer row is skipped to its end and quarantined, and the
	// rows after it are read.
	MaxRowBytes int `yaml:"max_row_bytes"`
	// MaxFileBytes caps a file; a larger one fails without being read.
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// PublishConcurrency is how many rows are published in parallel; rows of one incident
	// are always published in file order.
	PublishConcurrency int `yaml:"publish_concurrency"`
	// DateFormats are how the export writes dates (occurred_at, reported_at,
	// patient.date_of_birth), tried in order after ISO 8601: "DD/MM/YYYY" for 14/03/2025,
	// "DD/MM/YYYY HH:mm" for a date-time, read on the UK wall clock (parseDateFormat).
	DateFormats []string `yaml:"date_formats"`
	// TimeColumns maps occurred_at or reported_at to a column holding its time of day
	// (09:30), joined to the date in the field's own column.
	TimeColumns map[string]string `yaml:"time_columns"`

	// Columns maps an incident field (fhir.RecordFields) to the header name holding it. The
	// Factory takes it from the source's csv_columns (ingest.Deps.Shared) when it is nil.
	Columns map[string]string `yaml:"-"`
	// BatchRows is how many rows are published between progress records. Not a config key.
	BatchRows int `yaml:"-"`
	// PublishTimeout bounds the wait for durable storage of one row: queue.publish_timeout,
	// from ingest.Deps.Shared.
	PublishTimeout time.Duration `yaml:"-"`
}

// Defaults returns the settings a key left out of the config file takes: the one place the
// adapter's defaults are written. ProcessedDir and FailedDir default to folders in Dir.
// PublishTimeout is left zero, so that the gateway's (queue.publish_timeout) applies.
func Defaults() Config {
	return Config{
		Pattern:            "*.csv",
		PollInterval:       10 * time.Second,
		SettleTime:         5 * time.Second,
		Encoding:           EncodingAuto,
		Delimiter:          ",",
		MaxRowBytes:        1 << 20,
		MaxFileBytes:       1 << 30,
		PublishConcurrency: 4,
		WatchTime:          time.Hour,
		BatchRows:          256,
	}
}

// withDefaults fills the settings left zero from Defaults, for an adapter built in Go (tests)
// rather than from the config file, and the publish timeout of one built without a gateway
// with ingest.DefaultPublishTimeout. A zero SettleTime stays zero: it means "at once".
func (c Config) withDefaults() Config {
	d := Defaults()
	if c.ProcessedDir == "" {
		c.ProcessedDir = filepath.Join(c.Dir, "processed")
	}
	if c.FailedDir == "" {
		c.FailedDir = filepath.Join(c.Dir, "failed")
	}
	if c.Pattern == "" {
		c.Pattern = d.Pattern
	}
	if c.PollInterval <= 0 {
		c.PollInterval = d.PollInterval
	}
	if c.SettleTime < 0 {
		c.SettleTime = 0
	}
	if c.Encoding == "" {
		c.Encoding = d.Encoding
	}
	if c.Delimiter == "" {
		c.Delimiter = d.Delimiter
	}
	if c.MaxRowBytes <= 0 {
		c.MaxRowBytes = d.MaxRowBytes
	}
	if c.MaxFileBytes <= 0 {
		c.MaxFileBytes = d.MaxFileBytes
	}
	if c.BatchRows <= 0 {
		c.BatchRows = d.BatchRows
	}
	if c.WatchTime <= 0 {
		c.WatchTime = d.WatchTime
	}
	if c.PublishConcurrency <= 0 {
		c.PublishConcurrency = d.PublishConcurrency
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = ingest.DefaultPublishTimeout
	}
	return c
}

// comma is the delimiter as the CSV reader takes it: its first character (Validate makes
// sure there is just one), or a comma.
func (c Config) comma() rune {
	for _, r := range c.Delimiter {
		return r
	}
	return ','
}

// Enabled reports whether the section turns the adapter on: dir is set.
func (c Config) Enabled() bool { return c.Dir != "" }

// Validate checks the settings of an enabled adapter, without I/O; each problem names its
// key.
func (c Config) Validate(shared ingest.Shared) error {
	if !c.Enabled() {
		return nil
	}
	p := ingest.NewProblems(Section)
	if p.SourceName("source", c.Source) && shared.Sources[c.Source].CSVColumns["local_id"] == "" {
		p.Add("source", "must name a source in sources whose csv_columns map local_id, got %q", c.Source)
	}
	if c.Pattern == "" {
		p.Add("pattern", "must be set, e.g. *.csv")
	} else if _, err := filepath.Match(c.Pattern, "x"); err != nil {
		p.Add("pattern", "is not a valid pattern: %v", err)
	}
	p.Positive("poll_interval", c.PollInterval)
	if c.SettleTime < 0 {
		p.Add("settle_time", "must not be negative, got %s", c.SettleTime)
	}
	p.Positive("watch_time", c.WatchTime)
	switch c.Encoding {
	case EncodingAuto, EncodingUTF8, EncodingWindows1252:
	default:
		p.Add("encoding", "must be auto, utf-8 or windows-1252, got %q", c.Encoding)
	}
	if r := []rune(c.Delimiter); len(r) != 1 || r[0] == '"' || r[0] == '\r' || r[0] == '\n' || r[0] == utf8.RuneError {
		p.Add("delimiter", "must be one character other than a quote or line break, got %q", c.Delimiter)
	}
	if c.MaxRowBytes < 1024 || c.MaxRowBytes > ingest.MaxRecordLimit {
		p.Add("max_row_bytes", "must be 1024 to %d, got %d", ingest.MaxRecordLimit, c.MaxRowBytes)
	}
	if c.MaxFileBytes < 1024 {
		p.Add("max_file_bytes", "must be at least 1024, got %d", c.MaxFileBytes)
	}
	if c.PublishConcurrency < 1 || c.PublishConcurrency > 64 {
		p.Add("publish_concurrency", "must be 1 to 64, got %d", c.PublishConcurrency)
	}
	for i, f := range c.DateFormats {
		if _, err := parseDateFormat(f); err != nil {
			p.Add(fmt.Sprintf("date_formats[%d]", i), "%v", err)
		}
	}
	columns := shared.Sources[c.Source].CSVColumns
	for _, field := range sortedKeys(c.TimeColumns) {
		switch {
		case !slices.Contains(timeFields, field):
			p.Add("time_columns."+field, "must be one of %s", strings.Join(timeFields, ", "))
		case strings.TrimSpace(c.TimeColumns[field]) == "":
			p.Add("time_columns."+field, "must name a column")
		case columns[field] == "":
			p.Add("time_columns."+field, "needs sources.%s.csv_columns to map %s to the column holding its date", c.Source, field)
		}
	}
	return p.Err()
}

// MaxRecordBytes is the longest row the adapter stores (ingest.RecordLimiter).
func (c Config) MaxRecordBytes() int64 { return int64(c.MaxRowBytes) }

var (
	_ ingest.Settings      = (*Config)(nil)
	_ ingest.RecordLimiter = (*Config)(nil)
)

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
