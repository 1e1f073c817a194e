package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/ops"
	"github.com/psgw/psgw/test/wait"
)

// TestOldRevisionAfterDuplicateWindow: after JetStream's duplicate window has passed, the
// ledger still answers duplicate: true, storing nothing, for a revision at or below the newest
// one mapped; a record without a revision is a duplicate only when it repeats the newest
// content. Within the window, a record not yet mapped is caught by JetStream itself.
func TestOldRevisionAfterDuplicateWindow(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Queue.DuplicateWindow = time.Second })
	post := func(in map[string]any, wantDup bool, what string) {
		t.Helper()
		if r := h.post(in); r.Status != 202 || r.Duplicate != wantDup {
			t.Fatalf("%s: got %d duplicate=%v, want 202 duplicate=%v", what, r.Status, r.Duplicate, wantDup)
		}
	}
	rev1, rev2 := incident("OLD-1", 1, describe("OLD-1", 1)), incident("OLD-1", 2, describe("OLD-1", 2))
	post(rev1, false, "revision 1")
	post(rev2, false, "revision 2")
	contentA, contentB := incident("OLD-2", 0, "first text of OLD-2"), incident("OLD-2", 0, "second text of OLD-2")
	post(contentA, false, "no revision, content A")
	wait.For(t, 10*time.Second, "OLD-2 content A delivered", func() (bool, string) {
		rec, _ := h.record("datix", "OLD-2")
		return rec.State == "delivered", string(rec.State)
	})
	post(contentB, false, "no revision, content B")
	wait.For(t, 10*time.Second, "both delivered, newest mapped", func() (bool, string) {
		a, _ := h.record("datix", "OLD-1")
		b, _ := h.record("datix", "OLD-2")
		return a.State == "delivered" && a.Revision == 2 && b.State == "delivered" && b.Revision == 2,
			string(a.State) + " " + string(b.State)
	})
	time.Sleep(1500 * time.Millisecond) // let JetStream's one-second window pass: nothing to await

	post(rev2, true, "revision 2 again, after the window")
	post(rev1, true, "revision 1 again, after the window (stale)")
	post(contentB, true, "content B again, after the window (the newest)")
	post(contentA, false, "content A again, after the window (changed back: an amendment)")

	// A record stored but not yet mapped is not in the ledger: JetStream's window answers.
	rev3 := incident("OLD-1", 3, describe("OLD-1", 3))
	post(rev3, false, "revision 3")
	post(rev3, true, "revision 3 again at once")

	wait.For(t, 10*time.Second, "OLD-1 revision 3 delivered", func() (bool, string) {
		rec, _ := h.record("datix", "OLD-1")
		return rec.State == "delivered" && rec.Revision == 3, string(rec.State)
	})
	rec, _ := h.record("datix", "OLD-1")
	if strings.Contains(historyText(rec.History), "ignored") {
		t.Errorf("OLD-1 history: got %s, want no stale revision stored and ignored", historyText(rec.History))
	}
	if st := h.sim.Stats(); st.Creates != 2 {
		t.Errorf("simulator creates: got %d, want 2", st.Creates)
	}
}

