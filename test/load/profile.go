package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/sim"
)

// profileEndToEnd runs the end-to-end scenario with the gateway in this process and writes CPU
// and blocking profiles to dir, for `go tool pprof`.
func profileEndToEnd(ctx context.Context, o options, dir string) error {
	s, srv, err := simServer(sim.Faults{})
	if err != nil {
		return err
	}
	defer srv.Close()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.HTTP.Addr = freeAddr()
	cfg.MLLP.Addr = ""
	cfg.Queue.Sync = o.sync
	cfg.National.BaseURL = srv.URL
	cfg.National.SubscriptionKey = "load-key"
	cfg.National.Concurrency = 32
	g, err := gateway.Start(ctx, cfg, gateway.Options{Logger: zerolog.Nop()})
	if err != nil {
		return err
	}
	defer g.Stop(context.Background())
	runtime.SetBlockProfileRate(int(time.Millisecond))
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	start := time.Now()
	if _, _, err := postAll(o, cfg.HTTP.Addr, "P-", o.n); err != nil {
		return err
	}
	posted := time.Since(start)
	for s.Stats().Creates < o.n && time.Since(start) < o.timeout {
		time.Sleep(50 * time.Millisecond)
	}
	pprof.StopCPUProfile()
	cpu.Close()
	blk, err := os.Create(filepath.Join(dir, "block.pprof"))
	if err != nil {
		return err
	}
	_ = pprof.Lookup("block").WriteTo(blk, 0)
	blk.Close()
	fmt.Printf("profiled end-to-end: %d incidents posted in %s, delivered in %s; profiles in %s\n", o.n, posted.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), dir)
	return nil
}
