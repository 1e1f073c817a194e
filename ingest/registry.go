package ingest

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
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
	// Sources, when not empty, lists the source names the gateway accepts.
	Sources map[string]bool
	// Metrics is where the runner registers its metrics, and where an adapter may register
	// its own. Nil registers nothing. Never the global registry.
	Metrics prometheus.Registerer
	// State is durable storage for the adapter's cursor or progress (nil for adapters that
	// keep none). Pull adapters need it; see StateStore.
	State StateStore
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

var (
	regMu    sync.Mutex
	registry = map[string]Factory{}
)

// Register makes a kind of adapter available. It is meant to be called from an adapter
// package's init and panics on a duplicate kind or a missing factory, which are programming
// errors.
func Register(kind string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if kind == "" || f == nil {
		panic("ingest: Register needs a kind and a factory")
	}
	if _, dup := registry[kind]; dup {
		panic(fmt.Sprintf("ingest: adapter kind %q registered twice", kind))
	}
	registry[kind] = f
}

// Lookup returns the factory for kind.
func Lookup(kind string) (Factory, bool) {
	regMu.Lock()
	defer regMu.Unlock()
	f, ok := registry[kind]
	return f, ok
}

// Kinds lists the registered kinds, sorted.
func Kinds() []string {
	regMu.Lock()
	defer regMu.Unlock()
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	sort.Strings(out)
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
