package supervise

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/psgw/psgw/internal/backoff"
)

// TestRestartsWithBackoffUntilItRuns: a part that fails four times is run again after the
// backoff's delays, reported with each error, and counted as restarted four times once it runs.
func TestRestartsWithBackoffUntilItRuns(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu     sync.Mutex
		waits  []time.Duration
		errs   []string
		calls  int
		runs   = make(chan struct{})
		restar int
	)
	s := &Supervisor{
		Run: func(ctx context.Context) error {
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			if n <= 4 {
				return fmt.Errorf("failure %d", n)
			}
			close(runs)
			<-ctx.Done()
			return ctx.Err()
		},
		Backoff: backoff.Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond},
		Failed: func(err error, wait time.Duration) {
			mu.Lock()
			waits, errs = append(waits, wait), append(errs, err.Error())
			mu.Unlock()
		},
		Restarted: func() { mu.Lock(); restar++; mu.Unlock() },
	}
	done := make(chan struct{})
	go func() { s.Supervise(ctx); close(done) }()
	select {
	case <-runs:
	case <-time.After(10 * time.Second):
		t.Fatal("the part never ran after its failures")
	}
	mu.Lock()
	if diff := cmp.Diff([]time.Duration{1, 2, 4, 4}, scale(waits)); diff != "" {
		t.Errorf("waits in ms (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"failure 1", "failure 2", "failure 3", "failure 4"}, errs); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if restar != 4 {
		t.Errorf("Restarted called %d times, want 4", restar)
	}
	mu.Unlock()
	if st := s.Status(); st.State != Running || st.Restarts != 4 || st.LastError != "failure 4" || !st.DownSince.IsZero() || !st.NextRestartAt.IsZero() {
		t.Errorf("got %+v, want running, 4 restarts, last error failure 4, not down", st)
	}
	cancel()
	<-done
	if st := s.Status(); st.State != Stopped {
		t.Errorf("after cancel: got state %q, want %q", st.State, Stopped)
	}
}

func scale(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d / time.Millisecond
	}
	return out
}

// TestReportsDownWhileWaiting: a Run that returns nil early is a failure (ErrReturned); while
// the part waits it is reported restarting, with when it stopped and when it runs again; a
// cancel during the wait stops it without running it again.
func TestReportsDownWhileWaiting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	failed := make(chan error, 1)
	calls := 0
	s := &Supervisor{
		Run:     func(context.Context) error { calls++; return nil },
		Backoff: backoff.Backoff{Initial: time.Hour, Max: time.Hour},
		Failed:  func(err error, _ time.Duration) { failed <- err },
	}
	done := make(chan struct{})
	go func() { s.Supervise(ctx); close(done) }()
	if err := <-failed; !errors.Is(err, ErrReturned) {
		t.Errorf("got error %v, want ErrReturned", err)
	}
	st := s.Status()
	if st.State != Restarting || st.LastError != ErrReturned.Error() || st.NextRestartAt.Sub(st.DownSince) != time.Hour {
		t.Errorf("got %+v, want restarting with ErrReturned and a restart an hour after it stopped", st)
	}
	cancel()
	<-done
	if st := s.Status(); st.State != Stopped || !st.NextRestartAt.IsZero() || calls != 1 {
		t.Errorf("after cancel: got %+v after %d runs, want stopped after 1 run with no restart pending", st, calls)
	}
}

// TestLongRunStartsTheBackoffOver: a part that ran for at least Backoff.Max before failing
// waits the first delay again, not the longest.
func TestLongRunStartsTheBackoffOver(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits []time.Duration
	calls := 0
	s := &Supervisor{
		Run: func(ctx context.Context) error {
			calls++
			switch calls {
			case 1, 2:
				return errors.New("quick failure")
			case 3:
				time.Sleep(20 * time.Millisecond) // a run that lasted longer than Backoff.Max
				return errors.New("failure after a long run")
			}
			cancel()
			return nil
		},
		Backoff: backoff.Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond},
		Failed:  func(_ error, wait time.Duration) { waits = append(waits, wait) },
	}
	s.Supervise(ctx)
	if diff := cmp.Diff([]time.Duration{1, 2, 1}, scale(waits)); diff != "" {
		t.Errorf("waits in ms (-want +got):\n%s", diff)
	}
}
