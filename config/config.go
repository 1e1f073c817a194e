// Package config holds psgw's typed configuration: one YAML file, decoded strictly, with
// PSGW_<SECTION>_<KEY> environment overrides and *_file secrets. The gateway's own sections
// are typed here, with their defaults in Default and nowhere else. Each ingest adapter's
// section belongs to the adapter: its package registers its settings type, defaults and
// checks with ingest, and this package decodes, overrides and validates the section through
// that registry without knowing the adapter (docs/adapters.md, "Adding an adapter"), as
// Prometheus does for its service discovery configs. Validate checks values without doing
// any I/O.
package config

import (
	"slices"
	"time"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
)

// Config is the whole gateway configuration. The YAML keys are the snake_case tags; the
// environment variable for a key is PSGW_ followed by its dotted path in upper case with dots
// turned into underscores (national.base_url → PSGW_NATIONAL_BASE_URL).
type Config struct {
	// DataDir is where the embedded JetStream keeps its files.
	DataDir string `yaml:"data_dir"`
	// Replica names this gateway where several run against one NATS cluster: each
	// incident's history and the status page say which replica did what (docs/cluster.md).
	// Empty: the host name.
	Replica  string         `yaml:"replica"`
	Log      LogConfig      `yaml:"log"`
	HTTP     HTTPConfig     `yaml:"http"`
	Queue    QueueConfig    `yaml:"queue"`
	National NationalConfig `yaml:"national"`
	Mapping  MappingConfig  `yaml:"mapping"`
	Ops      OpsConfig      `yaml:"ops"`
	Insights InsightsConfig `yaml:"insights"`
	// Sources, when not empty, is the list of source systems allowed to send incidents, with
	// their code maps. With none configured any well-formed source name is accepted.
	Sources map[string]SourceConfig `yaml:"sources"`
	// Adapters holds each ingest adapter's section by its key (mllp, csvdrop, sqlpoll, and
	// the push API's keys of http): the settings the adapter registered (ingest.Module.New),
	// a pointer to its own Config. Default fills in every registered adapter's defaults; the
	// gateway runs those whose settings are Enabled. A copy of a Config shares these
	// pointers: change them only on a Config of your own (tests write
	// cfg.Adapters["mllp"].(*hl7mllp.Config).Addr = "").
	Adapters map[string]ingest.Settings `yaml:"-"`
	// UnreadAdapters holds each adapter section as it was before Load read the files its
	// X_file keys name, so that RereadAdapterSecrets can read them afresh while psgw runs
	// (docs/api.md, "Changing keys, certificates and tokens"). Not a setting; nil in a
	// Config not made by Load.
	UnreadAdapters map[string]ingest.Settings `yaml:"-"`
}

// LogConfig sets the structured log output.
type LogConfig struct {
	// Level is one of debug, info, warn, error.
	Level string `yaml:"level"`
	// Format is json (for log shippers) or console (for people).
	Format string `yaml:"format"`
}

// HTTPConfig is the HTTP API, status page and metrics listener. The push API served on it
// (ingest/httppush) keeps its own keys in the same section: http.max_body_bytes,
// http.ingest_tokens and http.ingest_tokens_file are in httppush.Config.
type HTTPConfig struct {
	Addr string `yaml:"addr"`
	// ReadTimeout bounds how long a client may take to send a request.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// TLSCertFile and TLSKeyFile, both set, make the whole HTTP listener (ingest, API, status
	// page, metrics) speak TLS.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// AllowedHosts are the names the status page and operations API answer to, beside
	// loopback names, IP addresses and the listen address: a request with any other Host is
	// refused, so a page on another site cannot reach them through DNS rebinding. "*"
	// accepts any name.
	AllowedHosts []string `yaml:"allowed_hosts"`
}

// InsightsConfig is the learning data of /api/v1/insights and /insights (docs/insights.md).
type InsightsConfig struct {
	// SuppressionThreshold hides counts from 1 to this number, as NHS England publishes
	// small numbers; 0 shows every count (for internal use only). An operator may also ask
	// one answer without suppression (suppress=off).
	SuppressionThreshold int `yaml:"suppression_threshold"`
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
	// AllowOpenActions lets anyone who can reach the listener replay, resolve and review
	// when access control is off and http.addr is not a loopback address. Without it such a
	// gateway refuses operator actions; with it the gateway warns at every start.
	AllowOpenActions bool `yaml:"allow_open_actions"`

	// FromTokensFile counts the entries at the end of ViewerTokens and OperatorTokens that
	// came from TokensFile, so that ReloadTokensFile can replace them. Not a setting.
	FromTokensFile TokensFileCounts `yaml:"-"`
}

