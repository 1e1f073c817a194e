package ingest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/fhir"
)

// Adapter is one running source connection: a listener, a poller or a set of HTTP routes that
// turns source records into Records and hands them to Deps.Publisher.
//
// Lifecycle:
//
//  1. Build. A Factory builds the adapter from Deps (its settings in Deps.Settings, already
//     validated by the config package). It does no I/O: no listening, no connecting, no file
//     reads. An error here is a configuration error and stops the gateway from starting.
//  2. Run. The Runner calls Run. Run opens its connections, receives or pulls records,
//     publishes each through Deps.Publisher and acknowledges the source only after Publish
//     returned nil: that is the JetStream PubAck, the record is durable. When Publish fails
//     (ErrUnavailable, a timeout) the source is told "not stored, retry later" (HTTP 503,
//     HL7 AE) or told nothing at all; it is never told "accepted". A record that can never be
//     accepted (malformed, unsupported) is refused at once (HTTP 400, HL7 AR) and counted with
//     Deps.CountRejected; it is not published.
//  3. Stop. When ctx is cancelled, Run stops taking records, abandons any publish still in
//     flight without acknowledging it (the source will resend, and the record id makes the
//     resend a duplicate if the first write did land), closes everything it opened, waits for
//     every goroutine it started, and returns nil, promptly.
//  4. Restart. Any other return from Run, nil before ctx was cancelled included, is a failure:
//     the Runner logs it, backs off and calls Run again on the same value. So Run must be
//     restartable: it opens what it needs each time and leaves nothing behind when it returns.
//
// Run is never called concurrently with itself. The same source record must always produce
// the same Record.ID, so that a resend is dropped as a duplicate by the durable store.
type Adapter interface {
	Run(ctx context.Context) error
}

// HTTPAdapter is an adapter that receives over the gateway's own HTTP server instead of a
// listener of its own. Routes is called once, before Run; handlers may be called before Run
// starts and after it returns, so they must only depend on what the Factory set up.
type HTTPAdapter interface {
	Adapter
	Routes(mux *http.ServeMux)
}

// Deps is what the gateway gives every adapter. The adapter must not reach for anything else:
// no environment variables, no config files, no global logger or metrics registry.
type Deps struct {
	// Name is the adapter instance's name (its kind unless configured otherwise). It labels
	// the adapter's logs, metrics and status.
	Name string
	// Settings holds the kind's own settings, typically a value of the adapter package's
	// Config type, decoded and validated by the config package. The Factory type-asserts it;
	// nil means "all defaults".
	Settings any
	// Publisher stores records durably; see Publisher.
	Publisher Publisher
	// Logger is scoped with the adapter's name by the Runner. Never log record contents or
	// patient identifiers: log ids, sizes, hashes, states and reasons.
	Logger zerolog.Logger
	// Now is the clock; tests pass a fixed one. NewRunner sets time.Now when it is nil.
	Now func() time.Time
	// Sources, when not empty, lists the source names the gateway accepts (the names of
	// Shared.Sources, in the form fhir.ParseOptions takes).
	Sources map[string]bool
	// Shared is the gateway's configuration outside the adapter's own section that an
	// adapter may build on: the sources' column maps, the store's publish timeout.
	Shared Shared
	// TLS is the certificate of a listener the adapter opens itself, loaded by the gateway
	// from the files the settings name (TLSFiles); nil for none.
	TLS *tls.Config
	// MaxRecordBytes is the largest record the durable store takes in one message; 0 when
	// there is no known limit. An adapter with a size limit of its own lowers it to this
	// with FitRecordLimit, so that it refuses for good a record it could never store.
	MaxRecordBytes int64
	// Metrics is where the runner registers its metrics, and where an adapter may register
	// its own. Nil registers nothing. Never the global registry.
	Metrics prometheus.Registerer
	// State is durable storage for the adapter's cursor or progress (nil for adapters that
	// keep none). Pull adapters need it; see StateStore.
	State StateStore
	// MapWarnings, when set, gives the warnings that mapping an incident will give
	// (fhir.Builder.Warnings: fields not used, values fallen back on), for an adapter that
	// answers its sender at once and can name them (the HTTP API's 202). Safe for concurrent
	// use; it does not modify the incident.
	MapWarnings func(*fhir.Incident) []fhir.Warning
	// Codes are the sources' code maps (sources.NAME.code_maps), for fhir.ParseOptions.Codes:
	// a source's own words for the event type, sex and harm are read through them. nil: the
	// API's words only.
	Codes fhir.CodeMapper
	// OnReject is set by the Runner; adapters call CountRejected, not this.
	OnReject func(reason string)
}

