// Package gwtest runs a real gateway in the test process, on an embedded JetStream in a
// folder of the test's, for the end-to-end tests: the tests' one copy of the configuration
// such a gateway gets and of starting, stopping and restarting it. Only tests import it.
package gwtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/internal/gateway"
)

// Config is a test gateway's configuration with its data in dataDir, delivering to the
// national service at baseURL with key: the API on a free loopback port, no MLLP listener, a
// one-second sync, and backoffs short enough for a test to see several retries.
func Config(dataDir, baseURL, key string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config).Addr = ""
	cfg.Queue.Sync = "1s"
	cfg.National.BaseURL = baseURL
	cfg.National.SubscriptionKey = key
	cfg.National.BackoffInitial = 20 * time.Millisecond
	cfg.National.BackoffMax = 200 * time.Millisecond
	cfg.National.Timeout = 5 * time.Second
	return cfg
}

// Gateway is a gateway run in the test process. Start, Stop and Restart may be called any
// number of times; the test's cleanup stops it.
type Gateway struct {
	t     testing.TB
	level zerolog.Level
	// Cfg is the configuration each Start uses: a test may change it between a Stop and a
	// Start.
	Cfg config.Config
	// GW is the running gateway, nil while stopped.
	GW *gateway.Gateway
	// Base is the API's base URL, http://host:port.
	Base string
}

// New validates cfg and returns a gateway to start with it, stopped when the test ends. With
// -v it logs at level to stderr; else it logs nothing.
func New(t testing.TB, cfg config.Config, level zerolog.Level) *Gateway {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	g := &Gateway{t: t, Cfg: cfg, level: level}
	t.Cleanup(g.Stop)
	return g
}

// Logger is the logger the gateway is given, for a test that starts one itself.
func (g *Gateway) Logger() zerolog.Logger {
	if testing.Verbose() {
		return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(g.level)
	}
	return zerolog.Nop()
}

// Start starts the gateway with Cfg.
func (g *Gateway) Start() {
	g.t.Helper()
	// Secret files are polled often, so a test that rewrites one sees it applied quickly.
	gw, err := gateway.Start(context.Background(), g.Cfg, gateway.Options{Logger: g.Logger(), SecretsPollInterval: 50 * time.Millisecond})
	if err != nil {
		g.t.Fatalf("starting gateway: %v", err)
	}
	g.GW, g.Base = gw, "http://"+gw.HTTPAddr()
}

// Stop stops the gateway, giving in-flight work 30 s.
func (g *Gateway) Stop() {
	if g.GW == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g.GW.Stop(ctx)
	g.GW = nil
}

// Restart stops the gateway and starts it again on the same data.
func (g *Gateway) Restart() {
	g.t.Helper()
	g.Stop()
	g.Start()
}
