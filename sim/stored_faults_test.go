package sim

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	poll "github.com/psgw/psgw/test/wait"
)

// TestStoredThenFaults: each stored-then fault stores the write (POST and PUT) and then
// answers in a way that does not say so, and the journal records what was done.
func TestStoredThenFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults Faults
		check  func(t *testing.T, r reply, err error)
	}{
		{"store then 504", Faults{StoreThenErrorRate: 1}, func(t *testing.T, r reply, err error) {
			if err != nil || r.status != http.StatusGatewayTimeout {
				t.Fatalf("got %d %v, want 504", r.status, err)
			}
			if r.header.Get("Location") != "" {
				t.Error("a 504 carries the stored event's Location")
			}
		}},
		{"store then 500", Faults{StoreThenErrorRate: 1, StoreThenStatus: 500}, func(t *testing.T, r reply, err error) {
			if err != nil || r.status != http.StatusInternalServerError || !strings.Contains(string(r.body), "OperationOutcome") {
				t.Fatalf("got %d %s %v, want 500 with an OperationOutcome", r.status, r.body, err)
			}
		}},
		{"store then 502", Faults{StoreThenErrorRate: 1, StoreThenStatus: 502}, func(t *testing.T, r reply, err error) {
			if err != nil || r.status != http.StatusBadGateway {
				t.Fatalf("got %d %v, want 502", r.status, err)
			}
		}},
		{"store then reset", Faults{StoreThenResetRate: 1}, func(t *testing.T, r reply, err error) {
			wantDropped(t, err)
		}},
		{"truncated body", Faults{TruncateRate: 1}, func(t *testing.T, r reply, err error) {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("got %d %v, want the body cut short (unexpected EOF)", r.status, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.Faults = tc.faults; o.Label = func(b []byte) string { return "L" } })
			r, err := h.send(http.MethodPost, collectionPath, marshal(t, payload(t, "5")), nil)
			tc.check(t, r, err)
			evs := h.sim.Events()
			if len(evs) != 1 {
				t.Fatalf("events: got %d, want 1 (stored before the faulty answer)", len(evs))
			}
			var res map[string]any
			if err := json.Unmarshal(evs[0].Resource, &res); err != nil {
				t.Fatal(err)
			}
			r, err = h.send(http.MethodPut, collectionPath+"/"+evs[0].ID, marshal(t, res), nil)
			tc.check(t, r, err)
			if v := h.sim.Events()[0].VersionID; v != "2" {
				t.Errorf("versionId after the PUT: got %s, want 2", v)
			}
			kind := map[string]string{"store then 504": FaultStoreThenError, "store then 500": FaultStoreThenError,
				"store then 502": FaultStoreThenError, "store then reset": FaultStoreThenReset, "truncated body": FaultTruncated}[tc.name]
			if st := h.sim.Stats(); st.Faults[kind] != 2 || st.Creates != 1 || st.Updates != 1 {
				t.Errorf("stats: got %+v, want 2 %s faults, 1 create, 1 update", st, kind)
			}
			reqs := waitRequests(t, h.sim, 2)
			if len(reqs) != 2 {
				t.Fatalf("journal: got %d requests, want 2", len(reqs))
			}
			for i, q := range reqs {
				if !q.Stored || q.Fault != kind || q.ID != evs[0].ID || q.Label != "L" || q.Seq != i+1 {
					t.Errorf("journal[%d]: got %+v, want stored, fault %s, id %s, label L", i, q, kind, evs[0].ID)
				}
			}
			if reqs[0].Method != http.MethodPost || reqs[1].Method != http.MethodPut {
				t.Errorf("journal methods: got %s, %s", reqs[0].Method, reqs[1].Method)
			}
		})
	}
}

// TestStoreThenSlow: the write is stored at once and answered only after StoreThenSlowFor; a
// client that times out first gets nothing, and the handler does not outlive it.
func TestStoreThenSlow(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Faults = Faults{StoreThenSlowRate: 1, StoreThenSlowFor: 150 * time.Millisecond} })
	start := time.Now()
	if r := h.post(payload(t, "5")); r.status != http.StatusCreated {
		t.Fatalf("got %d, want 201 after the delay", r.status)
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("answered after %s, want at least 150ms", took)
	}

	h.sim.SetFaults(Faults{StoreThenSlowRate: 1}) // the default: longer than any client waits
	h.postAndGiveUp(200 * time.Millisecond)
	h.closeSoon()
	if n := len(h.sim.Events()); n != 2 {
		t.Errorf("events: got %d, want 2 (both stored before the slow answer)", n)
	}
	reqs := waitRequests(t, h.sim, 2)
	if len(reqs) != 2 || reqs[0].Status != 201 || reqs[1].Status != 0 || reqs[1].Fault != FaultStoreThenSlow || !reqs[1].Stored {
		t.Errorf("journal: got %+v, want a 201 and then a stored, unanswered store_then_slow", reqs)
	}
}

