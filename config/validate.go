package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
)

// sourceName is the rule for a source system's name (docs/incident.schema.json, source).
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
	checkAddr(bad, "http.addr", c.HTTP.Addr)
	c.validateOps(bad)
	if n := c.Insights.SuppressionThreshold; n < 0 || n > 1000 {
		bad("insights.suppression_threshold", "must be from 0 (no suppression) to 1000, got %d", n)
	}
	positive(bad, "http.read_timeout", c.HTTP.ReadTimeout)
	// Each adapter checks its own section (ingest.Settings.Validate).
	errs = append(errs, c.validateAdapters()...)

	if u := c.Queue.NATSURL; u != "" {
		for _, one := range strings.Split(u, ",") {
			p, err := url.Parse(strings.TrimSpace(one))
			if err != nil || p.Host == "" || (p.Scheme != "nats" && p.Scheme != "tls" && p.Scheme != "ws" && p.Scheme != "wss") {
				bad("queue.nats_url", "must be nats://host:port (comma-separated for a cluster), got %q", RedactCredentials(one))
			}
		}
	}
	if a := c.Queue.AdminAddr; a != "" {
		switch {
		case c.Queue.NATSURL != "":
			bad("queue.admin_addr", "is for the embedded server only; an external cluster has its own listeners")
		case !loopbackAddr(a):
			bad("queue.admin_addr", "must be a loopback address such as 127.0.0.1:4222 (the store holds patient data), got %q", a)
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
		if msg := c.National.baseURLProblem(); msg != "" {
			bad("national.base_url", "%s", msg)
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
	switch c.Mapping.AgePrecision {
	case "exact", "bracket":
	default:
		bad("mapping.age_precision", "must be exact or bracket, got %q", c.Mapping.AgePrecision)
	}
	for i, d := range c.Mapping.PlaceholderBirthDates {
		if _, err := fhir.ParseDate(d); err != nil || len(d) != len(time.DateOnly) {
			bad(fmt.Sprintf("mapping.placeholder_birth_dates[%d]", i), "must be a date YYYY-MM-DD, got %q", d)
		}
	}
	checkFallbacks(bad, "mapping.fallbacks", c.Mapping.Fallbacks, false)
	maps := fhir.SourceCodeMaps{}
	for name, src := range c.Sources {
		if !sourceName.MatchString(name) {
			bad("sources."+name, "source names must match [a-z0-9_-]{1,64}")
		}
		maps[name] = src.CodeMaps
		checkFallbacks(bad, "sources."+name+".fallbacks", src.Fallbacks, true)
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
	return redactedError(errors.Join(errs...))
}

func checkFallbacks(bad func(string, string, ...any), key, v string, emptyOK bool) {
	switch {
	case v == FallbacksWarn, v == FallbacksQuarantine, v == "" && emptyOK:
	default:
		bad(key, "must be %s or %s, got %q", FallbacksWarn, FallbacksQuarantine, v)
	}
}

// baseURLProblem says what is wrong with national.base_url, or "". It never quotes the URL
// whole: a URL may carry a password.
func (n NationalConfig) baseURLProblem() string {
	p, err := url.Parse(n.BaseURL)
	switch {
	case err != nil || p.Host == "" || p.Opaque != "":
		return "must be an absolute URL such as https://host"
	case p.User != nil:
		return "must not hold a user name or password (user:password@host): the subscription key goes in national.subscription_key_file"
	case p.Scheme != "https" && p.Scheme != "http":
		return fmt.Sprintf("must use https, got %q", RedactCredentials(p.Scheme))
	case p.Scheme == "http" && !n.AllowHTTP && !loopbackHost(p.Hostname()):
		return "must use https: plain http is taken only to a loopback host (127.0.0.1, ::1, localhost), such as a simulator on this machine, or with national.allow_http for a private test network"
	case strings.Trim(p.Path, "/") != "" || p.RawQuery != "" || p.Fragment != "":
		return fmt.Sprintf("must be a host with no path or query, got %q", RedactCredentials(n.BaseURL))
	}
	return ""
}

// loopbackHost reports whether host names this machine: localhost, or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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

func checkAddr(bad func(string, string, ...any), key, addr string) {
	if addr == "" {
		bad(key, "must be set, e.g. 127.0.0.1:8080")
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		bad(key, "must be host:port with a port from 0 to 65535, got %q", addr)
	}
}

// MaxRecordBytes is the largest source record any enabled adapter accepts
// (ingest.RecordLimiter): the queue must be able to store at least that much in one message,
// or a record the adapter accepted would be refused by the store as if it were merely
// unavailable, and retried for ever.
func (c *Config) MaxRecordBytes() int64 {
	var n int64
	for _, a := range c.EnabledAdapters() {
		if l, ok := a.Settings.(ingest.RecordLimiter); ok {
			n = max(n, l.MaxRecordBytes())
		}
	}
	return n
}
