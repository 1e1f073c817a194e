package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/internal/supervise"
	"github.com/psgw/psgw/ops"
	"github.com/psgw/psgw/test/wait"
)

// syncBuffer is a log sink safe for the supervisor's goroutine and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSupervisorRestartsWithCappedBackoff: a stage that keeps failing is run again after
// 10, 20, 40, 40, 40 ms (doubling, capped), each failure logged once with its error; it is
// reported restarting in between and running once it runs; a stage that just runs logs
// nothing; stopping ends both.
func TestSupervisorRestartsWithCappedBackoff(t *testing.T) {
	var logs syncBuffer
	s := newSupervisor(zerolog.New(&logs), Options{StageBackoff: 10 * time.Millisecond, StageBackoffMax: 40 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	const failures = 5
	var calls atomic.Int32
	running := make(chan struct{})
	goStage(ctx, &wg, s, "flaky", func(ctx context.Context) error {
		n := calls.Add(1)
		if n <= failures {
			return fmt.Errorf("failure %d", n)
		}
		close(running)
		<-ctx.Done()
		return nil
	})
	goStage(ctx, &wg, s, "steady", func(ctx context.Context) error { <-ctx.Done(); return nil })

	select {
	case <-running:
	case <-time.After(10 * time.Second):
		t.Fatalf("the stage was run %d times, want it running after %d failures", calls.Load(), failures)
	}
	var delays []float64
	for line := range strings.Lines(logs.String()) {
		var rec struct {
			Level     string  `json:"level"`
			Stage     string  `json:"stage"`
			Error     string  `json:"error"`
			RestartIn float64 `json:"restart_in"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Stage != "flaky" {
			t.Errorf("got a log line for stage %q, want none for a stage that runs normally: %s", rec.Stage, line)
		}
		if rec.Level == "error" {
			if rec.Error != fmt.Sprintf("failure %d", len(delays)+1) {
				t.Errorf("got logged error %q, want failure %d", rec.Error, len(delays)+1)
			}
			delays = append(delays, rec.RestartIn)
		}
	}
	if diff := cmp.Diff([]float64{10, 20, 40, 40, 40}, delays); diff != "" {
		t.Errorf("restart delays in ms (-want +got):\n%s", diff)
	}

	got := s.Stages()
	if len(got) != 2 {
		t.Fatalf("got %d stages, want 2", len(got))
	}
	if f := got[0]; f.Name != "flaky" || f.State != ops.StageRunning || f.Restarts != failures || f.LastError != "failure 5" || !f.DownSince.IsZero() {
		t.Errorf("flaky stage: got %+v, want running, %d restarts, last error failure 5", f, failures)
	}
	if st := got[1]; st.State != ops.StageRunning || st.Restarts != 0 || st.LastError != "" {
		t.Errorf("steady stage: got %+v, want running with no restarts", st)
	}

	cancel()
	wg.Wait()
	for _, st := range s.Stages() {
		if st.State != ops.StageStopped {
			t.Errorf("stage %s after stop: got %s, want stopped", st.Name, st.State)
		}
	}
}

// TestSupervisorReportsDownStage: while a stage waits to be restarted it is reported
// restarting, with its error and when it runs again; a Run that returns nil early counts as
// a failure too.
func TestSupervisorReportsDownStage(t *testing.T) {
	s := newSupervisor(zerolog.Nop(), Options{StageBackoff: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	goStage(ctx, &wg, s, "quitter", func(context.Context) error { return nil })
	wait.For(t, 10*time.Second, "the stage restarting", func() (bool, string) {
		st := s.Stages()[0]
		return st.State == ops.StageRestarting, fmt.Sprintf("%+v", st)
	})
	st := s.Stages()[0]
	if !st.Down() || st.LastError != supervise.ErrReturned.Error() || st.NextRestartAt.Sub(st.DownSince) != time.Hour {
		t.Errorf("got %+v, want down with %q and a restart an hour after it stopped", st, supervise.ErrReturned)
	}
	cancel()
	wg.Wait()
	if st := s.Stages()[0]; st.State != ops.StageStopped || !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("after stop: got %+v, want stopped", st)
	}
}

// goStage adds a stage to s and runs it in wg until ctx ends, as the gateway's group does.
func goStage(ctx context.Context, wg *sync.WaitGroup, s *supervisor, name string, run func(context.Context) error) {
	supervised := s.add(name, run)
	wg.Go(func() { _ = supervised(ctx) })
}