// TokensFileCounts is how many viewer and operator tokens ops.tokens_file gave.
type TokensFileCounts struct{ Viewers, Operators int }

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
	// AdminAddr, when set, is a loopback host:port where the embedded server takes NATS
	// clients that present the token in <data_dir>/admin-token: `psgw backup` and the NATS
	// tools (docs/deploy.md, "Backup and restore"). Empty: in-process connections only.
	AdminAddr string `yaml:"admin_addr"`
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
	// AllowHTTP lets BaseURL use plain http to a host that is not loopback: a simulator on a
	// private test network. Without it only https is taken, and http only to a loopback
	// host (a simulator on the same machine). Never for the national service itself.
	AllowHTTP bool `yaml:"allow_http"`
}

// MappingConfig tunes the LFPSE mapping.
type MappingConfig struct {
	// AgeEncoding is how AgeAtTimeOfIncidentDays is computed: "lfpse372" (years*372 +
	// months*31 + days, as LFPSE samples suggest; unconfirmed) or "days" (true days).
	AgeEncoding string `yaml:"age_encoding"`
	// AgePrecision is "exact" (AgeAtTimeOfIncidentDays, with AgeBracket only when no exact
	// age is known) or "bracket" (AgeBracket only, from which the date of birth cannot be
	// worked out; docs/privacy.md, "Age and date of birth").
	AgePrecision string `yaml:"age_precision"`
	// PlaceholderBirthDates are dates of birth (YYYY-MM-DD) that source systems record when
	// the real one is not known; such a date gives no age, with a warning (docs/mapping.md,
	// "Ages"). An empty list means none.
	PlaceholderBirthDates []string `yaml:"placeholder_birth_dates"`
	// Fallbacks is what happens to an incident whose mapping falls back on a guess (an
	// "Other" answer, an organisation outside the ODS list, a local value taken as the
	// LFPSE code it equals): "warn" sends it with a warning in its record; "quarantine"
	// holds it back for an operator. sources.NAME.fallbacks overrides it per source.
	Fallbacks string `yaml:"fallbacks"`
}

// Values of MappingConfig.Fallbacks and SourceConfig.Fallbacks.
const (
	FallbacksWarn       = "warn"
	FallbacksQuarantine = "quarantine"
)

// QuarantinesFallbacks reports whether the fallbacks of source's incidents are quarantined:
// its own sources.NAME.fallbacks, else mapping.fallbacks.
func (c *Config) QuarantinesFallbacks(source string) bool {
	if f := c.Sources[source].Fallbacks; f != "" {
		return f == FallbacksQuarantine
	}
	return c.Mapping.Fallbacks == FallbacksQuarantine
}

// SourceConfig describes one source system.
type SourceConfig struct {
	// CodeMaps maps a canonical field (e.g. "reporter.role"; docs/mapping.md lists them) to
	// local value → LFPSE code, per taxonomy version ("5", "6", or "*" for both; a version's
	// own entry wins). A local value with no entry that is not itself an LFPSE code or label
	// goes to the field's "Other" answer, or the incident is quarantined.
	CodeMaps map[string]map[string]map[string]string `yaml:"code_maps"`
	// CSVColumns maps an incident field (e.g. "patient.date_of_birth"; fhir.RecordFields) to
	// the header name of the CSV column that holds it, for CSV records of this source (and
	// to a result column for sqlpoll). Adapters see it through ingest.Shared.
	CSVColumns map[string]string `yaml:"csv_columns"`
	// Fallbacks overrides mapping.fallbacks for this source: "warn" or "quarantine"; empty
	// takes mapping.fallbacks.
	Fallbacks string `yaml:"fallbacks"`
}

// Default returns the configuration used when no file or variable says otherwise: the
// gateway's defaults, and every registered adapter's own (ingest.Module.New).
func Default() Config {
	return Config{
		DataDir: "./data",
		Log:     LogConfig{Level: "info", Format: "json"},
		HTTP: HTTPConfig{
			Addr:        "127.0.0.1:8080",
			ReadTimeout: 30 * time.Second,
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
		Mapping: MappingConfig{AgeEncoding: "lfpse372", AgePrecision: "exact", Fallbacks: FallbacksWarn,
			PlaceholderBirthDates: slices.Clone(fhir.DefaultPlaceholderBirthDates)},
		Ops:      OpsConfig{SessionTTL: 12 * time.Hour},
		Insights: InsightsConfig{SuppressionThreshold: 7},
		Adapters: defaultAdapters(),
	}
}
