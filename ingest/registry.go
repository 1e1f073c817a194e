package ingest

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Adapter is one running source connection.
//
// Lifecycle: a Factory builds the adapter from its settings without doing I/O; the Runner then
// calls Run once. Run opens its connections, receives or pulls records, publishes each through
// Deps.Publisher and acknowledges the source only after Publish returned nil. Run blocks until
// ctx is cancelled, then releases everything and returns nil. Any other return is a failure:
// the runner logs it, backs off, and calls Run again on the same value, so Run must be
// restartable. Run is never called concurrently with itself.
type Adapter interface {
	Run(ctx context.Context) error
}

// HTTPAdapter is an adapter that receives over the gateway's own HTTP server instead of a
// listener of its own. Routes is called once, before Run.
type HTTPAdapter interface {
	Adapter
	Routes(mux *http.ServeMux)
}

// Deps is what the gateway gives every adapter.
type Deps struct {
	// Name is the adapter instance's name (its kind unless configured otherwise).
	Name string
	// Publisher stores records durably; see Publisher.
	Publisher Publisher
	// Logger is already scoped with the adapter's name. Never log record contents.
	Logger zerolog.Logger
	// Now is the clock; tests pass a fixed one.
	Now func() time.Time
	// Sources, when not empty, lists the source names the gateway accepts.
	Sources map[string]bool
}

// Factory builds an adapter of one kind from deps. Settings come from the kind's own config
// section, already decoded and validated by the config package.
type Factory func(deps Deps) (Adapter, error)

var (
	regMu    sync.Mutex
	registry = map[string]Factory{}
)

// Register makes a kind of adapter available. It is meant to be called from an adapter
// package's init and panics on a duplicate kind, which is a programming error.
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
