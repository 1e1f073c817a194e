package ops_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ops"
)

// TestWaitingRoutesNameTheCause: while the gateway waits for its store, a Server with no
// queue and no ledger answers: /healthz 200, /readyz 503 naming the cause, the status API and
// page 200 saying what it waits for, and a route that needs the ledger 503 naming it; none
// of them touches the missing store (a nil Queue or Ledger would panic).
func TestWaitingRoutesNameTheCause(t *testing.T) {
	cfg := config.Default()
	auth, err := ops.NewAuth(cfg.Ops, cfg.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	s := &ops.Server{Auth: auth, Log: zerolog.Nop(), StoreWaiting: func() string { return "no JetStream quorum" }}
	mux := http.NewServeMux()
	s.WaitingRoutes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, tc := range []struct {
		path     string
		wantCode int
		want     string
	}{
		{"/healthz", 200, `"ok"`},
		{"/readyz", 503, "jetstream unavailable: no JetStream quorum"},
		{"/api/v1/status", 200, "Waiting for the store: no JetStream quorum"},
		{"/", 200, "Waiting for the store: no JetStream quorum"},
		{"/api/v1/incidents/datix/INC-1", 503, "waiting for its store: no JetStream quorum"},
		{"/metrics", 503, "no JetStream quorum"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantCode || !strings.Contains(string(b), tc.want) {
			t.Errorf("GET %s: got %d %.200s, want %d containing %q", tc.path, resp.StatusCode, b, tc.wantCode, tc.want)
		}
	}
}