func TestStoredThenFaultsValidate(t *testing.T) {
	for _, bad := range []Faults{
		{StoreThenErrorRate: 0.6, LostResponseRate: 0.5},
		{TruncateRate: 1.1},
		{StoreThenStatus: 404},
		{StoreThenSlowFor: -time.Second},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v: got no error", bad)
		}
	}
	if err := (Faults{StoreThenErrorRate: 0.5, StoreThenSlowRate: 0.2, StoreThenResetRate: 0.1, TruncateRate: 0.1, LostResponseRate: 0.1, StoreThenStatus: 599}).Validate(); err != nil {
		t.Errorf("rates summing to 1: %v", err)
	}
}

func TestStoredThenFaultsJSONAndFlags(t *testing.T) {
	want := Faults{StoreThenErrorRate: 0.1, StoreThenStatus: 502, StoreThenSlowRate: 0.2, StoreThenSlowFor: 45 * time.Second,
		StoreThenResetRate: 0.05, TruncateRate: 0.03}
	var f Faults
	in := `{"store_then_error_rate":0.1,"store_then_status":502,"store_then_slow_rate":0.2,"store_then_slow_for":"45s","store_then_reset_rate":0.05,"truncate_rate":0.03}`
	if err := json.Unmarshal([]byte(in), &f); err != nil || f != want {
		t.Errorf("decoded: got %+v (%v), want %+v", f, err, want)
	}
	out, _ := json.Marshal(want)
	var back Faults
	if err := json.Unmarshal(out, &back); err != nil || back != want {
		t.Errorf("round trip: got %+v (%v) from %s", back, err, out)
	}
	var g Faults
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	g.BindFlags(fs)
	if err := fs.Parse([]string{"--store-then-error-rate=0.1", "--store-then-status=502", "--store-then-slow-rate=0.2",
		"--store-then-slow-for=45s", "--store-then-reset-rate=0.05", "--truncate-rate=0.03"}); err != nil {
		t.Fatal(err)
	}
	if g != want {
		t.Errorf("flags: got %+v, want %+v", g, want)
	}
}

// TestJournalOfPlainRequests: answers without a fault, and faults before storing, are in the
// journal too, with what was answered.
func TestJournalOfPlainRequests(t *testing.T) {
	h := newHarness(t, nil)
	h.post(payload(t, "5"))
	h.sim.SetFaults(Faults{ErrorRate: 1})
	h.post(payload(t, "5"))
	h.sim.SetFaults(Faults{ResetRate: 1})
	_, _ = h.send(http.MethodPost, collectionPath, marshal(t, payload(t, "5")), nil)
	reqs := waitRequests(t, h.sim, 3)
	if len(reqs) != 3 {
		t.Fatalf("got %d requests, want 3", len(reqs))
	}
	if q := reqs[0]; q.Status != 201 || !q.Stored || q.Fault != "" || q.ID == "" {
		t.Errorf("plain create: %+v", q)
	}
	if q := reqs[1]; q.Status < 500 || q.Stored || q.Fault != FaultError {
		t.Errorf("error: %+v", q)
	}
	if q := reqs[2]; q.Status != 0 || q.Stored || q.Fault != FaultReset {
		t.Errorf("reset: %+v", q)
	}
	if r := h.must(http.MethodGet, "/_sim/requests", nil, map[string]string{}); r.status != 200 || !strings.Contains(string(r.body), `"fault":"reset"`) {
		t.Errorf("GET /_sim/requests: %d %s", r.status, r.body)
	}
	h.sim.Reset()
	if n := len(h.sim.Requests()); n != 0 {
		t.Errorf("after Reset: %d requests", n)
	}
}

// waitRequests waits for the journal to hold n requests: a request whose connection was
// dropped is journalled when its handler returns, which the client may not wait for.
func waitRequests(t *testing.T, s *Simulator, n int) []Request {
	t.Helper()
	poll.For(t, 5*time.Second, "the journal", func() (bool, string) {
		got := len(s.Requests())
		return got >= n, strconv.Itoa(got) + " requests"
	})
	return s.Requests()
}

// postAndGiveUp POSTs a valid payload and gives up waiting after d.
func (h *harness) postAndGiveUp(d time.Duration) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+collectionPath, strings.NewReader(string(marshal(h.t, payload(h.t, "5")))))
	req.Header.Set(keyHeader, testKey)
	req.Header.Set("Content-Type", "application/json")
	if _, err := h.client.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		h.t.Fatalf("got %v, want the client's deadline", err)
	}
}

// closeSoon closes the server, failing if a handler outlives its departed client: httptest's
// Close waits for handlers, so one still waiting would hang it.
func (h *harness) closeSoon() {
	h.t.Helper()
	done := make(chan struct{})
	go func() { h.srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		h.t.Fatal("a handler kept waiting after its client left")
	}
}
