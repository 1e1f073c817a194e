package lease

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/test/natstest"
	"github.com/psgw/psgw/test/wait"
)

const testTTL = 2 * time.Second

func openStore(t *testing.T, url, holder string) (*Store, *queue.Queue) {
	t.Helper()
	q, err := queue.Open(t.Context(), queue.Options{
		NATSURL: url, Replicas: 3, RawMaxBytes: 1 << 20, RawMaxAge: time.Hour, OutboxMaxBytes: 1 << 20,
		DuplicateWindow: time.Minute, Logger: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	s, err := Open(t.Context(), q, holder, testTTL, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	return s, q
}

// owners tracks who runs the work of one lease, and fails on two at once.
type owners struct {
	t       *testing.T
	running atomic.Int32
	mu      sync.Mutex
	log     []string // holder that started, in order
}

func (o *owners) work(holder string) func(ctx context.Context) {
	return func(ctx context.Context) {
		if n := o.running.Add(1); n > 1 {
			o.t.Errorf("%s started the work while another holder ran it (%d running)", holder, n)
		}
		o.mu.Lock()
		o.log = append(o.log, holder)
		o.mu.Unlock()
		<-ctx.Done()
		o.running.Add(-1)
	}
}

func (o *owners) startedBy() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.log...)
}

func waitFor(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	wait.Until(t, within, what, ok)
}

// TestOneOwnerAndHandOver: two gateways on a three-node cluster ask for one lease; one runs
// the work, the other waits; when the holder stops it lets go and the other takes over at
// once, not after the TTL.
func TestOneOwnerAndHandOver(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	a, _ := openStore(t, c.NodeURL(0), "a")
	b, _ := openStore(t, c.NodeURL(1), "b")
	o := &owners{t: t}
	ctxA, stopA := context.WithCancel(t.Context())
	ctxB, stopB := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { a.Run(ctxA, "csvdrop", nil, o.work("a")) })
	waitFor(t, 5*time.Second, "held by a", func() bool { return a.Held("csvdrop") })
	standby := make(chan struct{}, 10)
	wg.Go(func() { b.Run(ctxB, "csvdrop", func() { standby <- struct{}{} }, o.work("b")) })
	<-standby
	time.Sleep(2 * testTTL) // renewals keep a's lease through several TTLs
	if b.Held("csvdrop") || !a.Held("csvdrop") {
		t.Fatal("b took a lease a keeps renewing")
	}
	if h, _ := b.HolderOf(t.Context(), "csvdrop"); h != "a" {
		t.Errorf("HolderOf: got %q, want a", h)
	}
	stopA()
	start := time.Now()
	waitFor(t, testTTL, "taken over by b before the TTL", func() bool { return b.Held("csvdrop") })
	t.Logf("hand-over after a graceful stop took %v", time.Since(start))
	if h, err := a.HolderOf(t.Context(), "csvdrop"); h != "b" {
		t.Errorf("HolderOf after the hand-over: got %q, %v; want b", h, err)
	}
	stopB()
	wg.Wait()
	// b let go: its delete marker reads as nobody.
	if h, err := a.HolderOf(t.Context(), "csvdrop"); h != "" || err != nil {
		t.Errorf("HolderOf after both let go: got %q, %v; want none", h, err)
	}
	if got := o.startedBy(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("work started by %v, want [a b]", got)
	}
}

// TestHolderDiesLeaseMoves: a holder that loses the store (killed, cut off) stops its work at
// its first failed renewal, and the other gateway takes the lease after it expires, with no
// moment where both run the work.
func TestHolderDiesLeaseMoves(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	a, qa := openStore(t, c.NodeURL(0), "a")
	b, _ := openStore(t, c.NodeURL(1), "b")
	o := &owners{t: t}
	var aStopped atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		a.Run(t.Context(), "sqlpoll", nil, func(ctx context.Context) {
			o.work("a")(ctx)
			aStopped.Store(time.Now().UnixNano())
		})
	})
	waitFor(t, 5*time.Second, "held by a", func() bool { return a.Held("sqlpoll") })
	var bStarted atomic.Int64
	ctxB, stopB := context.WithCancel(t.Context())
	wg.Go(func() {
		b.Run(ctxB, "sqlpoll", nil, func(ctx context.Context) {
			bStarted.Store(time.Now().UnixNano())
			o.work("b")(ctx)
		})
	})
	qa.Close() // a can no longer reach the store: its renewals fail
	waitFor(t, 4*testTTL, "taken over by b", func() bool { return b.Held("sqlpoll") })
	if aStopped.Load() == 0 || aStopped.Load() > bStarted.Load() {
		t.Errorf("a stopped at %d, b started at %d: want a stopped first", aStopped.Load(), bStarted.Load())
	}
	stopB()
	// a keeps trying to take the lease back until its context ends with the test.
	go func() { wg.Wait() }()
}

// TestSingleHeldAtOnce: alone on the embedded store a lease is held without asking.
func TestSingleHeldAtOnce(t *testing.T) {
	s := Single("only")
	ran := make(chan bool, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go s.Run(ctx, "csvdrop", nil, func(ctx context.Context) { ran <- s.Held("csvdrop"); <-ctx.Done() })
	select {
	case held := <-ran:
		if !held {
			t.Error("work ran without the lease held")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("work did not run")
	}
	cancel()
}

// TestSingleHolderOfOnlyWhatItHolds: alone, a lease nobody runs has no holder, so that a
// gateway's earlier run (killed, restarted) is not taken for a live one.
func TestSingleHolderOfOnlyWhatItHolds(t *testing.T) {
	s := Single("only")
	if h, err := s.HolderOf(t.Context(), "instance.gone"); err != nil || h != "" {
		t.Errorf("HolderOf a lease never run: got %q, %v; want none", h, err)
	}
}
