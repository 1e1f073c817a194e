package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
)

// flaky fails its first runs, publishing one record each time, then runs until cancelled.
type flaky struct {
	deps     ingest.Deps
	failures int
	mu       sync.Mutex
	runs     int
	running  chan struct{}
}

func (f *flaky) Run(ctx context.Context) error {
	f.mu.Lock()
	f.runs++
	n := f.runs
	f.mu.Unlock()
	_, _ = f.deps.Publisher.Publish(ctx, ingest.Record{Kind: ingest.KindIncident, Source: "s", Key: "k", ID: fmt.Sprint("id", n%2), Data: []byte("x")})
	switch {
	case n <= f.failures && n == 1:
		panic("boom with patient data 9434765919")
	case n <= f.failures:
		return errors.New("source went away")
	}
	f.deps.CountRejected("parse")
	f.deps.Logger.Info().Msg("up")
	close(f.running)
	<-ctx.Done()
	return nil
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			return value(m)
		}
	}
	return -1
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

func TestRunnerRestartsWithBackoffAndCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := zerolog.New(zerolog.SyncWriter(&lockedWriter{w: &logs, mu: &mu}))
	store := adaptertest.NewStore()
	f := &flaky{failures: 2, running: make(chan struct{})}
	r, err := ingest.NewRunner(func(d ingest.Deps) (ingest.Adapter, error) {
		f.deps = d
		return f, nil
	}, ingest.Deps{Name: "flaky", Publisher: store, Logger: logger, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	r.BackoffMin, r.BackoffMax = time.Millisecond, 4*time.Millisecond
	if got := r.Status().State; got != ingest.StateStarting {
		t.Errorf("state before Run: got %q, want starting", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	select {
	case <-f.running:
	case <-time.After(10 * time.Second):
		t.Fatal("adapter was not restarted into a good run")
	}
	st := r.Status()
	if st.State != ingest.StateRunning || st.Restarts != 2 || st.Records != 2 || st.Duplicates != 1 || st.Rejected != 1 {
		t.Errorf("status: got %+v, want running, 2 restarts, 2 records, 1 duplicate, 1 rejected", st)
	}
	if st.Errors != 2 || st.LastError == "" || st.LastErrorAt.IsZero() {
		t.Errorf("status errors: got %d %q, want 2 and the last error", st.Errors, st.LastError)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"psgw_ingest_records_total", map[string]string{"adapter": "flaky"}, 2},
		{"psgw_ingest_duplicates_total", map[string]string{"adapter": "flaky"}, 1},
		{"psgw_ingest_restarts_total", map[string]string{"adapter": "flaky"}, 2},
		{"psgw_ingest_errors_total", map[string]string{"adapter": "flaky", "reason": "run"}, 2},
		{"psgw_ingest_errors_total", map[string]string{"adapter": "flaky", "reason": "parse"}, 1},
		{"psgw_ingest_up", map[string]string{"adapter": "flaky"}, 1},
		{"psgw_ingest_publish_duration_seconds", map[string]string{"adapter": "flaky"}, 3},
	} {
		if got := counter(t, reg, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v: got %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	if got := r.Status().State; got != ingest.StateStopped {
		t.Errorf("state after cancellation: got %q, want stopped", got)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, `"adapter":"flaky"`) {
		t.Errorf("logs are not scoped with the adapter name: %s", out)
	}
	if strings.Contains(out, "9434765919") {
		t.Errorf("a panic value reached the log: %s", out)
	}
}

func TestRunnerPublishFailuresAreCountedByReason(t *testing.T) {
	reg := prometheus.NewRegistry()
	store := adaptertest.NewStore()
	store.Fail(fmt.Errorf("%w: down", ingest.ErrUnavailable))
	var pub ingest.Publisher
	r, err := ingest.NewRunner(func(d ingest.Deps) (ingest.Adapter, error) {
		pub = d.Publisher
		return nopAdapter{}, nil
	}, ingest.Deps{Name: "a", Publisher: store, Logger: zerolog.Nop(), Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	_, err = pub.Publish(context.Background(), ingest.Record{ID: "x"})
	if !errors.Is(err, ingest.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable passed through", err)
	}
	store.Fail(errors.New("bad record"))
	_, _ = pub.Publish(context.Background(), ingest.Record{ID: "y"})
	if got := counter(t, reg, "psgw_ingest_errors_total", map[string]string{"reason": "unavailable"}); got != 1 {
		t.Errorf("unavailable errors: got %v, want 1", got)
	}
	if got := counter(t, reg, "psgw_ingest_errors_total", map[string]string{"reason": "publish"}); got != 1 {
		t.Errorf("publish errors: got %v, want 1", got)
	}
	if got := r.Status().Errors; got != 2 {
		t.Errorf("status errors: got %d, want 2", got)
	}
}

func TestRunnersShareOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, name := range []string{"one", "two"} {
		if _, err := ingest.NewRunner(nopFactory, ingest.Deps{Name: name, Publisher: adaptertest.NewStore(), Metrics: reg}); err != nil {
			t.Fatalf("runner %s: %v", name, err)
		}
	}
	if _, err := ingest.NewRunner(nopFactory, ingest.Deps{Name: "nil-registry", Publisher: adaptertest.NewStore()}); err != nil {
		t.Fatalf("nil registerer: %v", err)
	}
}

func TestNewRunnerRefusesBadDeps(t *testing.T) {
	if _, err := ingest.NewRunner(nopFactory, ingest.Deps{Publisher: adaptertest.NewStore()}); err == nil {
		t.Error("no name: got no error")
	}
	if _, err := ingest.NewRunner(nopFactory, ingest.Deps{Name: "x"}); err == nil {
		t.Error("no publisher: got no error")
	}
	failing := func(ingest.Deps) (ingest.Adapter, error) { return nil, errors.New("bad settings") }
	if _, err := ingest.NewRunner(failing, ingest.Deps{Name: "x", Publisher: adaptertest.NewStore()}); err == nil || !strings.Contains(err.Error(), "bad settings") {
		t.Errorf("factory error: got %v, want it passed through", err)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestRunnerStatusShowsRefusals: refusals (HL7 ARs, quarantined CSV rows, 4xx) show on the
// adapter's status with their count, their reasons and the latest one.
func TestRunnerStatusShowsRefusals(t *testing.T) {
	var deps ingest.Deps
	r, err := ingest.NewRunner(func(d ingest.Deps) (ingest.Adapter, error) {
		deps = d
		return nopAdapter{}, nil
	}, ingest.Deps{Name: "a", Publisher: adaptertest.NewStore(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st.LastRejection != "" || !st.LastRejectionAt.IsZero() || st.Rejected != 0 {
		t.Errorf("before any refusal: got %+v, want none", st)
	}
	before := time.Now().UTC()
	deps.CountRejected("parse")
	deps.CountRejected("parse")
	deps.CountRejected("row_ragged")
	st := r.Status()
	if st.Rejected != 3 || st.LastRejection != "row_ragged" || st.LastRejectionAt.Before(before) {
		t.Errorf("status: got rejected %d, last %q at %v; want 3, row_ragged, after %v", st.Rejected, st.LastRejection, st.LastRejectionAt, before)
	}
	if got, want := fmt.Sprint(st.RejectedByReason), "map[parse:2 row_ragged:1]"; got != want {
		t.Errorf("rejected by reason: got %s, want %s", got, want)
	}
	st.RejectedByReason["parse"] = 99 // a snapshot: the runner's own map is not shared
	if got := r.Status().RejectedByReason["parse"]; got != 2 {
		t.Errorf("after changing a snapshot: got %d, want 2", got)
	}
	b, _ := json.Marshal(r.Status())
	for _, key := range []string{`"rejected":3`, `"last_rejection":"row_ragged"`, `"last_rejection_at":`, `"rejected_by_reason":{"parse":2,"row_ragged":1}`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("status JSON %s lacks %s", b, key)
		}
	}
}

// TestRunnerCountsPublishTimeouts: a publish that ran out of time was answered "retry later"
// (AE, 503), so it is counted and shown, as unavailable; one abandoned because its caller was
// cancelled is not.
func TestRunnerCountsPublishTimeouts(t *testing.T) {
	reg := prometheus.NewRegistry()
	store := adaptertest.NewStore()
	store.Hold()
	defer store.Release()
	var pub ingest.Publisher
	r, err := ingest.NewRunner(func(d ingest.Deps) (ingest.Adapter, error) {
		pub = d.Publisher
		return nopAdapter{}, nil
	}, ingest.Deps{Name: "a", Publisher: store, Logger: zerolog.Nop(), Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := pub.Publish(ctx, ingest.Record{ID: "x"}); err == nil {
		t.Fatal("held publish with a deadline: got no error")
	}
	gone, cancelGone := context.WithCancel(context.Background())
	cancelGone()
	_, _ = pub.Publish(gone, ingest.Record{ID: "y"})
	if got := counter(t, reg, "psgw_ingest_errors_total", map[string]string{"reason": "unavailable"}); got != 1 {
		t.Errorf("unavailable errors: got %v, want 1 (the timeout, not the cancellation)", got)
	}
	if st := r.Status(); st.Errors != 1 || st.LastError == "" {
		t.Errorf("status: got %d errors, last %q; want 1 and the timeout", st.Errors, st.LastError)
	}
}
