package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/internal/gateway"
)

// TestDemoDataDirRefusedForARealEndpoint: a data directory that ran in demo mode holds demo
// incidents, which a gateway pointed at a national endpoint would send to LFPSE; such a start
// is refused, naming the data directory and what to do. Demo mode on it again is fine, and so
// is the same endpoint on a fresh directory.
func TestDemoDataDirRefusedForARealEndpoint(t *testing.T) {
	national := httptest.NewServer(http.NotFoundHandler())
	defer national.Close()
	dir := t.TempDir()
	cfgFor := func(dataDir, baseURL string) config.Config {
		cfg := testConfig(dataDir)
		cfg.National.BaseURL, cfg.National.SubscriptionKey = baseURL, "a-real-key"
		return cfg
	}
	start := func(cfg config.Config, demo bool) error {
		g, err := gateway.Start(context.Background(), cfg, gateway.Options{Demo: demo, Logger: zerolog.Nop()})
		if err == nil {
			g.Stop(context.Background())
		}
		return err
	}
	if err := start(cfgFor(dir, ""), true); err != nil {
		t.Fatalf("demo start: %v", err)
	}
	if err := start(cfgFor(dir, ""), true); err != nil {
		t.Errorf("demo again on the demo directory: %v", err)
	}
	err := start(cfgFor(dir, national.URL), false)
	if err == nil || !strings.Contains(err.Error(), "demo mode") || !strings.Contains(err.Error(), "data_dir") {
		t.Fatalf("national endpoint on a demo data_dir: got %v, want a refusal naming demo mode and data_dir", err)
	}
	if err := start(cfgFor(dir, ""), false); err != nil {
		t.Errorf("no endpoint (held, nothing sent) on the demo directory: %v", err)
	}
	if err := start(cfgFor(t.TempDir(), national.URL), false); err != nil {
		t.Errorf("national endpoint on a fresh data_dir: %v", err)
	}
}
