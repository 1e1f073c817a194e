package sim

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// clock is a settable time source for tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// wantDropped checks the client saw the connection die instead of an answer.
func wantDropped(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("got an answer, want a dropped connection")
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("got %v, want connection reset or EOF", err)
	}
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Faults = Faults{RateLimitRate: 1, RetryAfter: 1500 * time.Millisecond} })
	r := h.post(payload(t, "5"))
	wantAPIM(t, r, http.StatusTooManyRequests, "Rate limit is exceeded. Try again in 2 seconds.")
	if got := r.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After: got %q, want 2", got)
	}
	h.sim.SetFaults(Faults{RateLimitRate: 1})
	if got := h.post(payload(t, "5")).header.Get("Retry-After"); got != "1" {
		t.Errorf("default Retry-After: got %q, want 1", got)
	}
	if st := h.sim.Stats(); st.Faults[FaultRateLimit] != 2 || st.Events != 0 {
		t.Errorf("stats: got %+v", st)
	}
}

func TestStorm(t *testing.T) {
	clk := &clock{now: time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)}
	h := newHarness(t, func(o *Options) {
		o.Now = clk.Now
		o.Faults = Faults{StormUntil: clk.Now().Add(10 * time.Second), RetryAfter: 5 * time.Second}
	})
	for range 3 {
		r := h.post(payload(t, "5"))
		wantAPIM(t, r, http.StatusTooManyRequests, "")
		if r.header.Get("Retry-After") != "5" {
			t.Errorf("Retry-After: got %q, want 5", r.header.Get("Retry-After"))
		}
	}
	clk.Advance(10 * time.Second) // the storm ends at StormUntil
	if r := h.post(payload(t, "5")); r.status != http.StatusCreated {
		t.Fatalf("after the storm: got %d, want 201", r.status)
	}
	// StormFor starts a storm from the simulator's clock.
	h.sim.SetFaults(Faults{StormFor: time.Minute})
	if got, want := h.sim.Faults().StormUntil, clk.Now().Add(time.Minute); !got.Equal(want) {
		t.Errorf("StormUntil: got %v, want %v", got, want)
	}
	wantAPIM(t, h.post(payload(t, "5")), http.StatusTooManyRequests, "")
	if st := h.sim.Stats(); st.Faults[FaultStorm] != 4 || st.Creates != 1 {
		t.Errorf("stats: got %+v", st)
	}
}

func TestServerErrors(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Faults = Faults{ErrorRate: 1} })
	seen := map[int]int{}
	for range 40 {
		r := h.post(payload(t, "5"))
		seen[r.status]++
		switch r.status {
		case http.StatusInternalServerError:
			wantOutcome(t, r, r.status, "", "sim-internal-error")
		case http.StatusBadGateway:
			if string(r.body) != "Bad Gateway" {
				t.Errorf("502 body: got %q", r.body)
			}
		case http.StatusServiceUnavailable:
			wantAPIM(t, r, r.status, "Service Unavailable")
		default:
			t.Fatalf("status: got %d, want 500, 502 or 503", r.status)
		}
	}
	if len(seen) != 3 {
		t.Errorf("statuses seen: got %v, want all of 500, 502, 503", seen)
	}
	if st := h.sim.Stats(); st.Faults[FaultError] != 40 || st.Events != 0 || st.Creates != 0 {
		t.Errorf("stats: got %+v", st)
	}
}

func TestFaultDiceAreReproducible(t *testing.T) {
	run := func(seed int64) string {
		h := newHarness(t, func(o *Options) { o.Seed = seed; o.Faults = Faults{ErrorRate: 0.3, RateLimitRate: 0.3} })
		var b strings.Builder
		for range 30 {
			b.WriteString(http.StatusText(h.post(payload(t, "6")).status)[:1])
		}
		return b.String()
	}
	a, b, c := run(0), run(0), run(42)
	if a != b {
		t.Errorf("same seed, different faults: %s vs %s", a, b)
	}
	if a == c {
		t.Errorf("different seeds, same faults: %s", a)
	}
	if !strings.Contains(a, "C") || !strings.Contains(a, "T") {
		t.Errorf("want some 201 (C) and some 429 (T): %s", a)
	}
}

func TestReset(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Faults = Faults{ResetRate: 1} })
	_, err := h.send(http.MethodPost, collectionPath, marshal(t, payload(t, "5")), nil)
	// SO_LINGER 0 turns the close into an RST, which the client sees as such.
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("got %v, want connection reset by peer", err)
	}
	if st := h.sim.Stats(); st.Faults[FaultReset] != 1 || st.Creates != 0 || st.Events != 0 {
		t.Errorf("stats: got %+v", st)
	}
	if len(h.sim.Events()) != 0 {
		t.Error("a reset request was stored")
	}
}

