// Package config holds psgw's typed configuration: one YAML file, decoded strictly, with
// PSGW_<SECTION>_<KEY> environment overrides and *_file secrets. Defaults live in Default and
// nowhere else; Validate checks values without doing any I/O.
package config

import (
	"time"
)

// Config is the whole gateway configuration. The YAML keys are the snake_case tags; the
// environment variable for a key is PSGW_ followed by its dotted path in upper case with dots
// turned into underscores (national.base_url → PSGW_NATIONAL_BASE_URL).
type Config struct {
	// DataDir is where the embedded JetStream keeps its files.
	DataDir  string         `yaml:"data_dir"`
	Log      LogConfig      `yaml:"log"`
	HTTP     HTTPConfig     `yaml:"http"`
	MLLP     MLLPConfig     `yaml:"mllp"`
	Queue    QueueConfig    `yaml:"queue"`
	National NationalConfig `yaml:"national"`
	Mapping  MappingConfig  `yaml:"mapping"`
	// CSVDrop is the CSV drop-folder adapter; off while csvdrop.dir is empty.
	CSVDrop CSVDropConfig `yaml:"csvdrop"`
	// SQLPoll is the SQL polling adapter; off while sqlpoll.query is empty.
	SQLPoll SQLPollConfig `yaml:"sqlpoll"`
	Ops     OpsConfig     `yaml:"ops"`
	// Sources, when not empty, is the list of source systems allowed to send incidents, with
	// their code maps. With none configured any well-formed source name is accepted.
	Sources map[string]SourceConfig `yaml:"sources"`
}

// LogConfig sets the structured log output.
type LogConfig struct {
	// Level is one of debug, info, warn, error.
	Level string `yaml:"level"`
	// Format is json (for log shippers) or console (for people).
	Format string `yaml:"format"`
}

// HTTPConfig is the HTTP API, status page and metrics listener.
type HTTPConfig struct {
	Addr string `yaml:"addr"`
	// MaxBodyBytes caps an ingest request body; larger bodies get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// IngestTokens, when set, are the bearer tokens accepted on POST /api/v1/incidents. Several
	// may be given so that a token can be rotated without downtime.
	IngestTokens []string `yaml:"ingest_tokens"`
	// IngestTokensFile names a file holding one token per line; it is read at start-up and its
	// tokens are added to IngestTokens.
	IngestTokensFile string `yaml:"ingest_tokens_file"`
	// ReadTimeout bounds how long a client may take to send a request.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// TLSCertFile and TLSKeyFile, both set, make the whole HTTP listener (ingest, API, status
	// page, metrics) speak TLS.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
}

// OpsConfig is access control for the status page, the operations API and its actions. With
// no viewer or operator token configured, access control is off: everyone is "anonymous" with
// the operator role, which suits a laptop demo on 127.0.0.1 and nothing else.
type OpsConfig struct {
	// ViewerTokens are "name:token" pairs that may read the page and the API.
	ViewerTokens []string `yaml:"viewer_tokens"`
	// OperatorTokens are "name:token" pairs that may also replay, resolve and mark reviewed.
	OperatorTokens []string `yaml:"operator_tokens"`
	// TokensFile names a file with one "role name token" line per person (role is viewer or
	// operator; # starts a comment); read at start-up and added to the lists above.
	TokensFile string `yaml:"tokens_file"`
	// ProtectMetrics and ProtectHealth make /metrics and /healthz, /readyz need a viewer
	// token too. Off by default so that Prometheus and load balancers need no secret.
	ProtectMetrics bool `yaml:"protect_metrics"`
	ProtectHealth  bool `yaml:"protect_health"`
	// SessionTTL is how long a browser login lasts.
	SessionTTL time.Duration `yaml:"session_ttl"`
}

