package hl7mllp

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"time"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/hl7mllp/hl7"
)

// Kind is this adapter's registered kind: the adapter label of its metrics and its name on
// the status page. Section is its key in the config file.
const (
	Kind    = "hl7mllp"
	Section = "mllp"
)

// Config is the adapter's settings: the mllp section of the config file, whose keys are the
// yaml tags (each also PSGW_MLLP_<KEY>; README, "Configuration"). Its ADT messages also keep
// the demographics store that enriches incidents, configured here too (Demographics).
type Config struct {
	// Addr is the TCP listen address (port 0 picks a free one); empty disables the listener
	// and the demographics store.
	Addr string `yaml:"addr"`
	// Source is the name records are stored under, e.g. "epr"; incidents' local patient ids
	// are looked up in this source's id space.
	Source string `yaml:"source"`
	// MaxMessageBytes caps one message; a larger frame gets AR.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// ReadTimeout bounds how long a sender may take over one message once it started sending
	// it.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout closes a connection on which no message starts for this long after the
	// previous one was answered.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// FirstMessageTimeout closes a new connection whose first byte has not arrived within
	// it, so that peers that connect and send nothing hold no connection for long.
	FirstMessageTimeout time.Duration `yaml:"first_message_timeout"`
	// DefaultCharset is the character set of a message whose MSH-18 is empty:
	// hl7.CharsetLatin1 (the default, for EPRs that send ISO 8859-1 without declaring it),
	// hl7.CharsetASCII (as HL7 v2 strictly says) or hl7.CharsetUTF8, or an alias
	// hl7.NormalizeCharset knows. A message with a byte that is not valid in its declared,
	// or this default, character set gets AR.
	DefaultCharset string `yaml:"default_charset"`
	// FirstKilobyteTimeout is how long a frame may take over its first kilobyte (or all of
	// it, when shorter), counted from its first byte, and over each kilobyte after that, so
	// that a peer that dribbles a frame a byte at a time is cut off in seconds rather than
	// holding a connection for ReadTimeout. It also bounds a TLS handshake.
	FirstKilobyteTimeout time.Duration `yaml:"first_kilobyte_timeout"`
	// MaxConnections caps open connections. At the cap, a new connection takes the place of
	// the one idle the longest (never one mid-message); only when none is idle is the new one
	// closed at once.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerPeer caps the connections from one IP address, the same way: so one
	// host, however many sockets it opens, holds no more than this many slots.
	MaxConnectionsPerPeer int `yaml:"max_connections_per_peer"`
	// AllowedPeers, when not empty, are the addresses (IP addresses or CIDR prefixes) that
	// may connect: the EPR's interface engines. Any other connection is closed as it is
	// accepted, before a byte is read, so every slot is theirs.
	AllowedPeers []string `yaml:"allowed_peers"`
	// TLSCertFile and TLSKeyFile, both set, make the listener speak TLS. The gateway loads
	// them into TLS (TLSFiles); the adapter reads no files.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// ClientTLS configures client-certificate verification on a TLS listener (the mllp.tls
	// section).
	ClientTLS ClientTLS `yaml:"tls"`
	// PublishTimeout bounds the wait for durable storage before answering AE.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// EnrichWait bounds how long mapping an incident waits for the demographics store to
	// catch up with ADT messages received before it; 0 does not wait.
	EnrichWait time.Duration `yaml:"enrich_wait"`
	// DemographicsMaxAge is how long a patient's demographics are kept after the last ADT
	// message about them. The store holds data about every patient the EPR has ever sent,
	// so it is bounded in time like any other personal data (and in memory: JetStream
	// indexes every key).
	DemographicsMaxAge time.Duration `yaml:"demographics_max_age"`

	// TLS, when set, makes the listener speak TLS; the Factory takes it from ingest.Deps.TLS.
	TLS *tls.Config `yaml:"-"`
	// TrailerGrace is how long the listener waits for the CR after a frame's end byte before
	// it takes the frame as ended without it (and answers AR). Not a config key.
	TrailerGrace time.Duration `yaml:"-"`
}

