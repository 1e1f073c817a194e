package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/test/wait"
)

// TestHeldWithoutEndpoint: with no national endpoint, incidents are accepted and held, the
// status page says why, and once an endpoint is configured they are delivered.
func TestHeldWithoutEndpoint(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.National.BaseURL = ""
		c.National.SubscriptionKey = ""
	})
	if r := h.post(incident("HELD-1", 1, describe("HELD-1", 1))); r.Status != http.StatusAccepted {
		t.Fatalf("got %d, want 202", r.Status)
	}
	wait.For(t, 10*time.Second, "held state", func() (bool, string) {
		rec, _ := h.record("datix", "HELD-1")
		return rec.State == "held", string(rec.State)
	})
	rec, _ := h.record("datix", "HELD-1")
	if !strings.Contains(historyText(rec.History), "no national endpoint configured") {
		t.Errorf("history does not say why it is held: %s", historyText(rec.History))
	}
	resp, err := http.Get(h.Base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), gateway.NoEndpointReason) {
		t.Errorf("status page does not say why events are held")
	}
	if st := h.sim.Stats(); st.Requests != 0 {
		t.Errorf("simulator saw %d requests, want 0 while no endpoint is configured", st.Requests)
	}

	// Configure the endpoint and restart: the held incident is delivered.
	h.Cfg.National.BaseURL = h.simSrv.URL
	h.Cfg.National.SubscriptionKey = simKey
	h.Restart()
	wait.For(t, 15*time.Second, "delivery after the endpoint is configured", func() (bool, string) {
		rec, _ := h.record("datix", "HELD-1")
		return rec.State == "delivered", string(rec.State)
	})
	if st := h.sim.Stats(); st.Creates != 1 {
		t.Errorf("simulator counted %d creates, want 1", st.Creates)
	}
}