// MLLPConfig is the HL7 v2 MLLP listener for the EPR feed (CONTRACT §3). Its ADT messages keep
// the demographics store that enriches incidents.
type MLLPConfig struct {
	// Addr is the listen address; empty disables the listener and the demographics store.
	Addr string `yaml:"addr"`
	// Source is the name the EPR feed's records are stored under; incidents' local patient
	// ids are looked up in this source's id space.
	Source string `yaml:"source"`
	// MaxMessageBytes caps one HL7 message; a larger frame gets AR.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// ReadTimeout bounds how long a sender may take to send one message once it has started.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout closes a connection on which no message starts for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// FirstMessageTimeout closes a new connection that has sent nothing for this long, so
	// that peers which connect and stay silent cannot hold every connection slot.
	FirstMessageTimeout time.Duration `yaml:"first_message_timeout"`
	// DefaultCharset is the character set of a message whose MSH-18 is empty: "8859/1" (any
	// byte is valid; valid UTF-8 is still read as UTF-8), or "ASCII" as HL7 v2 says, or
	// "UNICODE UTF-8". A byte that is not valid in the message's character set gets AR.
	DefaultCharset string `yaml:"default_charset"`
	// MaxConnections caps open connections; at the cap the connection idle longest makes room.
	MaxConnections int `yaml:"max_connections"`
	// TLSCertFile and TLSKeyFile, both set, make the listener speak TLS.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// PublishTimeout bounds the wait for durable storage before answering AE.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// EnrichWait bounds how long mapping an incident waits for the demographics store to
	// catch up with ADT messages received before it.
	EnrichWait time.Duration `yaml:"enrich_wait"`
	// DemographicsMaxAge is how long a patient's demographics are kept after the last ADT
	// message about them. The store holds data about every patient the EPR has ever sent,
	// so it is bounded in time like any other personal data (and in memory: JetStream
	// indexes every key).
	DemographicsMaxAge time.Duration `yaml:"demographics_max_age"`
}

// QueueConfig sets up JetStream: embedded by default, or an external NATS cluster.
type QueueConfig struct {
	// NATSURL is empty for the embedded server, else the URL(s) of an external NATS cluster.
	NATSURL string `yaml:"nats_url"`
	// NATSCredsFile is a NATS credentials file for an external cluster.
	NATSCredsFile string `yaml:"nats_creds_file"`
	// Replicas is the stream replica count on an external cluster (1 when embedded).
	Replicas int `yaml:"replicas"`
	// MaxStoreBytes is the embedded server's file storage limit.
	MaxStoreBytes int64 `yaml:"max_store_bytes"`
	// MaxMemoryBytes is the embedded server's memory storage limit.
	MaxMemoryBytes int64 `yaml:"max_memory_bytes"`
	// RawMaxBytes caps the stream of raw source records; when full, ingest is refused (503)
	// rather than anything stored being discarded.
	RawMaxBytes int64 `yaml:"raw_max_bytes"`
	// RawMaxAge is how long raw source records are kept for replay.
	RawMaxAge time.Duration `yaml:"raw_max_age"`
	// ADTMaxAge is how long an EPR's ADT messages stay in the raw stream once received. They
	// are applied to the demographics store at once and never replayed, and they carry
	// names and addresses, so they are kept only long enough to outlast an outage of the
	// stage that applies them; kept for RawMaxAge, a busy ADT feed would fill the raw stream
	// and ingest would be refused.
	ADTMaxAge time.Duration `yaml:"adt_max_age"`
	// OutboxMaxBytes caps the stream of mapped resources awaiting delivery.
	OutboxMaxBytes int64 `yaml:"outbox_max_bytes"`
	// DuplicateWindow is how long JetStream remembers message ids to drop re-sent records.
	// Re-sends older than this are still caught by the delivery ledger.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// Sync is the embedded server's fsync policy: "always" (fsync every write) or a duration
	// such as "2m" (fsync on that interval; the server's default).
	Sync string `yaml:"sync"`
	// PublishTimeout bounds how long ingest waits for a PubAck before answering 503.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
}

