package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/test/natstest"
	"github.com/psgw/psgw/test/wait"
)

// BenchmarkMigrate measures `psgw migrate`: an embedded install that has taken and delivered
// PSGW_MIGRATE_BENCH_N incidents (10,000 by default) over HTTP, stopped, then copied to a fresh
// in-process three-node cluster at three replicas. It reports incidents/s and MB/s of the whole
// command (copy, the wait for every follower, the check), the figures docs/cluster.md quotes:
//
//	go test ./cmd/psgw -run '^$' -bench BenchmarkMigrate -benchtime 1x -v
func BenchmarkMigrate(b *testing.B) {
	n := 10000
	if s := os.Getenv("PSGW_MIGRATE_BENCH_N"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	nat, cfgFile, gw := migrateInstall(b)
	gw.Start()
	began := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				body := incidentJSON(fmt.Sprintf("MB-%06d", i), "")
				resp, err := http.Post(gw.Base+"/api/v1/incidents", "application/json", strings.NewReader(body))
				if err != nil {
					b.Error(err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("HTTP %d", resp.StatusCode)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	wait.For(b, 10*time.Minute, "every incident delivered", func() (bool, string) {
		c := nat.Stats().Creates
		return c >= n, fmt.Sprintf("%d of %d created", c, n)
	})
	b.Logf("%d incidents taken and delivered in %s", n, time.Since(began).Round(time.Second))
	gw.Stop()
	cfg, err := loadConfig(cfgFile)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var took time.Duration
	var bytes uint64
	for b.Loop() {
		b.StopTimer()
		c := natstest.StartCluster(b, 3)
		_ = os.Remove(filepath.Join(cfg.DataDir, gateway.MigratedFile))
		var progress strings.Builder
		b.StartTimer()
		res, err := migrate(context.Background(), cfg, migrateTarget{URL: c.URL(), Replicas: 3, Wait: 5 * time.Minute}, &progress, zerolog.Nop())
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		took += res.Finished.Sub(res.Started)
		_, bytes = res.Totals()
		b.Logf("\n%scopy %s, followers and check %s", progress.String(),
			res.Copied.Sub(res.Started).Round(time.Millisecond), res.Finished.Sub(res.Copied).Round(time.Millisecond))
		c.Shutdown()
		b.StartTimer()
	}
	secs := took.Seconds() / float64(b.N)
	b.ReportMetric(float64(n)/secs, "incidents/s")
	b.ReportMetric(float64(bytes)/1e6/secs, "MB/s")
	b.ReportMetric(float64(bytes)/1e6, "MB")
}
