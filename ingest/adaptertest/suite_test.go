package adaptertest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
)

// The ways the in-process adapter below can behave.
const (
	// good keeps every promise of the contract.
	good = "good"
	// ackOnCancel answers "accepted" when its Publish was abandoned because Run was
	// cancelled, on a request channel that outlives Run (as an HTTP handler does).
	ackOnCancel = "ack_on_cancel"
	// detached publishes on a context that Run's cancellation does not reach and returns
	// from Run without waiting for it: the publish completes later and is acknowledged.
	detached = "detached"
)

// request is one source record on its way to the adapter, with the channel for its answer.
type request struct {
	n     int
	reply chan adaptertest.Outcome
}

// chanAdapter is a minimal adapter whose source talks to it over a channel, so that what it
// tells its source does not depend on a connection being closed when Run returns.
type chanAdapter struct {
	deps ingest.Deps
	mode string

	mu    sync.Mutex
	reqs  chan request  // nil between runs
	ready chan struct{} // closed once reqs is set for the current Run
}

func newChanAdapter(deps ingest.Deps, mode string) *chanAdapter {
	return &chanAdapter{deps: deps, mode: mode, ready: make(chan struct{})}
}

func (a *chanAdapter) Run(ctx context.Context) error {
	reqs := make(chan request)
	a.mu.Lock()
	a.reqs = reqs
	close(a.ready)
	a.mu.Unlock()
	var wg sync.WaitGroup
	defer func() {
		a.mu.Lock()
		a.reqs, a.ready = nil, make(chan struct{})
		a.mu.Unlock()
		if a.mode != detached {
			wg.Wait()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case q := <-reqs:
			pctx := ctx
			if a.mode == detached {
				pctx = context.WithoutCancel(ctx)
			}
			wg.Go(func() { a.handle(ctx, pctx, q) })
		}
	}
}

func (a *chanAdapter) handle(runCtx, pctx context.Context, q request) {
	rec := ingest.Record{
		Kind: ingest.KindIncident, Source: "suite", LocalID: fmt.Sprint("R-", q.n),
		Key: ingest.IncidentKey("suite", fmt.Sprint("R-", q.n)),
		ID:  fmt.Sprint("suite.r", q.n), Data: []byte(fmt.Sprint("record ", q.n)), ReceivedAt: a.deps.Now(),
	}
	_, err := a.deps.Publisher.Publish(pctx, rec)
	switch {
	case err != nil && runCtx.Err() != nil:
		if a.mode == ackOnCancel {
			q.reply <- adaptertest.Accepted
		}
	case err != nil:
		q.reply <- adaptertest.Retry
	default:
		q.reply <- adaptertest.Accepted
	}
}

func (a *chanAdapter) send(ctx context.Context, n int) (adaptertest.Outcome, error) {
	a.mu.Lock()
	ready := a.ready
	a.mu.Unlock()
	select {
	case <-ready:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	a.mu.Lock()
	reqs := a.reqs
	a.mu.Unlock()
	if reqs == nil {
		return 0, errors.New("adapter not running")
	}
	q := request{n: n, reply: make(chan adaptertest.Outcome, 1)}
	select {
	case reqs <- q:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case o := <-q.reply:
		return o, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func subject(mode string) adaptertest.Subject {
	return adaptertest.Subject{
		Kind: ingest.KindIncident,
		New: func(t *testing.T, deps ingest.Deps) (ingest.Adapter, adaptertest.Sender) {
			a := newChanAdapter(deps, mode)
			return a, a.send
		},
	}
}

// TestSuitePassesAGoodAdapter is the control: the suite does not flag an adapter that keeps
// the contract.
func TestSuitePassesAGoodAdapter(t *testing.T) {
	adaptertest.Run(t, subject(good))
}

// brokenEnv names the broken mode for TestBrokenAdapterUnderSuite, run in a child process.
const brokenEnv = "ADAPTERTEST_BROKEN_MODE"

// TestBrokenAdapterUnderSuite runs the suite against a broken adapter. It only runs inside
// TestSuiteFlagsBrokenAdapters's child process, where it is meant to fail.
func TestBrokenAdapterUnderSuite(t *testing.T) {
	mode := os.Getenv(brokenEnv)
	if mode == "" {
		t.Skip("run by TestSuiteFlagsBrokenAdapters")
	}
	adaptertest.Run(t, subject(mode))
}

// TestSuiteFlagsBrokenAdapters proves that the cancellation check can fail: the suite, run on
// an adapter that acknowledges its source after Run was cancelled, must fail that check and
// only that one. The suite runs in a child process, since a failing sub-test fails its parent.
func TestSuiteFlagsBrokenAdapters(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary again")
	}
	for _, mode := range []string{ackOnCancel, detached} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenAdapterUnderSuite$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+mode)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the suite passed (or did not run: %v) on an adapter that acknowledges after cancellation:\n%s", err, out)
			}
			text := string(out)
			if !strings.Contains(text, "--- FAIL: TestBrokenAdapterUnderSuite/cancellation_with_publish_in_flight") {
				t.Errorf("the cancellation check did not fail:\n%s", text)
			}
			for _, check := range []string{"publishes_well_formed_records", "same_record_twice_is_stored_once",
				"ack_only_after_durable_publish", "no_ack_when_publish_fails", "restart"} {
				if !strings.Contains(text, "--- PASS: TestBrokenAdapterUnderSuite/"+check) {
					t.Errorf("check %s did not pass; only the cancellation check should fail:\n%s", check, text)
				}
			}
		})
	}
}
