package backoff

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestCeiling(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    Backoff
		want []time.Duration // for n = 1, 2, …
	}{
		{"doubling, capped", Backoff{Initial: time.Second, Max: 5 * time.Second},
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"first above the cap", Backoff{Initial: time.Minute, Max: time.Second},
			[]time.Duration{time.Second, time.Second}},
		{"linear", Backoff{Initial: time.Millisecond, Max: 3 * time.Millisecond, Linear: true},
			[]time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 3 * time.Millisecond}},
		{"no cap waits nothing", Backoff{Initial: time.Second}, []time.Duration{0, 0}},
		{"no first delay waits nothing", Backoff{Max: time.Second}, []time.Duration{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, want := range tc.want {
				if got := tc.b.Ceiling(i + 1); got != want {
					t.Errorf("Ceiling(%d): got %v, want %v", i+1, got, want)
				}
			}
		})
	}
}

func TestCeilingBelowOneIsTheFirst(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: time.Minute}
	for _, n := range []int{0, -1, math.MinInt} {
		if got := b.Ceiling(n); got != time.Second {
			t.Errorf("Ceiling(%d): got %v, want 1s", n, got)
		}
	}
}

func TestCeilingNeverOverflows(t *testing.T) {
	for _, b := range []Backoff{
		{Initial: math.MaxInt64/2 + 1, Max: math.MaxInt64},
		{Initial: math.MaxInt64 - 1, Max: math.MaxInt64, Linear: true},
		{Initial: 3, Max: math.MaxInt64},
	} {
		for _, n := range []int{1, 2, 3, 64, 65, 1000, math.MaxInt} {
			if got := b.Ceiling(n); got <= 0 || got > b.Max {
				t.Errorf("%+v Ceiling(%d): got %v, want in (0, Max]", b, n, got)
			}
			if got := (Backoff{Initial: b.Initial, Max: b.Max, Jitter: true}).Delay(n); got < 0 {
				t.Errorf("%+v Delay(%d) with jitter: got %v, want ≥ 0", b, n, got)
			}
		}
	}
}

func TestDelayWithoutJitterIsTheCeilingPlusFloor(t *testing.T) {
	b := Backoff{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond, Floor: time.Millisecond}
	for n, want := range []time.Duration{11, 21, 41, 41} {
		if got := b.Delay(n + 1); got != want*time.Millisecond {
			t.Errorf("Delay(%d): got %v, want %v", n+1, got, want*time.Millisecond)
		}
	}
}

// TestJitterSpreadsOverTheWholeRange: full jitter draws from [0, ceiling], so a thousand draws
// land in both the lowest and the highest tenth of it.
func TestJitterSpreadsOverTheWholeRange(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: time.Second, Jitter: true}
	var low, high bool
	for range 1000 {
		d := b.Delay(1)
		low = low || d < 100*time.Millisecond
		high = high || d > 900*time.Millisecond
	}
	if !low || !high {
		t.Errorf("1000 jittered delays: got one under 100ms %v and one over 900ms %v, want both", low, high)
	}
}

// TestBoundsProperty checks, over random policies and failure counts, what every caller
// relies on: a ceiling is never above Max nor below the first ceiling (when there is a
// cap), never shrinks as failures grow, and a delay lies in [Floor, Floor + ceiling].
func TestBoundsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	dur := func() time.Duration {
		switch r.IntN(4) {
		case 0:
			return time.Duration(r.Int64N(10)) // tiny, zero included
		case 1:
			return time.Duration(r.Int64()) // anything up to MaxInt64
		default:
			return time.Duration(r.Int64N(int64(time.Hour)))
		}
	}
	for range 20000 {
		b := Backoff{Initial: dur(), Max: dur(), Linear: r.IntN(2) == 0, Jitter: r.IntN(2) == 0,
			Floor: time.Duration(r.Int64N(int64(time.Second)))}
		n := 1 + r.IntN(100)
		if r.IntN(10) == 0 {
			n = r.Int()
		}
		c, next := b.Ceiling(n), b.Ceiling(n+1)
		if c < 0 || c > max(b.Max, 0) {
			t.Fatalf("%+v Ceiling(%d) = %v, want in [0, Max]", b, n, c)
		}
		if n < math.MaxInt && next < c {
			t.Fatalf("%+v Ceiling(%d) = %v > Ceiling(%d) = %v, want non-decreasing", b, n, c, n+1, next)
		}
		if first := b.Ceiling(1); b.Initial > 0 && b.Max > 0 && first != min(b.Initial, b.Max) {
			t.Fatalf("%+v Ceiling(1) = %v, want min(Initial, Max)", b, first)
		}
		d := b.Delay(n)
		if d < b.Floor || d > b.Floor+c {
			t.Fatalf("%+v Delay(%d) = %v, want in [%v, %v]", b, n, d, b.Floor, b.Floor+c)
		}
		if !b.Jitter && d != b.Floor+c {
			t.Fatalf("%+v Delay(%d) = %v, want exactly Floor + ceiling %v without jitter", b, n, d, b.Floor+c)
		}
	}
}

// TestSameAsTheFormulasItReplaced checks the ceilings against the formulas each package
// wrote out for itself before this one (forwarder's retry, the outage probe, the patients
// stage's retry, the pull adapters' poll after a failure), over random settings.
func TestSameAsTheFormulasItReplaced(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		initial := time.Duration(1 + r.Int64N(int64(10*time.Minute)))
		maxD := time.Duration(1 + r.Int64N(int64(time.Hour)))
		n := 1 + r.IntN(40)

		// forwarder.backoff, before jitter
		ceil := initial
		for i := 1; i < n && ceil < maxD; i++ {
			ceil *= 2
		}
		if want, got := min(ceil, maxD), (Backoff{Initial: initial, Max: maxD}).Ceiling(n); got != want {
			t.Fatalf("forwarder initial %v max %v attempt %d: got %v, want %v", initial, maxD, n, got, want)
		}

		// patients.retryDelay
		if want, got := min(time.Second<<min(n-1, 5), 30*time.Second), (Backoff{Initial: time.Second, Max: 30 * time.Second}).Ceiling(n); got != want {
			t.Fatalf("patients delivery %d: got %v, want %v", n, got, want)
		}

		// csvdrop and sqlpoll after failures consecutive failed polls
		poll, failures := time.Duration(1+r.Int64N(int64(10*time.Minute))), n
		if r.IntN(2) == 0 {
			poll = time.Duration(1 + r.Int64N(int64(time.Second)))
		}
		want := min(poll<<min(failures, 8), max(time.Minute, poll))
		if got := (Backoff{Initial: poll, Max: min(poll<<8, max(time.Minute, poll))}).Ceiling(failures + 1); got != want {
			t.Fatalf("poll %v after %d failures: got %v, want %v", poll, failures, got, want)
		}
	}
}

func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep: got %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep with a cancelled context: got %v, want context.Canceled", err)
	}
}