// ClientTLS is the mllp.tls section: how the TLS listener checks who is sending. The
// listener's own certificate keeps its keys beside it (tls_cert_file, tls_key_file).
type ClientTLS struct {
	// ClientCAFile names a PEM file of CA certificates. When set, a sender must present a
	// certificate signed by one of them, or the handshake fails; the certificate's subject
	// shows in the adapter's status. The gateway loads it into TLS (TLSClientCAs).
	ClientCAFile string `yaml:"client_ca_file"`
}

// Defaults returns the settings a key left out of the config file takes: the one place the
// adapter's defaults are written (README, "Configuration", lists them).
func Defaults() Config {
	return Config{
		Addr:                "127.0.0.1:2575",
		Source:              "epr",
		MaxMessageBytes:     hl7.DefaultMaxFrameSize,
		ReadTimeout:         30 * time.Second,
		IdleTimeout:         10 * time.Minute,
		FirstMessageTimeout: 30 * time.Second,
		// Not HL7's ASCII: many EPRs send ISO 8859-1 undeclared, and an AR is not resent,
		// so a strict default would lose those patients' demographics (docs/adapters.md).
		DefaultCharset:        hl7.CharsetLatin1,
		FirstKilobyteTimeout:  5 * time.Second,
		MaxConnections:        64,
		MaxConnectionsPerPeer: 8,
		PublishTimeout:        5 * time.Second,
		EnrichWait:            5 * time.Second,
		// A year: long enough that an incident about a patient seen this year is enriched.
		DemographicsMaxAge: 365 * 24 * time.Hour,
		TrailerGrace:       time.Second,
	}
}

