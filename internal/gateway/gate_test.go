package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ops"
)

// TestStoreGateRefusesNamingTheCause: until it is opened the gate stores nothing and refuses
// every record as unavailable, naming the cause the queue last gave (a failure it could not
// name reads as the store not answering yet), so that an adapter answers 503 / AE with it.
func TestStoreGateRefusesNamingTheCause(t *testing.T) {
	g := newStoreGate()
	rec := ingest.Record{Kind: ingest.KindIncident, Source: "s", Key: "k", ID: "id"}
	for _, tc := range []struct{ reported, want string }{
		{"", causeStarting}, // nothing reported yet
		{"server unreachable", "server unreachable"},
		{"no JetStream quorum", "no JetStream quorum"},
	} {
		if tc.reported != "" {
			g.wait(tc.reported)
		}
		_, err := g.Publish(context.Background(), rec)
		if !errors.Is(err, ingest.ErrUnavailable) || ingest.UnavailableCause(err) != tc.want {
			t.Errorf("reported %q: got %v (cause %q), want ErrUnavailable naming %q", tc.reported, err, ingest.UnavailableCause(err), tc.want)
		}
		if g.Cause() != tc.want {
			t.Errorf("reported %q: Cause() = %q, want %q", tc.reported, g.Cause(), tc.want)
		}
	}
	g.wait("")
	if got := g.Cause(); got != "the store does not answer yet" {
		t.Errorf("an unnamed failure: Cause() = %q", got)
	}
}

// TestFrontDoorHoldsRequestsWhileTheGatewayStarts: a request that reaches the front door
// while the gateway is still starting is held and then served by the gateway's own routes,
// never answered 503 (a script that polled /healthz and then posted got "the store is
// starting" in a CI run of test/contract; a source saw a 503 in test/cluster's rolling
// restart). A start that takes longer than the hold (a cluster that cannot be reached) is
// answered 503 naming the cause, and the health endpoints answer at once, held or not.
func TestFrontDoorHoldsRequestsWhileTheGatewayStarts(t *testing.T) {
	serve := func(hold time.Duration) (*frontHandler, *httptest.Server) {
		mux := http.NewServeMux()
		mux.HandleFunc("POST /api/v1/incidents", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
		gate := newStoreGate()
		waiting := &ops.Server{StoreWaiting: gate.Cause}
		h := newFrontHandler(mux, waiting, hold)
		waiting.WaitingRoutes(h.waiting)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return h, srv
	}
	status := func(method, url string) int {
		req, _ := http.NewRequest(method, url, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	h, srv := serve(holdEmbedded)
	got := make(chan int, 1)
	go func() { got <- status("POST", srv.URL+"/api/v1/incidents") }()
	if code := status("GET", srv.URL+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("while starting: /readyz got %d, want 503 at once (a probe never waits)", code)
	}
	select {
	case code := <-got:
		t.Fatalf("while starting: answered %d before the gateway was ready, want the request held", code)
	case <-time.After(200 * time.Millisecond): // nothing may come back: a wait for an absence
	}
	h.markReady()
	if code := <-got; code != http.StatusAccepted {
		t.Errorf("held request: got %d, want 202 from the gateway's routes once ready", code)
	}

	_, srv = serve(100 * time.Millisecond)
	start := time.Now()
	if code := status("POST", srv.URL+"/api/v1/replay"); code != http.StatusServiceUnavailable || time.Since(start) < 100*time.Millisecond {
		t.Errorf("a start longer than the hold: got %d after %v, want 503 once the hold ran out", code, time.Since(start))
	}
}
