package gateway

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
)

// recorder notes the events of the parts in one list, in the order they happen.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) note(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// TestGroupStartsInOrderAndStopsInReverse: nothing runs before start; parts run in the order
// they were added; stop stops the last first, and a part's run has returned before the part
// added before it is asked to stop; a stop error names its part.
func TestGroupStartsInOrderAndStopsInReverse(t *testing.T) {
	var rec recorder
	var g group
	g.log = zerolog.Nop()
	running := make(chan struct{}, 3)
	for _, name := range []string{"a", "b", "c"} {
		g.add(part{
			name: name,
			run: func(ctx context.Context) error {
				rec.note("run " + name)
				running <- struct{}{}
				<-ctx.Done()
				rec.note("ran " + name)
				return nil
			},
		})
	}
	g.add(part{name: "d", stop: func(context.Context) error { rec.note("stop d"); return errors.New("d broke") }})
	if got := rec.list(); len(got) != 0 {
		t.Fatalf("before start: got events %v, want none", got)
	}
	g.start(context.Background())
	for range 3 {
		<-running
	}
	runs := rec.list()
	slices.Sort(runs) // the goroutines run in any order; that each was started is what counts
	if diff := cmp.Diff([]string{"run a", "run b", "run c"}, runs); diff != "" {
		t.Errorf("after start (-want +got):\n%s", diff)
	}
	err := g.stop(context.Background())
	if err == nil || !strings.Contains(err.Error(), "stopping d: d broke") {
		t.Errorf("stop: got %v, want the error of d, named", err)
	}
	if diff := cmp.Diff([]string{"stop d", "ran c", "ran b", "ran a"}, rec.list()[3:]); diff != "" {
		t.Errorf("stop order (-want +got):\n%s", diff)
	}
}

// TestGroupStopReleasesPartsNeverStarted: a Start that failed half way stops the group
// without starting it; every added part's stop runs, in reverse order, and no run does.
func TestGroupStopReleasesPartsNeverStarted(t *testing.T) {
	var rec recorder
	var g group
	for _, name := range []string{"queue", "server"} {
		g.add(part{
			name: name,
			run:  func(context.Context) error { rec.note("run " + name); return nil },
			stop: func(context.Context) error { rec.note("stop " + name); return nil },
		})
	}
	if err := g.stop(context.Background()); err != nil {
		t.Errorf("stop: %v", err)
	}
	if diff := cmp.Diff([]string{"stop server", "stop queue"}, rec.list()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestGroupFrontDoorStartsFirstAndStopsFirst: the front door's parts are started by a first
// start, before the rest is even added; a second start starts only what was added since;
// stop stops the front door first (requests end before what serves them), then the rest in
// reverse order.
func TestGroupFrontDoorStartsFirstAndStopsFirst(t *testing.T) {
	var rec recorder
	var g group
	g.log = zerolog.Nop()
	running := make(chan struct{}, 4)
	add := func(name string, front bool) {
		g.add(part{name: name, front: front,
			run: func(ctx context.Context) error {
				rec.note("run " + name)
				running <- struct{}{}
				<-ctx.Done()
				return nil
			},
			stop: func(context.Context) error { rec.note("stop " + name); return nil },
		})
	}
	add("listeners", true)
	add("http", true)
	g.start(context.Background())
	<-running
	<-running
	add("queue", false)
	add("mapper", false)
	g.start(context.Background())
	<-running
	<-running
	runs := rec.list()
	if diff := cmp.Diff([]string{"run http", "run listeners"}, slices.Sorted(slices.Values(runs[:2]))); diff != "" {
		t.Errorf("first start (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"run mapper", "run queue"}, slices.Sorted(slices.Values(runs[2:]))); diff != "" {
		t.Errorf("second start, each part once (-want +got):\n%s", diff)
	}
	if err := g.stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"stop http", "stop listeners", "stop mapper", "stop queue"}, rec.list()[4:]); diff != "" {
		t.Errorf("stop order (-want +got):\n%s", diff)
	}
}
