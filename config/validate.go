package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/psgw/psgw/fhir"
)

// sourceName is the rule for a source system's name (CONTRACT §2).
var sourceName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// Validate checks every setting and returns all problems at once, each naming its key. It does
// no I/O.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(c.DataDir) == "" && c.Queue.NATSURL == "" {
		bad("data_dir", "must be set when the embedded NATS server is used")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		bad("log.format", "must be json or console, got %q", c.Log.Format)
	}
	checkAddr(bad, "http.addr", c.HTTP.Addr, false)
	checkAddr(bad, "mllp.addr", c.MLLP.Addr, true)
	c.validateMLLP(bad)
	c.validatePull(bad)
	c.validateOps(bad)
	if c.HTTP.MaxBodyBytes < 1024 || c.HTTP.MaxBodyBytes > MaxRecordLimit {
		bad("http.max_body_bytes", "must be 1024 to %d, got %d", MaxRecordLimit, c.HTTP.MaxBodyBytes)
	}
	for i, t := range c.HTTP.IngestTokens {
		if len(t) < 16 {
			bad(fmt.Sprintf("http.ingest_tokens[%d]", i), "must be at least 16 characters")
		}
	}
	positive(bad, "http.read_timeout", c.HTTP.ReadTimeout)

	if u := c.Queue.NATSURL; u != "" {
		for _, one := range strings.Split(u, ",") {
			p, err := url.Parse(strings.TrimSpace(one))
			if err != nil || p.Host == "" || (p.Scheme != "nats" && p.Scheme != "tls" && p.Scheme != "ws" && p.Scheme != "wss") {
				bad("queue.nats_url", "must be nats://host:port (comma-separated for a cluster), got %q", one)
			}
		}
	}
	if c.Queue.Replicas < 1 || c.Queue.Replicas > 5 {
		bad("queue.replicas", "must be 1 to 5, got %d", c.Queue.Replicas)
	}
	if c.Queue.NATSURL == "" && c.Queue.Replicas != 1 {
		bad("queue.replicas", "must be 1 with the embedded server, got %d", c.Queue.Replicas)
	}
	for key, v := range map[string]int64{
		"queue.max_store_bytes":  c.Queue.MaxStoreBytes,
		"queue.max_memory_bytes": c.Queue.MaxMemoryBytes,
		"queue.raw_max_bytes":    c.Queue.RawMaxBytes,
		"queue.outbox_max_bytes": c.Queue.OutboxMaxBytes,
	} {
		if v < 1<<20 {
			bad(key, "must be at least 1 MiB (1048576), got %d", v)
		}
	}
	if c.Queue.NATSURL == "" && c.Queue.RawMaxBytes+c.Queue.OutboxMaxBytes > c.Queue.MaxStoreBytes {
		bad("queue.max_store_bytes", "must hold raw_max_bytes plus outbox_max_bytes (%d), got %d",
			c.Queue.RawMaxBytes+c.Queue.OutboxMaxBytes, c.Queue.MaxStoreBytes)
	}
	positive(bad, "queue.raw_max_age", c.Queue.RawMaxAge)
	switch {
	case c.Queue.ADTMaxAge < time.Minute:
		bad("queue.adt_max_age", "must be at least 1m, got %s", c.Queue.ADTMaxAge)
	case c.Queue.RawMaxAge > 0 && c.Queue.ADTMaxAge > c.Queue.RawMaxAge:
		bad("queue.adt_max_age", "must not exceed queue.raw_max_age")
	}
	if c.Queue.DuplicateWindow < time.Second {
		bad("queue.duplicate_window", "must be at least 1s, got %s", c.Queue.DuplicateWindow)
	}
	if c.Queue.RawMaxAge > 0 && c.Queue.DuplicateWindow > c.Queue.RawMaxAge {
		bad("queue.duplicate_window", "must not exceed queue.raw_max_age")
	}
	if _, err := SyncInterval(c.Queue.Sync); err != nil {
		bad("queue.sync", "%v", err)
	}
	positive(bad, "queue.publish_timeout", c.Queue.PublishTimeout)

	if u := c.National.BaseURL; u != "" {
		p, err := url.Parse(u)
		switch {
		case err != nil || p.Host == "":
			bad("national.base_url", "must be an absolute URL such as https://host, got %q", u)
		case p.Scheme != "https" && p.Scheme != "http":
			bad("national.base_url", "must use https (or http for a local simulator), got %q", p.Scheme)
		case strings.Trim(p.Path, "/") != "" || p.RawQuery != "":
			bad("national.base_url", "must be a host with no path or query, got %q", u)
		}
		if c.National.SubscriptionKey == "" {
			bad("national.subscription_key", "must be set (or national.subscription_key_file) when national.base_url is set")
		}
	}
	if v := c.National.TaxonomyVersion; v != 5 && v != 6 {
		bad("national.taxonomy_version", "must be 5 or 6, got %d", v)
	}
	positive(bad, "national.timeout", c.National.Timeout)
	if c.National.Concurrency < 1 || c.National.Concurrency > 256 {
		bad("national.concurrency", "must be 1 to 256, got %d", c.National.Concurrency)
	}
	if c.National.MaxAttempts < 1 {
		bad("national.max_attempts", "must be at least 1, got %d", c.National.MaxAttempts)
	}
	positive(bad, "national.max_age", c.National.MaxAge)
	positive(bad, "national.backoff_initial", c.National.BackoffInitial)
	if c.National.BackoffMax < c.National.BackoffInitial {
		bad("national.backoff_max", "must be at least national.backoff_initial")
	}
	positive(bad, "national.auth_probe_interval", c.National.AuthProbeInterval)
	switch c.National.OnAmbiguousPost {
	case "hold", "retry":
	default:
		bad("national.on_ambiguous_post", "must be hold or retry, got %q", c.National.OnAmbiguousPost)
	}
	switch c.Mapping.AgeEncoding {
	case "lfpse372", "days":
	default:
		bad("mapping.age_encoding", "must be lfpse372 or days, got %q", c.Mapping.AgeEncoding)
	}
	maps := fhir.SourceCodeMaps{}
	for name, src := range c.Sources {
		if !sourceName.MatchString(name) {
			bad("sources."+name, "source names must match [a-z0-9_-]{1,64}")
		}
		maps[name] = src.CodeMaps
		for field, col := range src.CSVColumns {
			if !slices.Contains(fhir.RecordFields, field) {
				bad("sources."+name+".csv_columns."+field, "is not a field a CSV column can fill")
			} else if strings.TrimSpace(col) == "" {
				bad("sources."+name+".csv_columns."+field, "must name a header column")
			}
		}
	}
	// Code maps are checked against the taxonomy now, so that a typo is found at start-up
	// rather than by the first incident it quarantines.
	for _, p := range fhir.CheckCodeMaps(maps) {
		bad(p.Field, "%s", p.Message)
	}
	return errors.Join(errs...)
}

