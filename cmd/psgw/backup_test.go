package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/wait"
)

// TestBackupWhileIngestingThenRestore is issue 18's must-show 4: `psgw backup` of a running
// gateway while incidents pour in, the data directory wiped, `psgw restore`, and the gateway
// started again. Every incident acknowledged before the backup began is there, delivered or
// visibly unknown, and the national service holds none of them twice.
func TestBackupWhileIngestingThenRestore(t *testing.T) {
	nat, dir, dataDir, cfgFile, _, start := backupTestInstall(t)
	gw := start()
	base := "http://" + gw.HTTPAddr()

	// A source posting incidents one after another until told to stop.
	var (
		mu    sync.Mutex
		acked []string
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("BK-%05d", i)
			if postIncident(base, id) {
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}
	}()
	ackedNow := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), acked...)
	}
	wait.Until(t, 90*time.Second, "100 incidents acknowledged", func() bool { return len(ackedNow()) >= 100 })
	var out, errb bytes.Buffer

	// Offline is for a stopped gateway: two servers on one store would corrupt it.
	if code := dispatch([]string{"backup", "--config", cfgFile, "--offline", filepath.Join(dir, "refused")}, &bytes.Buffer{}, &errb); code != 1 || !strings.Contains(errb.String(), "in use") {
		t.Errorf("backup --offline of a running gateway: exit %d, %q; want 1 and the data directory in use", code, errb.String())
	}
	errb.Reset()
	before := ackedNow()
	backupDir := filepath.Join(dir, "backup")
	if code := dispatch([]string{"backup", "--config", cfgFile, backupDir}, &out, &errb); code != 0 {
		t.Fatalf("psgw backup: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "backup of ") {
		t.Errorf("psgw backup printed %q, want a summary", out.String())
	}
	t.Logf("online, while ingesting: %s", strings.TrimSpace(out.String()))
	// Ingest goes on a little past the backup, and delivery with it, then the install is lost.
	n := len(ackedNow())
	wait.Until(t, 90*time.Second, "more incidents after the backup", func() bool { return len(ackedNow()) >= n+50 })
	close(stop)
	<-done
	gw.Stop(context.Background())

	// Stopped, the store can be backed up offline too, and holds at least what the online
	// backup did.
	offlineDir := filepath.Join(dir, "offline")
	if code := dispatch([]string{"backup", "--config", cfgFile, "--offline", offlineDir}, &out, &errb); code != 0 {
		t.Fatalf("psgw backup --offline: exit %d: %s", code, errb.String())
	}
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}

	out.Reset()
	errb.Reset()
	if code := dispatch([]string{"restore", "--config", cfgFile, backupDir}, &out, &errb); code != 0 {
		t.Fatalf("psgw restore: exit %d: %s", code, errb.String())
	}
	t.Logf("restore: %s", strings.TrimSpace(out.String()))
	// A second restore into the now full store is refused, not merged.
	if code := dispatch([]string{"restore", "--config", cfgFile, backupDir}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "already exists") {
		t.Errorf("restore into a restored store: exit %d, %q; want a refusal naming the existing stream", code, errb.String())
	}

	gw = start()
	t.Cleanup(func() { gw.Stop(context.Background()) })
	base = "http://" + gw.HTTPAddr()
	states := map[string]int{}
	for _, id := range before {
		var st string
		// A message the old gateway held unacknowledged comes back after its consumer's
		// AckWait, as after a crash (docs/delivery.md, "Recovery after a crash").
		wait.For(t, 120*time.Second, id+" delivered or unknown", func() (bool, string) {
			st = incidentState(base, id)
			return st == "delivered" || st == "unknown", "state " + st
		})
		states[st]++
	}
	t.Logf("%d incidents acknowledged before the backup: %v", len(before), states)

	// The national service holds each incident at most once.
	seen := map[string]int{}
	for _, ev := range nat.Events() {
		for _, id := range ackedNow() {
			if bytes.Contains(ev.Resource, []byte("case "+id+".")) {
				seen[id]++
			}
		}
	}
	for id, c := range seen {
		if c > 1 {
			t.Errorf("%s is held %d times by the national service", id, c)
		}
	}
	for _, id := range before {
		if st := incidentState(base, id); st == "delivered" && seen[id] != 1 {
			t.Errorf("%s: delivered, but the national service holds it %d times", id, seen[id])
		}
	}
}