// TestDeadStageRestartedStaysReady: when a pipeline stage (here the mapper) stops with an
// error, /readyz stays 200 (ingest still stores: readiness means "can accept and durably
// store", docs/api.md) and names the stage and its error under degraded, the status API shows
// it restarting and lists it among the problems, and the gateway runs it again with backoff
// until it works; then the incident that arrived meanwhile is delivered.
func TestDeadStageRestartedStaysReady(t *testing.T) {
	h := newHarness(t, nil)
	h.Stop()
	var (
		broken atomic.Bool
		mu     sync.Mutex
		kill   context.CancelFunc
	)
	hook := func(name string, run func(context.Context) error) func(context.Context) error {
		if name != "mapper" {
			return run
		}
		return func(ctx context.Context) error {
			if broken.Load() {
				return errors.New("injected: mapper consumer unavailable")
			}
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			mu.Lock()
			kill = cancel
			mu.Unlock()
			err := run(rctx)
			if ctx.Err() == nil {
				return errors.New("injected: mapper died")
			}
			return err
		}
	}
	gw, err := gateway.Start(context.Background(), h.Cfg, gateway.Options{Logger: h.Logger(), StageHook: hook,
		StageBackoff: 20 * time.Millisecond, StageBackoffMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h.GW, h.Base = gw, "http://"+gw.HTTPAddr()

	readyz := func() (int, ops.Readiness) {
		resp, err := http.Get(h.Base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rd ops.Readiness
		_ = json.NewDecoder(resp.Body).Decode(&rd)
		return resp.StatusCode, rd
	}
	mapperStage := func() ops.StageStatus {
		resp, err := http.Get(h.Base + "/api/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var o ops.Overview
		_ = json.NewDecoder(resp.Body).Decode(&o)
		for _, st := range o.Stages {
			if st.Name == "mapper" {
				return st
			}
		}
		return ops.StageStatus{}
	}
	wait.For(t, 10*time.Second, "ready at start", func() (bool, string) {
		code, rd := readyz()
		return code == 200, strings.Join(rd.Reasons, "; ")
	})

	// Ready can come before the mapper's run has begun: the parts start on their own.
	wait.Until(t, 10*time.Second, "the mapper stage running", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return kill != nil
	})
	broken.Store(true)
	mu.Lock()
	kill()
	mu.Unlock()
	wait.For(t, 10*time.Second, "/readyz 200 naming the mapper as degraded", func() (bool, string) {
		code, rd := readyz()
		degraded := strings.Join(rd.Degraded, "; ")
		return code == 200 && rd.Ready && strings.Contains(degraded, "mapper stage is restarting") && strings.Contains(degraded, "injected"),
			fmt.Sprintf("%d reasons=%q degraded=%q", code, rd.Reasons, degraded)
	})
	wait.For(t, 10*time.Second, "the status API's problems naming the mapper", func() (bool, string) {
		resp, err := http.Get(h.Base + "/api/v1/status")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var o ops.Overview
		_ = json.NewDecoder(resp.Body).Decode(&o)
		p := strings.Join(o.Problems, "; ")
		return strings.Contains(p, "mapper stage is restarting"), p
	})
	wait.For(t, 10*time.Second, "status shows the mapper restarting, restarted at least once", func() (bool, string) {
		st := mapperStage()
		return st.State == ops.StageRestarting && st.Restarts >= 1 && strings.Contains(st.LastError, "injected"), st.State + " " + st.LastError
	})
	resp, err := http.Get(h.Base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `psgw_stage_restarts_total{stage="mapper"}`) || !strings.Contains(string(metrics), `psgw_stage_up{stage="forwarder"} 1`) {
		t.Errorf("metrics: want psgw_stage_restarts_total and psgw_stage_up per stage")
	}
	if r := h.post(incident("STAGE-1", 1, describe("STAGE-1", 1))); r.Status != 202 {
		t.Fatalf("ingest while the mapper is down: got %d, want 202 (stored, mapped later)", r.Status)
	}

	broken.Store(false)
	wait.For(t, 10*time.Second, "no longer degraded", func() (bool, string) {
		code, rd := readyz()
		return code == 200 && len(rd.Degraded) == 0, strings.Join(rd.Degraded, "; ")
	})
	wait.For(t, 10*time.Second, "the incident stored meanwhile delivered", func() (bool, string) {
		rec, _ := h.record("datix", "STAGE-1")
		return rec.State == "delivered", string(rec.State)
	})
	if st := mapperStage(); st.State != ops.StageRunning || st.Restarts < 1 || !strings.Contains(st.LastError, "injected") {
		t.Errorf("mapper after recovery: got %+v, want running with its restarts and last error kept", st)
	}
}
