package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/csvdrop"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/sim"
)

// profileRun runs one scenario (o.profileScenario: e2e, backlog, http, mllp or csv) with the
// gateway in this process and writes CPU, blocking and heap profiles to dir, for `go tool
// pprof`. The load tool's own work (clients, the simulator) is in the profiles too; filter with
// -focus, and leave the simulator's store of events out of a heap profile with -ignore 'sim\.'.
func profileRun(ctx context.Context, o options, dir string) error {
	var s *sim.Simulator
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.HTTP.Addr = freeAddr()
	cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config).Addr = ""
	cfg.Queue.Sync = o.sync
	switch o.profileScenario {
	case "e2e", "backlog":
		var srv *httptest.Server
		var err error
		s, srv, err = simServer(sim.Faults{Down: o.profileScenario == "backlog"})
		if err != nil {
			return err
		}
		defer srv.Close()
		cfg.National.BaseURL = srv.URL
		cfg.National.SubscriptionKey = "load-key"
		cfg.National.Concurrency = 32
		cfg.National.BackoffMax = 2 * time.Second
		cfg.National.MaxAttempts = 100000
	case "http":
	case "mllp":
		mllp := cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config)
		mllp.Addr, mllp.MaxConnections, mllp.MaxConnectionsPerPeer = freeAddr(), 1024, mllpPerPeer(o)
	case "csv":
		drop := filepath.Join(dir, "drop")
		if err := writeCSVExport(drop, o.csvRows); err != nil {
			return err
		}
		cfg.Sources = map[string]config.SourceConfig{"datix": {CSVColumns: csvColumns}}
		d := cfg.Adapters[csvdrop.Section].(*csvdrop.Config)
		d.Dir, d.Source = drop, "datix"
		d.PollInterval, d.SettleTime = time.Second, time.Second
	default:
		return fmt.Errorf("-profile-scenario %q: want e2e, backlog, http, mllp or csv", o.profileScenario)
	}
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
	stopTimeline := func() {}
	if s != nil {
		stopTimeline = timeline(ctx, g, s, start)
	}
	n := o.n
	switch o.profileScenario {
	case "mllp":
		addr := ""
		for addr == "" && time.Since(start) < time.Minute {
			if addr = g.AdapterAddr(ctx, hl7mllp.Kind); addr == "" {
				time.Sleep(20 * time.Millisecond)
			}
		}
		err = sendADT(ctx, o, addr, 0, &latencies{})
	case "csv":
		n = o.csvRows
		peak := heapSampler(filepath.Join(dir, "heap-peak.pprof"))
		err = dropCSVExport(filepath.Join(dir, "drop"), o.timeout)
		peak()
	default:
		_, _, err = postAll(o, cfg.HTTP.Addr, "P-", o.n, nil)
	}
	if err != nil {
		return err
	}
	accepted := time.Since(start)
	if o.profileScenario == "backlog" {
		writeHeap(filepath.Join(dir, "heap-backlog.pprof"))
		s.SetFaults(sim.Faults{})
	}
	for s != nil && s.Stats().Creates < o.n && time.Since(start) < o.timeout {
		time.Sleep(50 * time.Millisecond)
	}
	stopTimeline()
	pprof.StopCPUProfile()
	cpu.Close()
	writeHeap(filepath.Join(dir, "heap.pprof"))
	blk, err := os.Create(filepath.Join(dir, "block.pprof"))
	if err != nil {
		return err
	}
	_ = pprof.Lookup("block").WriteTo(blk, 0)
	blk.Close()
	fmt.Printf("profiled %s: %d records accepted in %s (%.0f/s)", o.profileScenario, n, accepted.Round(time.Millisecond), float64(n)/accepted.Seconds())
	if s != nil {
		fmt.Printf(", delivered in %s (%.0f/s)", time.Since(start).Round(time.Millisecond), float64(o.n)/time.Since(start).Seconds())
	}
	fmt.Printf("; profiles in %s\n", dir)
	return nil
}

// timeline prints, every half second, how far each stage has got: records stored in the raw
// stream, waiting for the mapper, waiting in the outbox, and delivered. The stage whose queue
// grows is the one that limits the rate.
func timeline(ctx context.Context, g *gateway.Gateway, s *sim.Simulator, start time.Time) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	fmt.Fprintln(os.Stderr, "  t      raw  to-map  outbox  delivered  heap-MB  RSS-MB")
	go func() {
		defer close(finished)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			var raw, toMap, outbox uint64
			if si, err := g.Queue.StreamInfo(ctx, queue.RawStream); err == nil {
				raw = si.State.Msgs
			}
			if c, err := g.Queue.JetStream().Consumer(ctx, queue.RawStream, "mapper"); err == nil {
				if ci, err := c.Info(ctx); err == nil {
					toMap = ci.NumPending + uint64(ci.NumAckPending)
				}
			}
			if si, err := g.Queue.StreamInfo(ctx, queue.OutboxStream); err == nil {
				outbox = si.State.Msgs
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Fprintf(os.Stderr, "%5.1fs %7d %7d %7d %10d %8.0f %7.0f\n", time.Since(start).Seconds(), raw, toMap, outbox, s.Stats().Creates,
				float64(ms.HeapInuse)/(1<<20), rssMB(os.Getpid()))
		}
	}()
	return func() { close(done); <-finished }
}

// writeHeap writes a heap profile, after a collection so that it shows what is live.
func writeHeap(path string) {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = pprof.Lookup("heap").WriteTo(f, 0)
}

// heapSampler writes a heap profile to path whenever the live heap is larger than at the last
// one, every two seconds, until the returned stop is called: the profile of the peak.
func heapSampler(path string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var peak uint64
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak {
				peak = ms.HeapAlloc
				writeHeap(path)
			}
		}
	}()
	return func() { close(done); <-finished }
}
