package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Settings is an adapter's section of the config file: a pointer to the adapter package's
// Config, whose yaml tags are the section's keys. The adapter owns it whole: its keys, its
// defaults (Module.New) and its checks (Validate). The config package decodes the section
// into it strictly, applies PSGW_<SECTION>_<KEY> variables, and reads the file named by a key
// X_file into its sibling key X (a string gets the file's trimmed content; a list gets its
// lines, blank lines and # comments skipped), so that no adapter reads a file or the
// environment for its settings.
type Settings interface {
	// Enabled reports whether the section turns the adapter on (mllp.addr set, csvdrop.dir
	// set). The gateway builds and runs every enabled adapter and no other.
	Enabled() bool
	// Validate checks the settings without any I/O and returns every problem at once, each
	// naming its key in full ("mllp.read_timeout: must be a positive duration"); see
	// Problems. shared is the rest of the configuration that the section may refer to.
	Validate(shared Shared) error
}

// Shared is the part of the gateway's configuration outside any adapter's section that
// adapters' settings are checked against and built with.
type Shared struct {
	// Sources are the configured source systems by name (sources.NAME). With none
	// configured, any well-formed source name is accepted.
	Sources map[string]Source
	// PublishTimeout is queue.publish_timeout: how long a publish may wait for the store,
	// for adapters that have no setting of their own for it.
	PublishTimeout time.Duration
}

// DefaultPublishTimeout is the publish timeout of an adapter built without a gateway (in
// tests); in the gateway Shared.PublishTimeout, queue.publish_timeout, applies.
const DefaultPublishTimeout = 5 * time.Second

// Source is what adapters may know of one configured source system.
type Source struct {
	// CSVColumns maps an incident field (fhir.RecordFields) to the name of the column that
	// holds it in this source's CSV exports or query results (sources.NAME.csv_columns).
	CSVColumns map[string]string
}

// RecordLimiter is implemented by settings that cap the size of one source record
// (http.max_body_bytes, mllp.max_message_bytes). The gateway sizes the embedded store's
// largest message to take the largest record any enabled adapter accepts.
type RecordLimiter interface {
	MaxRecordBytes() int64
}

// TLSFiles is implemented by settings that name a certificate and key for a listener the
// adapter opens itself. The gateway loads them, since an adapter reads no files, and passes
// the result in Deps.TLS. It reads them again when they change: Deps.TLS's
// GetConfigForClient gives each handshake what is loaded then, so the adapter must hand
// Deps.TLS to the listener as it is (tls.NewListener), not copy its certificates.
type TLSFiles interface {
	// TLSFiles returns the certificate and key files ("" for no TLS) and the key that names
	// the certificate, for errors ("mllp.tls_cert_file").
	TLSFiles() (certFile, keyFile, key string)
}

// TLSClientCAs is implemented by settings whose TLS listener verifies client certificates.
// The gateway loads the file into Deps.TLS.ClientCAs and requires every client to present a
// certificate signed by one of its CAs.
type TLSClientCAs interface {
	// TLSClientCAFile returns the PEM file of CA certificates ("" for no verification) and
	// the key that names it, for errors ("mllp.tls.client_ca_file").
	TLSClientCAFile() (file, key string)
}

// DemographicsFeed is implemented by the settings of an adapter that publishes KindADT
// records. When such an adapter is enabled, the gateway runs the demographics store on its
// records and the mapper enriches incidents from it; at most one may be enabled.
type DemographicsFeed interface {
	Demographics() Demographics
}

// Demographics configures the demographics store fed by an adapter's ADT records.
type Demographics struct {
	// Source is the name the ADT records are stored under; incidents' local patient ids are
	// looked up in its id space.
	Source string
	// EnrichWait bounds how long mapping an incident waits for the store to catch up with
	// ADT records received before it; 0 does not wait.
	EnrichWait time.Duration
	// MaxAge is how long a patient's demographics are kept after the last record about them.
	MaxAge time.Duration
}

// SecretsReloader is implemented by adapters that take their settings' secrets read afresh
// while they run (http.ingest_tokens_file and each token_file of http.ingest_tokens). The
// gateway watches the files the section's X_file keys name, as it watches its own secret
// files, and when one changes reads the section again (the same settings, the files read
// anew), checks it with Validate and calls ReloadSecrets with it (docs/api.md, "Changing
// keys, certificates and tokens"). The adapter takes from it only what comes from files;
// an error keeps what runs and is logged by key, so it must not quote a secret.
type SecretsReloader interface {
	ReloadSecrets(Settings) error
}

