package gateway

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ops"
)

// The front door: the HTTP listener and the adapters that sources reach (the push API, the
// MLLP listener) open before the store, so that while an external cluster is awaited at
// start (unreachable, or without a JetStream quorum) a source is answered, 503 with
// Retry-After or AE naming the cause, instead of finding the port closed; and once the store
// is there the same listeners take records, with no restart and no second bind
// (docs/cluster.md, "Start-up checks"). With the embedded store the door opens the moment the
// store has.

// causeStarting is the cause named before the store has answered at all.
const causeStarting = "the store is starting"

// storeGate is the Publisher the front door's adapters are given: until the gateway is
// built it refuses every record as unavailable, naming the cause the queue last reported;
// then it hands each to the gateway's publisher. It is safe for concurrent use.
type storeGate struct {
	cause atomic.Pointer[string]
	pub   atomic.Pointer[queuePublisher]
}

func newStoreGate() *storeGate {
	s := &storeGate{}
	s.wait(causeStarting)
	return s
}

// wait records why the store is not usable yet (queue.Options.Waiting); "" is a failure
// the queue could not name.
func (s *storeGate) wait(cause string) {
	if cause == "" {
		cause = "the store does not answer yet"
	}
	s.cause.Store(&cause)
}

// Cause is why the store is awaited, or "" once the gate is open.
func (s *storeGate) Cause() string {
	if s.pub.Load() != nil {
		return ""
	}
	return *s.cause.Load()
}

// open lets records through to p from now on.
func (s *storeGate) open(p queuePublisher) { s.pub.Store(&p) }

func (s *storeGate) Publish(ctx context.Context, rec ingest.Record) (ingest.PublishResult, error) {
	if p := s.pub.Load(); p != nil {
		return p.Publish(ctx, rec)
	}
	return ingest.PublishResult{}, ingest.Unavailable(*s.cause.Load(), nil)
}

var _ ingest.Publisher = (*storeGate)(nil)

// frontHandler is the HTTP server's handler. Until ready it serves the waiting endpoints
// (ops.Server.WaitingRoutes) and the adapters' routes on mux, which answer 503 through the
// gate, and a 503 for anything else; once ready it serves mux, on which Start mounted the
// operations routes just before (a ServeMux takes routes while it serves).
//
// A request for anything but the waiting endpoints is first held for a while (hold), since
// a start is mostly a moment: a source or a script that polls /healthz and then posts must
// not be answered 503 by a gateway that is only starting (test/contract's
// TestOpsReadyzRefusedKey was, in a CI run), nor a source during a rolling restart of
// replicas on a cluster (test/cluster's rolling restart saw a 503 when a restarted replica's
// door opened a second before its store). Only a wait longer than hold (a cluster that
// cannot be reached) is answered 503 naming the cause. The waiting endpoints (health,
// readiness, the status page) answer at once, so that a liveness probe never waits.
type frontHandler struct {
	ready   atomic.Bool
	readyCh chan struct{} // closed by markReady
	hold    time.Duration
	mux     *http.ServeMux
	waiting *http.ServeMux
	ops     *ops.Server // the waiting one
}

// How long a request is held while the gateway starts: with the embedded store, up to a
// minute (a start that takes longer is stuck); with an external cluster a few seconds, after
// which a source is better told the cause and sent to another replica.
const (
	holdEmbedded = time.Minute
	holdCluster  = 5 * time.Second
)

func newFrontHandler(mux *http.ServeMux, waiting *ops.Server, hold time.Duration) *frontHandler {
	return &frontHandler{readyCh: make(chan struct{}), hold: hold, mux: mux, waiting: http.NewServeMux(), ops: waiting}
}

// markReady lets every request through to mux from now on, the held ones included.
func (h *frontHandler) markReady() {
	if h.ready.CompareAndSwap(false, true) {
		close(h.readyCh)
	}
}

func (h *frontHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.ready.Load() {
		if wh, pattern := h.waiting.Handler(r); pattern != "" {
			wh.ServeHTTP(w, r)
			return
		}
		if h.hold > 0 {
			t := time.NewTimer(h.hold)
			select {
			case <-h.readyCh:
			case <-r.Context().Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	if !h.ready.Load() {
		if _, pattern := h.mux.Handler(r); pattern == "" {
			h.ops.WaitingAnswer(w, r)
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}
