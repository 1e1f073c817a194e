package forwarder

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/test/wait"
)

func gauge(t *testing.T, g interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// TestOutageNeedsAStreak: only a run of sends that find the service unavailable (no answer,
// 502, 503, 504), unbroken by any other answer, pauses delivery for an outage; a refused key
// outranks it.
func TestOutageNeedsAStreak(t *testing.T) {
	f := New(Config{Concurrency: 4}, nil, nil, nil, zerolog.Nop()) // a run of 20
	fail := func(n int, status int) {
		for range n {
			f.noteAnswer(Outcome{Class: ClassTransient, Status: status, Detail: "HTTP " + http.StatusText(status)})
		}
	}
	fail(19, 503)
	f.noteAnswer(Outcome{Class: ClassDelivered, Status: 201})
	fail(19, 502)
	f.noteAnswer(Outcome{Class: ClassRejected, Status: 422}) // the service answers: not an outage
	fail(19, 0)
	f.noteAnswer(Outcome{Class: ClassTransient, Status: 429}) // nor is a rate limit
	fail(19, 504)
	fail(1, 500) // nor a failure of this request: these incidents must still be able to fail
	fail(19, 503)
	if st := f.Status(); st.Outage || st.Paused {
		t.Fatalf("paused by failures broken up by answers: %+v", st)
	}
	fail(1, 0)
	st := f.Status()
	if !st.Outage || st.Paused || !strings.Contains(st.OutageReason, "20 sends in a row") || st.OutageSince.IsZero() {
		t.Fatalf("after 20 failures in a row: %+v, want an outage with its reason and start", st)
	}
	if gauge(t, f.cfg.Metrics.Outage) != 1 || gauge(t, f.cfg.Metrics.Paused) != 0 {
		t.Error("gauges: want psgw_forwarder_outage 1, psgw_forwarder_paused 0")
	}

	// Resumed, the next send that fails the same way pauses again at once.
	f.resume()
	if f.Status().Outage || gauge(t, f.cfg.Metrics.Outage) != 0 {
		t.Fatal("still an outage after resume")
	}
	fail(1, 503)
	if !f.Status().Outage {
		t.Fatal("a failure right after resuming did not pause again")
	}

	// A refused key outranks the outage, and an outage does not hide a refused key.
	f.pauseFor(pauseAuth, "HTTP 401")
	fail(20, 503)
	if st := f.Status(); !st.Paused || st.Outage || !strings.Contains(st.PauseReason, "HTTP 401") {
		t.Errorf("got %+v, want paused for the key", st)
	}
	if gauge(t, f.cfg.Metrics.Paused) != 1 || gauge(t, f.cfg.Metrics.Outage) != 0 {
		t.Error("gauges: want psgw_forwarder_paused 1, psgw_forwarder_outage 0")
	}
}

// TestOutageProbedUntilItAnswers: during an outage the metadata endpoint is probed on a
// short, growing backoff (not the key probe's long interval) and delivery resumes when it
// answers; a refused key found by the probe turns the outage into an auth pause.
func TestOutageProbedUntilItAnswers(t *testing.T) {
	var up, refuse atomic.Bool
	var probes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		switch {
		case refuse.Load():
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"statusCode":401,"message":"Access denied due to invalid subscription key"}`))
		case up.Load():
			_, _ = w.Write([]byte(`{"resourceType":"CapabilityStatement"}`))
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	client := NewClient(srv.URL, "key", 5*time.Second)
	client.hc.RetryMax = 0
	f := New(Config{Concurrency: 1, ProbeInterval: time.Hour, BackoffInitial: 10 * time.Millisecond, BackoffMax: time.Hour},
		nil, nil, client, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); f.probeLoop(ctx) }()
	defer func() { cancel(); <-done }()

	for range 20 {
		f.noteAnswer(Outcome{Class: ClassTransient, Detail: "connection refused"})
	}
	if !f.Status().Outage {
		t.Fatal("no outage after 20 failures")
	}
	wait.Until(t, 10*time.Second, "three probes of the outage", func() bool { return probes.Load() >= 3 })
	if !f.Status().Outage {
		t.Fatal("resumed while the service still fails")
	}
	up.Store(true)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	f.waitResumed(wctx)
	timedOut := wctx.Err() != nil
	wcancel()
	if f.Status().Outage || timedOut {
		t.Fatalf("not resumed after the service answered: %+v", f.Status())
	}

	refuse.Store(true)
	f.noteAnswer(Outcome{Class: ClassTransient, Detail: "connection refused"}) // half-open: pauses at once
	wait.Until(t, 10*time.Second, "the outage turned into an auth pause", func() bool { return f.Status().Paused })
	if st := f.Status(); st.Outage || !strings.Contains(st.PauseReason, "subscription key") {
		t.Errorf("got %+v, want paused for the key", st)
	}
}

// TestAmbiguousRunPauses: a run of answers that may hide a stored event (a POST's 500 or 504
// after storing, say) pauses delivery after ambiguousStreak of them, sooner than an outage's
// run, so a service that stores and then fails every write leaves a handful of incidents
// unknown, not the queue; scattered ones among other answers do not.
func TestAmbiguousRunPauses(t *testing.T) {
	f := New(Config{Concurrency: 4}, nil, nil, nil, zerolog.Nop()) // a run of 5
	amb := func(n, status int) {
		for range n {
			f.noteAnswer(Classify(Response{Status: status, Sent: true}, false))
		}
	}
	amb(4, 504)
	f.noteAnswer(Outcome{Class: ClassDelivered, Status: 201})
	amb(4, 500)
	f.noteAnswer(Outcome{Class: ClassRejected, Status: 422})
	amb(4, 599)
	if st := f.Status(); st.Outage {
		t.Fatalf("paused by ambiguous answers broken up by others: %+v", st)
	}
	amb(1, 500)
	if st := f.Status(); !st.Outage || !strings.Contains(st.OutageReason, "5 sends in a row got an answer that may hide a stored event") {
		t.Fatalf("after 5 ambiguous answers in a row: %+v, want an outage saying so", st)
	}
	// Resumed half-open: the next ambiguous answer pauses again at once.
	f.resume()
	if !f.halfOpen.Load() {
		t.Fatal("not half-open after an outage")
	}
	amb(1, 504)
	if !f.Status().Outage {
		t.Fatal("an ambiguous answer right after resuming did not pause again")
	}
	f.resume()
	f.noteAnswer(Outcome{Class: ClassDelivered, Status: 201})
	if f.halfOpen.Load() {
		t.Error("still half-open after a delivery")
	}
}

// TestHalfOpenSendsOneAtATime: after an outage, one send goes alone; the others wait for its
// answer, and go on only if it was not another failure of the same kind.
func TestHalfOpenSendsOneAtATime(t *testing.T) {
	f := New(Config{Concurrency: 4}, nil, nil, nil, zerolog.Nop())
	for range 20 {
		f.noteAnswer(Outcome{Class: ClassTransient, Detail: "connection refused"})
	}
	f.resume()
	ctx := context.Background()
	release, wait := f.takeCanary(ctx)
	if wait {
		t.Fatal("the first send after resuming was told to wait")
	}
	got := make(chan bool, 1)
	go func() {
		r, w := f.takeCanary(ctx)
		if !w {
			r()
		}
		got <- w
	}()
	select {
	case <-got:
		t.Fatal("a second send went while the first was out")
	case <-time.After(50 * time.Millisecond):
	}
	f.noteAnswer(Outcome{Class: ClassTransient, Detail: "connection refused"}) // the canary fails: paused again
	release()
	if w := <-got; !w {
		t.Error("the second send went on although delivery paused again")
	}
}