// NationalConfig is the national service (LFPSE) and how psgw delivers to it.
type NationalConfig struct {
	// BaseURL is the API host, e.g. https://host, with no path. Empty: events are held.
	BaseURL string `yaml:"base_url"`
	// SubscriptionKey is the APIM key sent as Ocp-Apim-Subscription-Key.
	SubscriptionKey string `yaml:"subscription_key"`
	// SubscriptionKeyFile names a file holding the key; it takes precedence when set.
	SubscriptionKeyFile string `yaml:"subscription_key_file"`
	// TaxonomyVersion is 5 or 6.
	TaxonomyVersion int `yaml:"taxonomy_version"`
	// Timeout bounds one request to the national service.
	Timeout time.Duration `yaml:"timeout"`
	// Concurrency is how many incidents are delivered in parallel. One incident is never sent
	// concurrently with itself.
	Concurrency int `yaml:"concurrency"`
	// MaxAttempts is how many sends an incident gets before it is marked failed.
	MaxAttempts int `yaml:"max_attempts"`
	// MaxAge is how long an incident may keep retrying before it is marked failed.
	MaxAge time.Duration `yaml:"max_age"`
	// BackoffInitial and BackoffMax bound the exponential backoff with full jitter.
	BackoffInitial time.Duration `yaml:"backoff_initial"`
	BackoffMax     time.Duration `yaml:"backoff_max"`
	// OnAmbiguousPost is what to do when a POST was sent and no answer came back: "hold" puts
	// the incident in state unknown for an operator; "retry" resends it and flags it as a
	// possible duplicate.
	OnAmbiguousPost string `yaml:"on_ambiguous_post"`
	// AuthProbeInterval is how often paused delivery checks whether the key works again,
	// and the longest wait between probes of a national outage.
	AuthProbeInterval time.Duration `yaml:"auth_probe_interval"`
}

// MappingConfig tunes the LFPSE mapping.
type MappingConfig struct {
	// AgeEncoding is how AgeAtTimeOfIncidentDays is computed: "lfpse372" (years*372 +
	// months*31 + days, as LFPSE samples suggest; unconfirmed) or "days" (true days).
	AgeEncoding string `yaml:"age_encoding"`
}

// SourceConfig describes one source system.
type SourceConfig struct {
	// CodeMaps maps a canonical field (e.g. "reporter.role"; docs/mapping.md lists them) to
	// local value → LFPSE code, per taxonomy version ("5", "6", or "*" for both; a version's
	// own entry wins). A local value with no entry that is not itself an LFPSE code or label
	// goes to the field's "Other" answer, or the incident is quarantined.
	CodeMaps map[string]map[string]map[string]string `yaml:"code_maps"`
	// CSVColumns maps an incident field (e.g. "patient.date_of_birth"; fhir.RecordFields) to
	// the header name of the CSV column that holds it, for CSV records of this source.
	CSVColumns map[string]string `yaml:"csv_columns"`
}

// CSVDropConfig is the CSV drop-folder adapter (ingest/csvdrop). Rows are mapped by header
// name with sources.SOURCE.csv_columns, which must map local_id.
type CSVDropConfig struct {
	// Dir is the folder polled for exports; empty disables the adapter.
	Dir string `yaml:"dir"`
	// Source is the source system the rows are stored under; it must be in sources.
	Source string `yaml:"source"`
	// ProcessedDir and FailedDir receive finished and unreadable files (default DIR/processed
	// and DIR/failed; same file system as dir).
	ProcessedDir string `yaml:"processed_dir"`
	FailedDir    string `yaml:"failed_dir"`
	// Pattern selects files by base name (filepath.Match).
	Pattern string `yaml:"pattern"`
	// PollInterval is how often the folder is listed.
	PollInterval time.Duration `yaml:"poll_interval"`
	// SettleTime is how long size and mtime must stay unchanged before a file is read.
	SettleTime time.Duration `yaml:"settle_time"`
	// DoneMarker, when true, takes only files with a NAME.done marker beside them.
	DoneMarker bool `yaml:"done_marker"`
	// Encoding is auto, utf-8 or windows-1252.
	Encoding string `yaml:"encoding"`
	// Delimiter is the one-character field separator.
	Delimiter string `yaml:"delimiter"`
	// MaxRowBytes caps one row; MaxFileBytes caps one file.
	MaxRowBytes  int   `yaml:"max_row_bytes"`
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// PublishConcurrency is how many rows are stored in parallel (one incident's in order).
	PublishConcurrency int `yaml:"publish_concurrency"`
}