// validateMLLP checks the HL7 v2 listener's settings.
func (c *Config) validateMLLP(bad func(string, string, ...any)) {
	m := c.MLLP
	if !sourceName.MatchString(m.Source) {
		bad("mllp.source", "must match [a-z0-9_-]{1,64}, got %q", m.Source)
	}
	if m.MaxMessageBytes < 1024 || m.MaxMessageBytes > MaxRecordLimit {
		bad("mllp.max_message_bytes", "must be 1024 to %d, got %d", MaxRecordLimit, m.MaxMessageBytes)
	}
	positive(bad, "mllp.read_timeout", m.ReadTimeout)
	positive(bad, "mllp.idle_timeout", m.IdleTimeout)
	positive(bad, "mllp.first_message_timeout", m.FirstMessageTimeout)
	if !HL7Charsets[strings.ToUpper(strings.TrimSpace(m.DefaultCharset))] {
		bad("mllp.default_charset", "must be ASCII, 8859/1 or UNICODE UTF-8 (or ISO IR6, ISO IR100, ISO IR192, ISO-8859-1, Latin-1, UTF-8), got %q", m.DefaultCharset)
	}
	positive(bad, "mllp.publish_timeout", m.PublishTimeout)
	if m.DemographicsMaxAge < time.Hour {
		bad("mllp.demographics_max_age", "must be at least 1h, got %s", m.DemographicsMaxAge)
	}
	if m.EnrichWait < 0 {
		bad("mllp.enrich_wait", "must not be negative, got %s", m.EnrichWait)
	}
	if m.MaxConnections < 1 || m.MaxConnections > 10000 {
		bad("mllp.max_connections", "must be 1 to 10000, got %d", m.MaxConnections)
	}
	if (m.TLSCertFile == "") != (m.TLSKeyFile == "") {
		bad("mllp.tls_cert_file", "mllp.tls_cert_file and mllp.tls_key_file must be set together")
	}
}

// SyncInterval parses queue.sync: "always" gives 0 and true; a duration gives that interval.
func SyncInterval(s string) (time.Duration, error) {
	if s == "always" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("must be always or a positive duration such as 1s, got %q", s)
	}
	return d, nil
}

func positive(bad func(string, string, ...any), key string, d time.Duration) {
	if d <= 0 {
		bad(key, "must be a positive duration, got %s", d)
	}
}

func checkAddr(bad func(string, string, ...any), key, addr string, optional bool) {
	if addr == "" {
		if !optional {
			bad(key, "must be set, e.g. 127.0.0.1:8080")
		}
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		bad(key, "must be host:port with a port from 0 to 65535, got %q", addr)
	}
}