// CountRejected counts a source record the adapter refused before publishing it (malformed,
// unsupported, too large, unauthorised), by a short constant reason such as "parse" or
// "too_large". The reason becomes a metric label: never put record contents in it.
func (d Deps) CountRejected(reason string) {
	if d.OnReject != nil {
		d.OnReject(reason)
	}
}

// Clock returns d.Now, or time.Now when it is nil.
func (d Deps) Clock() func() time.Time {
	if d.Now == nil {
		return time.Now
	}
	return d.Now
}

// Factory builds an adapter of one kind from deps, without I/O. Settings come from
// deps.Settings; a value of the wrong type is an error.
type Factory func(deps Deps) (Adapter, error)

// Module is one kind of adapter as the registry knows it: what the config package needs to
// read its section of the config file, and what the gateway needs to build and run it. An
// adapter package registers one from init (docs/adapters.md, "Adding an adapter"); nothing
// else names the adapter, so adding one is its folder and one import line in ingest/all.
type Module struct {
	// Kind names the adapter: the adapter label of its metrics, its log scope and its name
	// on the status page (hl7mllp, httppush).
	Kind string
	// Section is the adapter's key in the config file (mllp for hl7mllp), whose keys are the
	// yaml tags of the type New returns. Each key X is also the environment variable
	// PSGW_<SECTION>_<X>. A section may be one of the gateway's own (httppush shares http,
	// the listener it is served on) as long as no key is in both.
	Section string
	// New returns the adapter's settings holding its defaults: a pointer to its Config, into
	// which the config package decodes the section; ingest.NewSettings(Defaults) makes one.
	New func() Settings
	// Factory builds the adapter; deps.Settings is a value New returned, decoded and
	// validated.
	Factory Factory
	// State says the adapter keeps durable state (a cursor, file progress): the gateway
	// then gives it Deps.State.
	State bool
	// BackoffMax caps the runner's wait between restarts after Run failed; zero keeps the
	// runner's default (Runner.BackoffMax).
	BackoffMax time.Duration
}

// NewSettings makes a Module.New from an adapter's Defaults: each call returns a pointer to a
// fresh copy, for the config package to decode the section into. It also checks, at compile
// time, that *C is Settings.
func NewSettings[C any, P interface {
	*C
	Settings
}](defaults func() C) func() Settings {
	return func() Settings {
		c := defaults()
		return P(&c)
	}
}

var (
	regMu    sync.Mutex
	registry = map[string]Module{} // by Section
)

// Register makes a kind of adapter available. It is meant to be called from an adapter
// package's init and panics on a duplicate kind or section, or a module without a kind,
// section, settings or factory: these are programming errors, found when the binary starts.
func Register(m Module) {
	regMu.Lock()
	defer regMu.Unlock()
	if m.Kind == "" || m.Section == "" || m.New == nil || m.Factory == nil {
		panic(fmt.Sprintf("ingest: Register needs a kind, a section, settings and a factory (kind %q, section %q)", m.Kind, m.Section))
	}
	if _, dup := registry[m.Section]; dup {
		panic(fmt.Sprintf("ingest: config section %q registered twice", m.Section))
	}
	for _, other := range registry {
		if other.Kind == m.Kind {
			panic(fmt.Sprintf("ingest: adapter kind %q registered twice", m.Kind))
		}
	}
	registry[m.Section] = m
}

// Lookup returns the module registered for a config section.
func Lookup(section string) (Module, bool) {
	regMu.Lock()
	defer regMu.Unlock()
	m, ok := registry[section]
	return m, ok
}

// Modules lists the registered modules, sorted by kind: the order in which the gateway
// builds them and the status page shows them.
func Modules() []Module {
	regMu.Lock()
	defer regMu.Unlock()
	out := make([]Module, 0, len(registry))
	for _, m := range registry {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}

// SettingsAs returns deps.Settings as a T: a T, a *T, or nil (the zero T, for defaults). Any
// other type is an error naming the kind, so a wiring mistake fails at start-up.
func SettingsAs[T any](kind string, deps Deps) (T, error) {
	var zero T
	switch s := deps.Settings.(type) {
	case nil:
		return zero, nil
	case T:
		return s, nil
	case *T:
		if s == nil {
			return zero, nil
		}
		return *s, nil
	default:
		return zero, fmt.Errorf("%s adapter: settings of type %T, want %T", kind, deps.Settings, zero)
	}
}