func TestLostResponse(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Faults = Faults{LostResponseRate: 1} })
	_, err := h.send(http.MethodPost, collectionPath, marshal(t, payload(t, "5")), nil)
	wantDropped(t, err)
	evs := h.sim.Events()
	if len(evs) != 1 {
		t.Fatalf("events: got %d, want 1 (stored before the answer was lost)", len(evs))
	}

	// An amendment whose answer is lost is stored too.
	var res map[string]any
	if err := json.Unmarshal(evs[0].Resource, &res); err != nil {
		t.Fatal(err)
	}
	_, err = h.send(http.MethodPut, collectionPath+"/"+evs[0].ID, marshal(t, res), nil)
	wantDropped(t, err)
	if evs := h.sim.Events(); evs[0].VersionID != "2" {
		t.Errorf("versionId after a lost PUT: got %s, want 2", evs[0].VersionID)
	}
	st := h.sim.Stats()
	if st.Creates != 1 || st.Updates != 1 || st.LostResponses != 2 || st.Faults[FaultLostResponse] != 2 {
		t.Errorf("stats: got %+v", st)
	}

	// Refused payloads are answered: there is nothing stored to lose.
	bad := payload(t, "5")
	bad["telecom"] = []any{}
	wantOutcome(t, h.post(bad), http.StatusUnprocessableEntity, "AdverseEvent.telecom", "")
}

func TestDown(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Faults = Faults{Down: true} })
	wantAPIM(t, h.post(payload(t, "5")), http.StatusServiceUnavailable, "")
	// An outage hides everything, the key check included.
	wantAPIM(t, h.must(http.MethodGet, metadataPath, nil, map[string]string{}), http.StatusServiceUnavailable, "")

	h.sim.SetFaults(Faults{Down: true, DownMode: DownModeReset})
	_, err := h.send(http.MethodPost, collectionPath, marshal(t, payload(t, "5")), nil)
	wantDropped(t, err)

	h.sim.SetFaults(Faults{})
	if r := h.post(payload(t, "5")); r.status != http.StatusCreated {
		t.Errorf("after the outage: got %d, want 201", r.status)
	}
	if st := h.sim.Stats(); st.Faults[FaultDown] != 3 || st.Creates != 1 {
		t.Errorf("stats: got %+v", st)
	}
}

func TestLatency(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Faults = Faults{Latency: 80 * time.Millisecond} })
	start := time.Now()
	if r := h.post(payload(t, "5")); r.status != http.StatusCreated {
		t.Fatalf("status: got %d", r.status)
	}
	if took := time.Since(start); took < 80*time.Millisecond {
		t.Errorf("took %v, want at least 80ms", took)
	}

	// A client that gives up is not kept waiting, and nothing is stored for it.
	h.sim.SetFaults(Faults{Latency: time.Hour})
	h.postAndGiveUp(100 * time.Millisecond)
	h.closeSoon()
	if n := len(h.sim.Events()); n != 1 {
		t.Errorf("events: got %d, want 1", n)
	}
}

func TestFaultsSkipAdminEndpoints(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Faults = Faults{Down: true, ErrorRate: 1} })
	if r := h.must(http.MethodGet, "/_sim/stats", nil, map[string]string{}); r.status != http.StatusOK {
		t.Errorf("GET /_sim/stats while down: got %d, want 200", r.status)
	}
}

func TestFaultsJSON(t *testing.T) {
	in := `{"error_rate":0.1,"rate_limit_rate":0.2,"retry_after":"3s","latency":"250ms","reset_rate":0.05,` +
		`"lost_response_rate":0.01,"down":true,"down_mode":"reset","storm_until":"2025-03-14T09:00:00Z","storm_for":"1m"}`
	var f Faults
	if err := json.Unmarshal([]byte(in), &f); err != nil {
		t.Fatal(err)
	}
	want := Faults{ErrorRate: 0.1, RateLimitRate: 0.2, RetryAfter: 3 * time.Second, Latency: 250 * time.Millisecond,
		ResetRate: 0.05, LostResponseRate: 0.01, Down: true, DownMode: DownModeReset,
		StormUntil: time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC), StormFor: time.Minute}
	if f != want {
		t.Errorf("decoded: got %+v, want %+v", f, want)
	}
	out, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var back Faults
	if err := json.Unmarshal(out, &back); err != nil || back != want {
		t.Errorf("round trip: got %+v (%v) from %s", back, err, out)
	}
	for _, bad := range []string{`{"error_rte":0.1}`, `{"latency":"soon"}`, `{"retry_after":3}`} {
		if err := json.Unmarshal([]byte(bad), &f); err == nil {
			t.Errorf("%s: got no error", bad)
		}
	}
}

func TestBindFlags(t *testing.T) {
	var f Faults
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	f.BindFlags(fs)
	err := fs.Parse([]string{"--error-rate=0.1", "--rate-limit-rate=0.2", "--retry-after=2s", "--latency=50ms",
		"--reset-rate=0.05", "--lost-response-rate=0.01", "--down", "--down-mode=reset", "--storm=30s"})
	if err != nil {
		t.Fatal(err)
	}
	want := Faults{ErrorRate: 0.1, RateLimitRate: 0.2, RetryAfter: 2 * time.Second, Latency: 50 * time.Millisecond,
		ResetRate: 0.05, LostResponseRate: 0.01, Down: true, DownMode: DownModeReset, StormFor: 30 * time.Second}
	if f != want {
		t.Errorf("got %+v, want %+v", f, want)
	}
	if err := f.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