// withDefaults fills the settings left zero from Defaults, for an adapter built in Go (tests)
// rather than from the config file. Addr is not filled: it is what enables the listener.
func (c Config) withDefaults() Config {
	d := Defaults()
	if c.Source == "" {
		c.Source = d.Source
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.FirstMessageTimeout <= 0 {
		c.FirstMessageTimeout = d.FirstMessageTimeout
	}
	if c.DefaultCharset == "" {
		c.DefaultCharset = d.DefaultCharset
	}
	if c.FirstKilobyteTimeout <= 0 {
		c.FirstKilobyteTimeout = d.FirstKilobyteTimeout
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = d.MaxConnections
	}
	if c.MaxConnectionsPerPeer <= 0 {
		c.MaxConnectionsPerPeer = min(d.MaxConnectionsPerPeer, c.MaxConnections)
	}
	if c.TrailerGrace <= 0 {
		c.TrailerGrace = d.TrailerGrace
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = d.PublishTimeout
	}
	return c
}

// Enabled reports whether the section turns the listener on: addr is set.
func (c Config) Enabled() bool { return c.Addr != "" }

// Validate checks every setting, without I/O, whether or not the listener is on; each problem
// names its key.
func (c Config) Validate(ingest.Shared) error {
	p := ingest.NewProblems(Section)
	if c.Addr != "" {
		p.Addr("addr", c.Addr)
	}
	p.SourceName("source", c.Source)
	if c.MaxMessageBytes < 1024 || c.MaxMessageBytes > ingest.MaxRecordLimit {
		p.Add("max_message_bytes", "must be 1024 to %d, got %d", ingest.MaxRecordLimit, c.MaxMessageBytes)
	}
	p.Positive("read_timeout", c.ReadTimeout)
	p.Positive("idle_timeout", c.IdleTimeout)
	p.Positive("first_message_timeout", c.FirstMessageTimeout)
	if _, ok := hl7.NormalizeCharset(c.DefaultCharset); !ok {
		p.Add("default_charset", "must be ASCII, 8859/1 or UNICODE UTF-8 (or ISO IR6, ISO IR100, ISO IR192, ISO-8859-1, Latin-1, UTF-8), got %q", c.DefaultCharset)
	}
	p.Positive("publish_timeout", c.PublishTimeout)
	if c.DemographicsMaxAge < time.Hour {
		p.Add("demographics_max_age", "must be at least 1h, got %s", c.DemographicsMaxAge)
	}
	if c.EnrichWait < 0 {
		p.Add("enrich_wait", "must not be negative, got %s", c.EnrichWait)
	}
	p.Positive("first_kilobyte_timeout", c.FirstKilobyteTimeout)
	if c.MaxConnections < 1 || c.MaxConnections > 10000 {
		p.Add("max_connections", "must be 1 to 10000, got %d", c.MaxConnections)
	}
	if c.MaxConnectionsPerPeer < 1 || c.MaxConnectionsPerPeer > max(c.MaxConnections, 1) {
		p.Add("max_connections_per_peer", "must be 1 to max_connections (%d), got %d", c.MaxConnections, c.MaxConnectionsPerPeer)
	}
	for i, a := range c.AllowedPeers {
		if _, err := ingest.AllowedPeer(a); err != nil {
			p.Add(fmt.Sprintf("allowed_peers[%d]", i), "must be an IP address or a CIDR prefix such as 10.20.0.0/16: %v", err)
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		p.Add("tls_cert_file", "mllp.tls_cert_file and mllp.tls_key_file must be set together")
	}
	if c.ClientTLS.ClientCAFile != "" && c.TLSCertFile == "" {
		p.Add("tls.client_ca_file", "needs mllp.tls_cert_file and mllp.tls_key_file: client certificates are checked on a TLS listener")
	}
	return p.Err()
}

// CheckProduction refuses a listener beyond loopback with nothing to protect it
// (ingest.ProductionChecker): its messages carry patients' details, and its ADT messages set
// the demographics incidents are enriched with. TLS (mllp.tls_cert_file) keeps them off the
// network in clear, and with mllp.tls.client_ca_file says who may send; mllp.allowed_peers,
// the interface engines' addresses, closes the port to everyone else. Either will do.
func (c Config) CheckProduction() error {
	p := ingest.NewProblems(Section)
	if c.Enabled() && !ingest.LoopbackAddr(c.Addr) && c.TLSCertFile == "" && len(c.AllowedPeers) == 0 {
		p.Add("addr", "listens on %s, beyond loopback, with neither TLS (mllp.tls_cert_file, mllp.tls_key_file) nor mllp.allowed_peers: anyone who reaches the port could send ADT messages; set one of them, or mllp.addr: \"\" when no EPR sends", c.Addr)
	}
	return p.Err()
}

// allowedPeers parses AllowedPeers (Validate has checked them).
func (c Config) allowedPeers() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range c.AllowedPeers {
		if p, err := ingest.AllowedPeer(a); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// MaxRecordBytes is the largest message the listener accepts (ingest.RecordLimiter).
func (c Config) MaxRecordBytes() int64 { return int64(c.MaxMessageBytes) }

// TLSFiles names the listener's certificate and key for the gateway to load (ingest.TLSFiles).
func (c Config) TLSFiles() (certFile, keyFile, key string) {
	return c.TLSCertFile, c.TLSKeyFile, Section + ".tls_cert_file"
}

// TLSClientCAFile names the CA file that senders' certificates are verified against, for the
// gateway to load into TLS (ingest.TLSClientCAs).
func (c Config) TLSClientCAFile() (file, key string) {
	return c.ClientTLS.ClientCAFile, Section + ".tls.client_ca_file"
}

// Demographics configures the demographics store that the listener's ADT messages keep
// (ingest.DemographicsFeed).
func (c Config) Demographics() ingest.Demographics {
	return ingest.Demographics{Source: c.Source, EnrichWait: c.EnrichWait, MaxAge: c.DemographicsMaxAge}
}

// The interface guards: the gateway finds what these settings need through them.
var (
	_ ingest.Settings         = (*Config)(nil)
	_ ingest.RecordLimiter    = (*Config)(nil)
	_ ingest.TLSFiles         = (*Config)(nil)
	_ ingest.TLSClientCAs     = (*Config)(nil)
	_ ingest.DemographicsFeed = (*Config)(nil)

	_ ingest.ProductionChecker = (*Config)(nil)
)
