package httppush

import (
	"fmt"
	"time"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
)

// Kind is this adapter's registered kind: the adapter label of its metrics and its name on
// the status page. Section is its key in the config file: the gateway's own http section,
// since the push API is served on the gateway's HTTP listener. The listener's keys (addr,
// read_timeout, tls_cert_file, tls_key_file) are the gateway's; the keys below are this
// adapter's.
const (
	Kind    = "httppush"
	Section = "http"
)

// Config is the adapter's settings: its keys of the http section (each also
// PSGW_HTTP_<KEY>; README, "Configuration").
type Config struct {
	// MaxBodyBytes caps a request body (413 above it).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Tokens, when not empty, are the accepted bearer tokens. Several may be given so that a
	// token can be rotated without downtime. A token written as text may post for any
	// source; one written as {token_file, sources} only for those sources.
	Tokens []IngestToken `yaml:"ingest_tokens"`
	// TokensFile names a file holding one token per line (each for any source). The config
	// package reads it at start-up and adds its tokens to Tokens, and again when it changes
	// (Adapter.ReloadSecrets); the adapter never reads it.
	TokensFile string `yaml:"ingest_tokens_file"`

	// UnknownFields is UnknownFieldsWarn (the default): an incident with warnings is
	// accepted and the 202 lists them; or UnknownFieldsReject: it is refused with 400 and
	// the warnings as its problems, for sources that want to be held to the documented
	// fields (docs/api.md).
	UnknownFields string `yaml:"unknown_fields"`
	// MapWarnings, when set, gives the warnings that mapping the incident will give
	// (fhir.Builder.Warnings: "Other" answers, unknown ODS codes, ages and the like), so
	// that the 202 (or, with UnknownFieldsReject, the 400) names them as well as the fields
	// the parser did not know. It must be safe for concurrent use and must not modify the
	// incident. Not a config key: Factory takes ingest.Deps.MapWarnings, which the gateway
	// sets.
	MapWarnings func(*fhir.Incident) []fhir.Warning `yaml:"-"`

	// RetryAfter is the hint given with 503. Not a config key.
	RetryAfter time.Duration `yaml:"-"`
	// PublishTimeout bounds the wait for durable storage: queue.publish_timeout, given by the
	// gateway in ingest.Deps.Shared.
	PublishTimeout time.Duration `yaml:"-"`
}

// Defaults returns the settings a key left out of the config file takes: the one place the
// adapter's defaults are written. PublishTimeout is left zero, so that the gateway's
// (queue.publish_timeout) applies.
func Defaults() Config {
	return Config{MaxBodyBytes: 1 << 20, RetryAfter: 5 * time.Second, UnknownFields: UnknownFieldsWarn}
}

// Values of Config.UnknownFields.
const (
	UnknownFieldsWarn   = "warn"
	UnknownFieldsReject = "reject"
)

// withDefaults fills the settings left zero from Defaults, and the publish timeout of an
// adapter built without a gateway (tests) with ingest.DefaultPublishTimeout.
func (c Config) withDefaults() Config {
	d := Defaults()
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = d.RetryAfter
	}
	if c.UnknownFields == "" {
		c.UnknownFields = d.UnknownFields
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = ingest.DefaultPublishTimeout
	}
	return c
}

// Enabled is always true: the push API is part of every gateway.
func (c Config) Enabled() bool { return true }

// Validate checks the settings without I/O; each problem names its key.
func (c Config) Validate(shared ingest.Shared) error {
	p := ingest.NewProblems(Section)
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > ingest.MaxRecordLimit {
		p.Add("max_body_bytes", "must be 1024 to %d, got %d", ingest.MaxRecordLimit, c.MaxBodyBytes)
	}
	switch c.UnknownFields {
	case "", UnknownFieldsWarn, UnknownFieldsReject:
	default:
		p.Add("unknown_fields", "must be %q or %q, got %q", UnknownFieldsWarn, UnknownFieldsReject, c.UnknownFields)
	}
	for i, t := range c.Tokens {
		key := fmt.Sprintf("ingest_tokens[%d]", i)
		switch {
		case t.Token == "" && t.TokenFile != "":
			p.Add(key+".token_file", "was not read: the token must be in the file (the config package reads it at start-up)")
		case t.Token == "":
			p.Add(key, "must give a token (token or token_file)")
		case len(t.Token) < 16:
			p.Add(key, "must be at least 16 characters")
		}
		for j, src := range t.Sources {
			k := fmt.Sprintf("%s.sources[%d]", key, j)
			if p.SourceName(k, src) && len(shared.Sources) > 0 {
				if _, ok := shared.Sources[src]; !ok {
					p.Add(k, "must be one of the configured sources, got %q", src)
				}
			}
		}
	}
	return p.Err()
}

// CheckProduction requires an ingest token (ingest.ProductionChecker): with none, anyone who
// can reach the listener can post incidents for any source, and they go to LFPSE.
func (c Config) CheckProduction() error {
	p := ingest.NewProblems(Section)
	if len(c.Tokens) == 0 {
		p.Add("ingest_tokens_file", "must give at least one ingest token (or set http.ingest_tokens): without one, anyone who can reach http.addr can post incidents for any source, and they are sent to LFPSE")
	}
	return p.Err()
}

// IngestToken is one entry of http.ingest_tokens: a bearer token and the sources it may post
// incidents for. In the config file it is either the token itself, which may post for any
// source (the form every entry had before tokens could be bound), or a mapping:
//
//	ingest_tokens:
//	  - token_file: /run/secrets/datix-token   # or token: ...
//	    sources: [datix]
//
// A token bound to sources that posts an incident for another gets 403.
type IngestToken struct {
	// Token is the bearer token. With TokenFile, the config package reads the file into it.
	Token string `yaml:"token"`
	// TokenFile names a file holding the token; the adapter never reads it.
	TokenFile string `yaml:"token_file"`
	// Sources, when not empty, are the only sources the token may post for.
	Sources []string `yaml:"sources"`
}

// UnmarshalText takes a token written as text (in the file, a PSGW_HTTP_INGEST_TOKENS list,
// or a line of http.ingest_tokens_file): one that may post for any source.
func (t *IngestToken) UnmarshalText(b []byte) error {
	*t = IngestToken{Token: string(b)}
	return nil
}

// MarshalYAML writes a token that may post for any source as text, as it was read, and any
// other as a mapping.
func (t IngestToken) MarshalYAML() (any, error) {
	if t.TokenFile == "" && len(t.Sources) == 0 {
		return t.Token, nil
	}
	type plain IngestToken // without this method
	return plain(t), nil
}

// mayPost reports whether the token may post for source.
func (t IngestToken) mayPost(source string) bool {
	if len(t.Sources) == 0 {
		return true
	}
	for _, s := range t.Sources {
		if s == source {
			return true
		}
	}
	return false
}

// Tokens returns tokens that may post for any source, as Config.Tokens takes them.
func Tokens(tokens ...string) []IngestToken {
	out := make([]IngestToken, len(tokens))
	for i, t := range tokens {
		out[i] = IngestToken{Token: t}
	}
	return out
}

// MaxRecordBytes is the largest body the API accepts (ingest.RecordLimiter).
func (c Config) MaxRecordBytes() int64 { return c.MaxBodyBytes }

var (
	_ ingest.Settings          = (*Config)(nil)
	_ ingest.RecordLimiter     = (*Config)(nil)
	_ ingest.ProductionChecker = (*Config)(nil)
)