// SQLPollConfig is the SQL polling adapter (ingest/sqlpoll). Result columns are mapped by
// name: columns named like an incident field map to it, and sources.SOURCE.csv_columns may
// map others.
type SQLPollConfig struct {
	// Driver is the database/sql driver; pgx (PostgreSQL) is the tested one.
	Driver string `yaml:"driver"`
	// DSN is the connection string; prefer DSNFile for one holding a password.
	DSN string `yaml:"dsn"`
	// DSNFile names a file holding the DSN; it takes precedence when set.
	DSNFile string `yaml:"dsn_file"`
	// Source is the source system the rows are stored under.
	Source string `yaml:"source"`
	// Query is the polling query; empty disables the adapter. It gets the cursor values as
	// $1..$k (NULL at first) and the batch size as $k+1 (docs/adapters.md).
	Query string `yaml:"query"`
	// CursorColumns are the result columns that make the cursor, in ORDER BY order.
	CursorColumns []string `yaml:"cursor_columns"`
	// BatchSize is the rows per query.
	BatchSize int `yaml:"batch_size"`
	// PollInterval is the wait after a batch that was not full.
	PollInterval time.Duration `yaml:"poll_interval"`
	// QueryTimeout bounds one query, connecting included.
	QueryTimeout time.Duration `yaml:"query_timeout"`
}

// Default returns the configuration used when no file or variable says otherwise.
func Default() Config {
	return Config{
		DataDir: "./data",
		Log:     LogConfig{Level: "info", Format: "json"},
		HTTP: HTTPConfig{
			Addr:         "127.0.0.1:8080",
			MaxBodyBytes: 1 << 20,
			ReadTimeout:  30 * time.Second,
		},
		MLLP: MLLPConfig{
			Addr:                "127.0.0.1:2575",
			Source:              "epr",
			MaxMessageBytes:     1 << 20,
			ReadTimeout:         30 * time.Second,
			IdleTimeout:         10 * time.Minute,
			FirstMessageTimeout: 30 * time.Second,
			// Not HL7's ASCII: many EPRs send ISO 8859-1 undeclared, and an AR is not resent,
			// so a strict default would lose those patients' demographics (docs/adapters.md).
			DefaultCharset: "8859/1",
			MaxConnections: 64,
			PublishTimeout: 5 * time.Second,
			EnrichWait:     5 * time.Second,
			// A year: long enough that an incident about a patient seen this year is enriched.
			DemographicsMaxAge: 365 * 24 * time.Hour,
		},
		Queue: QueueConfig{
			Replicas:        1,
			MaxStoreBytes:   10 << 30,
			MaxMemoryBytes:  256 << 20,
			RawMaxBytes:     4 << 30,
			RawMaxAge:       90 * 24 * time.Hour,
			ADTMaxAge:       7 * 24 * time.Hour,
			OutboxMaxBytes:  4 << 30,
			DuplicateWindow: time.Hour,
			Sync:            "always",
			PublishTimeout:  5 * time.Second,
		},
		National: NationalConfig{
			TaxonomyVersion:   5,
			Timeout:           40 * time.Second,
			Concurrency:       8,
			MaxAttempts:       20,
			MaxAge:            72 * time.Hour,
			BackoffInitial:    time.Second,
			BackoffMax:        10 * time.Minute,
			OnAmbiguousPost:   "hold",
			AuthProbeInterval: 30 * time.Second,
		},
		Mapping: MappingConfig{AgeEncoding: "lfpse372"},
		Ops:     OpsConfig{SessionTTL: 12 * time.Hour},
		CSVDrop: CSVDropConfig{
			Pattern:            "*.csv",
			PollInterval:       10 * time.Second,
			SettleTime:         5 * time.Second,
			Encoding:           "auto",
			Delimiter:          ",",
			MaxRowBytes:        1 << 20,
			MaxFileBytes:       1 << 30,
			PublishConcurrency: 4,
		},
		SQLPoll: SQLPollConfig{
			Driver:        "pgx",
			CursorColumns: []string{"updated_at", "local_id"},
			BatchSize:     500,
			PollInterval:  15 * time.Second,
			QueryTimeout:  30 * time.Second,
		},
	}
}