// backupTestInstall is an install for the backup tests: a national-service simulator, a config
// file whose data_dir and admin port are the test's own, and start, which starts a gateway on
// it.
func backupTestInstall(t *testing.T) (nat *sim.Simulator, dir, dataDir, cfgFile string, cfg config.Config, start func() *gateway.Gateway) {
	t.Helper()
	const key = "backup-test-key-0123456789"
	nat, err := gateway.NewSimulator([]string{key}, sim.Faults{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	simSrv := &http.Server{Handler: nat, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = simSrv.Serve(ln) }()
	t.Cleanup(func() { _ = simSrv.Close() })

	dir = t.TempDir()
	dataDir = filepath.Join(dir, "data")
	cfgFile = filepath.Join(dir, "psgw.yaml")
	yaml := fmt.Sprintf(`data_dir: %s
http: {addr: "127.0.0.1:0"}
mllp: {addr: ""}
queue: {admin_addr: "127.0.0.1:%d", sync: 1s}
national: {base_url: "http://%s", subscription_key: %s, timeout: 5s}
log: {level: error}
`, dataDir, freePort(t), ln.Addr(), key)
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = loadConfig(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	start = func() *gateway.Gateway {
		t.Helper()
		gw, err := gateway.Start(context.Background(), cfg, gateway.Options{Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		return gw
	}
	return nat, dir, dataDir, cfgFile, cfg, start
}

// incidentJSON is a valid incident datix/id for the HTTP push adapter, with more fields (each
// followed by a comma) before the rest; its description names it ("case ID.").
func incidentJSON(id, more string) string {
	return fmt.Sprintf(`{"source":"datix","local_id":%q,%s"event_type":"incident","occurred_at":"2025-03-14T09:30:00Z",
		"description":"Dose given late, case %s.","patients":[{"physical_harm":"none","psychological_harm":"none"}],
		"location":{"organisation":"RRK"}}`, id, more, id)
}

func postIncident(base, id string) bool {
	resp, err := http.Post(base+"/api/v1/incidents", "application/json", strings.NewReader(incidentJSON(id, "")))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusAccepted
}

func incidentState(base, id string) string {
	resp, err := http.Get(base + "/api/v1/incidents/datix/" + id)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var rec struct {
		State string `json:"state"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&rec)
	return rec.State
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestRestoreOfUnmappedBacklog: a backup taken while records were stored but not yet mapped
// (here, written to the raw stream with no mapper running) holds them in its raw stream and
// not in its ledger. The gateway the backup came from then maps and delivers them. Restored,
// the mapper maps them again and finds no entry: each must turn unknown with the reason, not
// be POSTed a second time, while a record stored after the restore is delivered as usual
// (docs/deploy.md, "What a restore brings back").
func TestRestoreOfUnmappedBacklog(t *testing.T) {
	nat, dir, dataDir, cfgFile, cfg, start := backupTestInstall(t)
	ctx := context.Background()

	// The backlog: records stored, acknowledged, and not mapped.
	qopts, err := gateway.QueueOptions(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	qopts.Listen = false
	q, err := queue.OpenStore(qopts)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.Open(ctx, q, ledger.Options{Logger: zerolog.Nop()}); err != nil {
		t.Fatal(err)
	}
	var backlog []string
	for i := range 5 {
		id := fmt.Sprintf("BL-%03d", i)
		body := incidentJSON(id, `"revision":1,`)
		key := ingest.IncidentKey("datix", id)
		env := queue.RawEnvelope{Kind: ingest.KindIncident, Source: "datix", LocalID: id, Key: key,
			RecordID: ingest.IncidentRecordID("datix", key, 1, ""), Revision: 1, ReceivedAt: time.Now().UTC()}
		if _, err := q.PublishRaw(ctx, env, []byte(body), 0); err != nil {
			t.Fatal(err)
		}
		backlog = append(backlog, id)
	}
	q.Close()
	var out, errb bytes.Buffer
	backupDir := filepath.Join(dir, "backup")
	if code := dispatch([]string{"backup", "--config", cfgFile, "--offline", backupDir}, &out, &errb); code != 0 {
		t.Fatalf("psgw backup --offline: exit %d: %s", code, errb.String())
	}

	// After the backup, the gateway maps and delivers the backlog; then the install is lost.
	gw := start()
	base := "http://" + gw.HTTPAddr()
	for _, id := range backlog {
		wait.For(t, 60*time.Second, id+" delivered", func() (bool, string) {
			st := incidentState(base, id)
			return st == "delivered", "state " + st
		})
	}
	gw.Stop(ctx)
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	if code := dispatch([]string{"restore", "--config", cfgFile, backupDir}, &out, &errb); code != 0 {
		t.Fatalf("psgw restore: exit %d: %s", code, errb.String())
	}

	gw = start()
	t.Cleanup(func() { gw.Stop(context.Background()) })
	base = "http://" + gw.HTTPAddr()
	const after = "AF-001"
	if !postIncident(base, after) {
		t.Fatal("posting an incident after the restore was refused")
	}
	for _, id := range backlog {
		var e *ledger.Entry
		wait.For(t, 60*time.Second, id+" mapped again", func() (bool, string) {
			e, err = gw.Ledger.Get(ctx, ledger.Key("datix", ingest.IncidentKey("datix", id)))
			if err != nil {
				return false, err.Error()
			}
			return e.State != ledger.StateQueued && e.State != ledger.StateDelivering, "state " + string(e.State)
		})
		if e.State != ledger.StateUnknown || !e.AwaitingResolution() || e.History[len(e.History)-1].Detail != ledger.RestoredUnmappedDetail {
			t.Errorf("%s after the restore: state %s, last history %+v; want unknown with %q", id, e.State, e.History[len(e.History)-1], ledger.RestoredUnmappedDetail)
		}
	}
	wait.For(t, 60*time.Second, after+" delivered", func() (bool, string) {
		st := incidentState(base, after)
		return st == "delivered", "state " + st
	})

	// The national service holds each incident once.
	seen := map[string]int{}
	for _, ev := range nat.Events() {
		for _, id := range append(backlog, after) {
			if bytes.Contains(ev.Resource, []byte("case "+id+".")) {
				seen[id]++
			}
		}
	}
	for _, id := range append(backlog, after) {
		if seen[id] != 1 {
			t.Errorf("the national service holds %s %d times, want once", id, seen[id])
		}
	}
}
