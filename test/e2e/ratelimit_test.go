package e2e

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/test/wait"
)

// TestRateLimitStormSpendsNoAttempts: the national service answers every POST 429 with
// Retry-After: 1 for a while (a 429 storm, contract section 4). With national.max_attempts
// at 2, every incident still ends delivered once the storm passes: a 429 spends no attempt.
// And Retry-After holds every send, not only the refused one: once a 429 has been answered,
// no POST starts within its second (a little slack for requests already on the wire).
func TestRateLimitStormSpendsNoAttempts(t *testing.T) {
	var (
		storm   atomic.Bool
		mu      sync.Mutex
		limited []time.Time // when each 429 was answered
		early   int         // POSTs that arrived within a Retry-After of a 429 already answered
	)
	storm.Store(true)
	h := frontedHarness(t, func(w http.ResponseWriter, r *http.Request, body string) bool {
		if r.Method != http.MethodPost {
			return false
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, at := range limited {
			// 200 ms of slack: a send whose request left before the 429 was read.
			if now.After(at.Add(200*time.Millisecond)) && now.Before(at.Add(time.Second-50*time.Millisecond)) {
				early++
				break
			}
		}
		if !storm.Load() {
			return false
		}
		limited = append(limited, time.Now())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"statusCode": 429, "message": "Rate limit is exceeded. Try again in 1 seconds."}`)
		return true
	}, func(c *config.Config) {
		c.National.MaxAttempts = 2
	})
	// Posted 300 ms apart, so that incidents arrive while an earlier one's Retry-After runs:
	// without the hold, their first POSTs would go straight into the storm.
	const n = 6
	pace := time.NewTicker(300 * time.Millisecond)
	defer pace.Stop()
	for i := range n {
		id := fmt.Sprintf("RATE-%d", i)
		if r := h.post(incident(id, 1, describe(id, 1))); r.Status != 202 {
			t.Fatalf("%s: got %d", id, r.Status)
		}
		<-pace.C
	}
	// Three 429s per incident on average: at least one incident met three, which with
	// max_attempts 2 would fail it if a 429 spent an attempt.
	wait.For(t, 60*time.Second, "three 429s per incident answered", func() (bool, string) {
		for i := range n {
			if rec, _ := h.record("datix", fmt.Sprintf("RATE-%d", i)); rec.State == "failed" {
				t.Fatalf("RATE-%d failed during the storm after %d attempts: %s", i, rec.Attempts, historyText(rec.History))
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return len(limited) >= 3*n, fmt.Sprint(len(limited))
	})
	storm.Store(false)
	for i := range n {
		id := fmt.Sprintf("RATE-%d", i)
		wait.For(t, 60*time.Second, id+" delivered after the storm", func() (bool, string) {
			rec, _ := h.record("datix", id)
			return rec.State == "delivered", fmt.Sprintf("%s attempts=%d %s", rec.State, rec.Attempts, historyText(rec.History))
		})
	}
	if st := h.sim.Stats(); st.Creates != n {
		t.Errorf("got %d creates, want %d", st.Creates, n)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d 429s answered for %d incidents; %d POSTs came within a Retry-After of a 429", len(limited), n, early)
	if early > 0 {
		t.Errorf("%d POSTs started within the Retry-After of a 429 already answered, want none", early)
	}
}