// ProductionChecker is implemented by settings with rules of their own for a production
// gateway: `psgw run --production` refuses to start while CheckProduction returns an error
// (docs/deploy.md, "Production mode"). Like Validate it does no I/O and names each key (see
// Problems), and says what to set.
type ProductionChecker interface {
	CheckProduction() error
}

// LoopbackAddr reports whether a listen address host:port binds loopback only (localhost, or
// a loopback address); an empty host or a wildcard binds every interface.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || strings.TrimSpace(host) == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Listener is implemented by adapters that open a listener of their own, so that the
// gateway and tests can find the address it is bound to (useful with port 0).
type Listener interface {
	// Addr waits until Run is listening and returns the bound address.
	Addr(ctx context.Context) (net.Addr, error)
}

// MaxRecordLimit bounds every per-record size setting (http.max_body_bytes,
// mllp.max_message_bytes, csvdrop.max_row_bytes): a record and the resource mapped from it
// must fit in one NATS message, and NATS refuses payloads over 64 MiB.
const MaxRecordLimit = 16 << 20

// FitRecordLimit returns n, a record size limit set by key, lowered to what the durable store
// takes in one message (deps.MaxRecordBytes) and logged when it is, so that an adapter refuses
// a record it could never store (HTTP 413, HL7 AR) instead of accepting it and then answering
// as if the store were merely down (503, AE), which a source would retry for ever. An external
// NATS cluster's max_payload can be smaller than the configured limits.
func FitRecordLimit(deps Deps, key string, n int64) int64 {
	limit := deps.MaxRecordBytes
	if limit <= 0 || n <= limit {
		return n
	}
	deps.Logger.Warn().Str("setting", key).Int64("configured", n).Int64("effective", limit).
		Msg("lowered to fit the NATS server's max_payload; raise max_payload on the server to accept larger records")
	return limit
}

// Problems collects what a Validate method finds in one section, each problem naming its
// key in full: Add("read_timeout", ...) in section mllp reports "mllp.read_timeout: ...".
type Problems struct {
	section string
	errs    []error
}

// NewProblems starts the list of problems of one section.
func NewProblems(section string) *Problems { return &Problems{section: section} }

// Add records a problem with key, a key of the section.
func (p *Problems) Add(key, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s.%s: %s", p.section, key, fmt.Sprintf(format, args...)))
}

// Positive records a problem unless d is a positive duration.
func (p *Problems) Positive(key string, d time.Duration) {
	if d <= 0 {
		p.Add(key, "must be a positive duration, got %s", d)
	}
}

// Addr records a problem unless addr is host:port with a port from 0 to 65535.
func (p *Problems) Addr(key, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		p.Add(key, "must be host:port with a port from 0 to 65535, got %q", addr)
	}
}

// SourceName records a problem unless name is a valid source name ([a-z0-9_-]{1,64}), and
// reports whether it is.
func (p *Problems) SourceName(key, name string) bool {
	if !sourceName.MatchString(name) {
		p.Add(key, "must match [a-z0-9_-]{1,64}, got %q", name)
		return false
	}
	return true
}

// Err returns every problem recorded, joined, or nil.
func (p *Problems) Err() error { return errors.Join(p.errs...) }

// sourceName is the rule for a source system's name (docs/incident.schema.json, source).
var sourceName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// CursorSkipper is implemented by adapters that read their source from a cursor (sqlpoll): an
// operator can move the cursor past a source record that cannot be read at all, which would
// otherwise stop the feed (docs/adapters.md, "Stepping past a row"). SkipPast sets the cursor
// to values, typed like the cursor it replaces, and returns the cursor as it was, for the
// record of what was stepped over. It may be called while Run runs.
type CursorSkipper interface {
	SkipPast(ctx context.Context, values []string) (previous string, err error)
}

// LateFinder is implemented by cursor adapters that re-read behind their cursor (sqlpoll):
// the runner shows how many rows they found there, and when the latest was, in the adapter's
// Status.
type LateFinder interface {
	FoundLate() (n uint64, last time.Time)
}