// validatePull checks the CSV drop-folder and SQL polling adapters' settings.
func (c *Config) validatePull(bad func(string, string, ...any)) {
	if d := c.CSVDrop; d.Dir != "" {
		if !sourceName.MatchString(d.Source) {
			bad("csvdrop.source", "must match [a-z0-9_-]{1,64}, got %q", d.Source)
		} else if c.Sources[d.Source].CSVColumns["local_id"] == "" {
			bad("csvdrop.source", "must name a source in sources whose csv_columns map local_id, got %q", d.Source)
		}
		if d.Pattern == "" {
			bad("csvdrop.pattern", "must be set, e.g. *.csv")
		} else if _, err := filepath.Match(d.Pattern, "x"); err != nil {
			bad("csvdrop.pattern", "is not a valid pattern: %v", err)
		}
		positive(bad, "csvdrop.poll_interval", d.PollInterval)
		if d.SettleTime < 0 {
			bad("csvdrop.settle_time", "must not be negative, got %s", d.SettleTime)
		}
		switch d.Encoding {
		case "auto", "utf-8", "windows-1252":
		default:
			bad("csvdrop.encoding", "must be auto, utf-8 or windows-1252, got %q", d.Encoding)
		}
		if r := []rune(d.Delimiter); len(r) != 1 || r[0] == '"' || r[0] == '\r' || r[0] == '\n' || r[0] == utf8.RuneError {
			bad("csvdrop.delimiter", "must be one character other than a quote or line break, got %q", d.Delimiter)
		}
		if d.MaxRowBytes < 1024 || d.MaxRowBytes > MaxRecordLimit {
			bad("csvdrop.max_row_bytes", "must be 1024 to %d, got %d", MaxRecordLimit, d.MaxRowBytes)
		}
		if d.MaxFileBytes < 1024 {
			bad("csvdrop.max_file_bytes", "must be at least 1024, got %d", d.MaxFileBytes)
		}
		if d.PublishConcurrency < 1 || d.PublishConcurrency > 64 {
			bad("csvdrop.publish_concurrency", "must be 1 to 64, got %d", d.PublishConcurrency)
		}
	}
	if q := c.SQLPoll; strings.TrimSpace(q.Query) != "" {
		if q.DSN == "" {
			bad("sqlpoll.dsn", "must be set (or sqlpoll.dsn_file) when sqlpoll.query is set")
		}
		if q.Driver != "pgx" {
			bad("sqlpoll.driver", "must be pgx (the only driver built in), got %q", q.Driver)
		}
		if !sourceName.MatchString(q.Source) {
			bad("sqlpoll.source", "must match [a-z0-9_-]{1,64}, got %q", q.Source)
		} else if len(c.Sources) > 0 {
			if _, ok := c.Sources[q.Source]; !ok {
				bad("sqlpoll.source", "must be one of the configured sources, got %q", q.Source)
			}
		}
		if len(q.CursorColumns) == 0 {
			bad("sqlpoll.cursor_columns", "must name at least one result column, e.g. [updated_at, local_id]")
		}
		if q.BatchSize < 1 || q.BatchSize > 100000 {
			bad("sqlpoll.batch_size", "must be 1 to 100000, got %d", q.BatchSize)
		}
		positive(bad, "sqlpoll.poll_interval", q.PollInterval)
		positive(bad, "sqlpoll.query_timeout", q.QueryTimeout)
	}
}

// MaxRecordLimit bounds every per-record size limit (http.max_body_bytes,
// mllp.max_message_bytes, csvdrop.max_row_bytes): a record and the resource mapped from it
// must fit in one NATS message, and NATS refuses payloads over 64 MiB.
const MaxRecordLimit = 16 << 20

// MaxRecordBytes is the largest source record any configured adapter accepts: the queue must
// be able to store at least that much in one message, or a record the adapter accepted would
// be refused by the store as if it were merely unavailable, and retried for ever.
func (c *Config) MaxRecordBytes() int64 {
	n := c.HTTP.MaxBodyBytes
	if c.MLLP.Addr != "" {
		n = max(n, int64(c.MLLP.MaxMessageBytes))
	}
	if c.CSVDrop.Dir != "" {
		n = max(n, int64(c.CSVDrop.MaxRowBytes))
	}
	return n
}

// HL7Charsets are the MSH-18 character set names the MLLP listener reads, upper-cased: the
// HL7 table 0211 names and their everyday aliases (ingest/hl7mllp/hl7.NormalizeCharset; a
// test keeps the two lists the same).
var HL7Charsets = map[string]bool{
	"ASCII": true, "US-ASCII": true, "ISO IR6": true,
	"8859/1": true, "ISO IR100": true, "ISO-8859-1": true, "ISO8859-1": true, "LATIN-1": true, "LATIN1": true,
	"UNICODE UTF-8": true, "UTF-8": true, "UTF8": true, "ISO IR192": true,
}
