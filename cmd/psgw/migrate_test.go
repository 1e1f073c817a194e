package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/ops"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/gwtest"
	"github.com/psgw/psgw/test/natstest"
	"github.com/psgw/psgw/test/wait"
)

const migrateKey = "migrate-test-key-0123456789"

// migrateInstall is an embedded install for the migrate tests: a national-service simulator,
// a config file with the test's data_dir and short backoffs, and the gateway (stopped).
func migrateInstall(t testing.TB) (nat *sim.Simulator, cfgFile string, gw *gwtest.Gateway) {
	t.Helper()
	nat, err := gateway.NewSimulator([]string{migrateKey}, sim.Faults{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(nat)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfgFile = filepath.Join(dir, "psgw.yaml")
	yaml := fmt.Sprintf(`data_dir: %s
http: {addr: "127.0.0.1:0"}
mllp: {addr: ""}
queue: {sync: 1s}
national: {base_url: %q, subscription_key: %s, timeout: 5s, backoff_initial: 20ms, backoff_max: 200ms}
log: {level: error}
`, filepath.Join(dir, "data"), srv.URL, migrateKey)
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	return nat, cfgFile, gwtest.New(t, cfg, zerolog.InfoLevel)
}

// onCluster is cfg moved to the cluster at url at three replicas, as the migrate command's
// last line tells the operator.
func onCluster(t testing.TB, cfg config.Config, url string) config.Config {
	cfg.Queue.NATSURL, cfg.Queue.Replicas = url, 3
	cfg.DataDir = t.TempDir() // unused with an external store
	return cfg
}

func getRecord(t testing.TB, base, id string) ops.Record {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/incidents/datix/" + id)
	if err != nil {
		t.Fatalf("GET %s: %v", id, err)
	}
	defer resp.Body.Close()
	var r ops.Record
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return r
}

func postJSON(t testing.TB, base, body string) {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/incidents", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: HTTP %d, want 202", resp.StatusCode)
	}
}

// TestMigrateEmbeddedToCluster is `psgw migrate` end to end. An embedded gateway delivers
// some incidents and amendments; then the national service answers 503 for everything (an
// outage: nothing stored) while more incidents, and amendments of delivered ones, arrive and
// sit retrying; and a few records are stored that the mapper has not reached. The gateway is
// stopped and its store migrated to a three-node cluster at three replicas (refused first
// while the gateway runs, and while the cluster holds a psgw bucket). A gateway on the
// cluster, with the service back, then delivers every incident exactly once: nothing
// delivered before is POSTed again, every pending incident and unmapped record is POSTed
// once, every amendment is a PUT to the id held, no incident is ever unknown, and the
// ledger's history from before the move is still there. The embedded store refuses to run
// again.
func TestMigrateEmbeddedToCluster(t *testing.T) {
	ctx := context.Background()
	nat, cfgFile, gw := migrateInstall(t)
	c := natstest.StartCluster(t, 3)
	gw.Start()
	const delivered, pending, backlog, amended = 30, 30, 5, 10
	id := func(prefix string, i int) string { return fmt.Sprintf("%s-%03d", prefix, i) }

	// Delivered before the move: DL-000.. (the first `amended` of them amended, also delivered).
	for i := range delivered {
		postJSON(t, gw.Base, incidentJSON(id("DL", i), `"revision":1,`))
	}
	deliveredAt := func(i, want int) {
		wait.For(t, 60*time.Second, id("DL", i)+" delivered", func() (bool, string) {
			r := getRecord(t, gw.Base, id("DL", i))
			return r.State == ledger.StateDelivered && r.Revision == want, fmt.Sprintf("state %s revision %d", r.State, r.Revision)
		})
	}
	for i := range delivered {
		deliveredAt(i, 1)
	}
	// Amended once created nationally, so that each amendment is a PUT.
	for i := range amended {
		postJSON(t, gw.Base, incidentJSON(id("DL", i), `"revision":2,"immediate_actions":"Reviewed at the ward meeting",`))
	}
	for i := range amended {
		deliveredAt(i, 2)
	}
	before := map[string]ops.Record{}
	for i := range delivered {
		before[id("DL", i)] = getRecord(t, gw.Base, id("DL", i))
	}
	stBefore := nat.Stats()
	if stBefore.Creates != delivered || stBefore.Updates != amended {
		t.Fatalf("before the outage the service holds %d creates and %d updates, want %d and %d", stBefore.Creates, stBefore.Updates, delivered, amended)
	}

	// The outage: PD-000.. arrive, and amendments of DL-010..DL-019; all sit retrying.
	nat.SetFaults(sim.Faults{Down: true})
	for i := range pending {
		postJSON(t, gw.Base, incidentJSON(id("PD", i), `"revision":1,`))
	}
	for i := amended; i < 2*amended; i++ {
		postJSON(t, gw.Base, incidentJSON(id("DL", i), `"revision":2,"immediate_actions":"Reviewed at the ward meeting",`))
	}
	wait.For(t, 60*time.Second, "every pending incident and amendment mapped and waiting, the outage seen", func() (bool, string) {
		if n := nat.Stats().Faults[sim.FaultDown]; n == 0 {
			return false, "no request refused yet"
		}
		for i := range pending {
			if r := getRecord(t, gw.Base, id("PD", i)); r.State == "" || r.State == ledger.StateDelivered {
				return false, id("PD", i) + " state " + string(r.State)
			}
		}
		for i := amended; i < 2*amended; i++ {
			if r := getRecord(t, gw.Base, id("DL", i)); r.Revision != 2 || r.State == ledger.StateDelivered {
				return false, fmt.Sprintf("%s state %s revision %d", id("DL", i), r.State, r.Revision)
			}
		}
		return true, ""
	})

	// Refused while the gateway runs: what it does during a copy would be missing from it.
	var out, errb bytes.Buffer
	migrateArgs := []string{"migrate", "--config", cfgFile, "--to", c.URL(), "--replicas", "3"}
	if code := dispatch(migrateArgs, &out, &errb); code != 1 || !strings.Contains(errb.String(), "in use") || !strings.Contains(errb.String(), "stop the gateway first") {
		t.Errorf("migrate while the gateway runs: exit %d, %q; want 1, the data directory in use and what to do", code, errb.String())
	}
	gw.Stop()

	// Records stored and acknowledged that the mapper had not reached when it stopped.
	qopts, err := gateway.QueueOptions(gw.Cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.OpenStore(qopts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range backlog {
		lid := id("BL", i)
		key := ingest.IncidentKey("datix", lid)
		env := queue.RawEnvelope{Kind: ingest.KindIncident, Source: "datix", LocalID: lid, Key: key,
			RecordID: ingest.IncidentRecordID("datix", key, 1, ""), Revision: 1, ReceivedAt: time.Now().UTC()}
		if _, err := q.PublishRaw(ctx, env, []byte(incidentJSON(lid, `"revision":1,`)), 0); err != nil {
			t.Fatal(err)
		}
	}
	q.Close()

	// A cluster a gateway has already used is refused, and nothing is marked.
	nc, err := nats.Connect(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "psgw_leases", Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := dispatch(migrateArgs, &out, &errb); code != 1 || !strings.Contains(errb.String(), "KV_psgw_leases") || !strings.Contains(errb.String(), "nats stream rm") {
		t.Errorf("migrate into a cluster holding a psgw bucket: exit %d, %q; want 1 naming it and what to do", code, errb.String())
	}
	if _, ok, _ := gateway.ReadMigrated(gw.Cfg.DataDir); ok {
		t.Error("a refused migration marked data_dir as migrated")
	}
	if err := js.DeleteKeyValue(ctx, "psgw_leases"); err != nil {
		t.Fatal(err)
	}

	out.Reset()
	errb.Reset()
	if code := dispatch(migrateArgs, &out, &errb); code != 0 {
		t.Fatalf("psgw migrate: exit %d: %s", code, errb.String())
	}
	t.Logf("migrate:\n%s%s", errb.String(), out.String())
	for _, want := range []string{queue.RawStream, queue.OutboxStream, "KV_psgw_ledger"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("migrate's progress names no %s: %q", want, errb.String())
		}
	}
	if !strings.Contains(out.String(), "and checked them") || !strings.Contains(out.String(), "queue.replicas: 3") {
		t.Errorf("migrate printed %q, want the summary and the next step", out.String())
	}
	// Unlike a restore, nothing is marked as possibly delivered behind the copy's back.
	if kv, err := js.KeyValue(ctx, gateway.StoreBucket); err == nil {
		if _, err := kv.Get(ctx, "restored_raw_seq"); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("the migrated store carries a restore mark: %v", err)
		}
	}

	// The old store refuses to run: it would send its pending incidents a second time.
	if g, err := gateway.Start(ctx, gw.Cfg, gateway.Options{Logger: zerolog.Nop()}); err == nil {
		g.Stop(ctx)
		t.Error("an embedded gateway started on the migrated data_dir")
	} else if !strings.Contains(err.Error(), "was migrated to the cluster") {
		t.Errorf("starting on the migrated data_dir: %v, want a refusal saying where it went", err)
	}
	// And a second migration is refused by the mark.
	if code := dispatch(migrateArgs, &out, &errb); code != 1 || !strings.Contains(errb.String(), "migrated already") {
		t.Errorf("a second migration: exit %d, want 1 and migrated already", code)
	}

	// On the cluster, with the service back.
	nat.SetFaults(sim.Faults{})
	cgw := gwtest.New(t, onCluster(t, gw.Cfg, c.URL()), zerolog.InfoLevel)
	cgw.Start()
	all := map[string]int{} // local id -> revision it must end on
	for i := range delivered {
		all[id("DL", i)] = 1
		if i < 2*amended {
			all[id("DL", i)] = 2
		}
	}
	for i := range pending {
		all[id("PD", i)] = 1
	}
	for i := range backlog {
		all[id("BL", i)] = 1
	}
	recs := map[string]ops.Record{}
	for lid, rev := range all {
		wait.For(t, 120*time.Second, lid+" delivered on the cluster", func() (bool, string) {
			r := getRecord(t, cgw.Base, lid)
			recs[lid] = r
			return r.State == ledger.StateDelivered && r.Revision == rev, fmt.Sprintf("state %s revision %d history %+v", r.State, r.Revision, r.History)
		})
	}

	// Nationally: one event per incident, amended ones once each, and nothing else.
	events := map[string][]sim.Event{}
	for _, ev := range nat.Events() {
		for lid := range all {
			if bytes.Contains(ev.Resource, []byte("case "+lid+".")) {
				events[lid] = append(events[lid], ev)
			}
		}
	}
	for lid, rev := range all {
		evs := events[lid]
		if len(evs) != 1 {
			t.Errorf("%s is held %d times by the national service, want once", lid, len(evs))
			continue
		}
		if evs[0].Updates != rev-1 {
			t.Errorf("%s: %d amendments stored, want %d", lid, evs[0].Updates, rev-1)
		}
		r := recs[lid]
		if r.NationalID != evs[0].ID {
			t.Errorf("%s: ledger holds national id %s, the service %s", lid, r.NationalID, evs[0].ID)
		}
		if b, ok := before[lid]; ok {
			if b.NationalID != r.NationalID {
				t.Errorf("%s: national id %s before the move, %s after", lid, b.NationalID, r.NationalID)
			}
			// The history from before the move is kept, step for step.
			if len(r.History) < len(b.History) || !slices.EqualFunc(b.History, r.History[:len(b.History)], func(x, y ledger.HistoryEntry) bool {
				return x.State == y.State && x.At.Equal(y.At) && x.Detail == y.Detail
			}) {
				t.Errorf("%s: history before the move %+v, after %+v; want it kept", lid, b.History, r.History)
			}
		}
		for _, h := range r.History {
			if h.State == ledger.StateUnknown {
				t.Errorf("%s was unknown on the way: %s", lid, h.Detail)
			}
		}
		if r.PossibleDuplicate {
			t.Errorf("%s flagged a possible duplicate", lid)
		}
	}
	posts, puts := 0, 0
	for _, r := range nat.Requests() {
		if r.Stored && r.Method == http.MethodPost {
			posts++
		}
		if r.Stored && r.Method == http.MethodPut {
			puts++
		}
	}
	st := nat.Stats()
	if want := delivered + pending + backlog; st.Creates != want || posts != want || st.Events != want {
		t.Errorf("the service holds %d events from %d creates (%d stored POSTs), want %d", st.Events, st.Creates, posts, want)
	}
	if st.Updates != 2*amended || puts != 2*amended {
		t.Errorf("the service stored %d amendments (%d PUTs), want %d", st.Updates, puts, 2*amended)
	}
	t.Logf("before the move: %d creates, %d updates; after: %d creates, %d updates, %d requests", stBefore.Creates, stBefore.Updates, st.Creates, st.Updates, st.Requests)
}

// TestMigrateBinary runs the real binary: refused while the gateway runs, then a stopped
// install moved to a three-node cluster, and a gateway on the cluster shows its incidents
// delivered without sending any of them again.
func TestMigrateBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "psgw")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	nat, cfgFile, gw := migrateInstall(t)
	c := natstest.StartCluster(t, 3)
	gw.Start()
	const n = 20
	for i := range n {
		postJSON(t, gw.Base, incidentJSON(fmt.Sprintf("BIN-%02d", i), ""))
	}
	for i := range n {
		wait.For(t, 60*time.Second, "delivered", func() (bool, string) {
			r := getRecord(t, gw.Base, fmt.Sprintf("BIN-%02d", i))
			return r.State == ledger.StateDelivered, string(r.State)
		})
	}
	run := func() (int, string, string) {
		cmd := exec.Command(bin, "migrate", "--config", cfgFile, "--to", c.URL(), "--replicas", "3")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), out.String(), errb.String()
	}
	if code, _, errs := run(); code != 1 || !strings.Contains(errs, "stop the gateway first") {
		t.Errorf("psgw migrate while the gateway runs: exit %d, %q; want 1 and stop the gateway first", code, errs)
	}
	gw.Stop()
	code, out, errs := run()
	if code != 0 {
		t.Fatalf("psgw migrate: exit %d\n%s%s", code, errs, out)
	}
	t.Logf("psgw migrate:\n%s%s", errs, out)
	if !strings.Contains(errs, queue.RawStream) || !strings.Contains(out, "migrated ") {
		t.Errorf("psgw migrate printed %q on stderr and %q on stdout, want progress and a summary", errs, out)
	}
	cgw := gwtest.New(t, onCluster(t, gw.Cfg, c.URL()), zerolog.InfoLevel)
	cgw.Start()
	for i := range n {
		if r := getRecord(t, cgw.Base, fmt.Sprintf("BIN-%02d", i)); r.State != ledger.StateDelivered {
			t.Errorf("BIN-%02d on the cluster: %s, want delivered", i, r.State)
		}
	}
	postJSON(t, cgw.Base, incidentJSON("BIN-NEW", ""))
	wait.For(t, 60*time.Second, "a new incident delivered from the cluster", func() (bool, string) {
		r := getRecord(t, cgw.Base, "BIN-NEW")
		return r.State == ledger.StateDelivered, string(r.State)
	})
	if st := nat.Stats(); st.Creates != n+1 {
		t.Errorf("the service saw %d creates, want %d", st.Creates, n+1)
	}
}

// TestMigrateRefusals: what migrate cannot do is refused with what to do instead, before
// anything is copied: a configuration already on a cluster, a target the gateway could not
// run on, a data directory holding no store, and a cluster that does not answer.
func TestMigrateRefusals(t *testing.T) {
	_, cfgFile, gw := migrateInstall(t)
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := dispatch(append([]string{"migrate", "--config", cfgFile}, args...), &out, &errb)
		return code, errb.String()
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "give the cluster to copy to"},
		{[]string{"--to", "nats://127.0.0.1:4222", "--replicas", "7"}, 2, "queue.replicas"},
		{[]string{"--to", "http://127.0.0.1:4222"}, 2, "queue.nats_url"},
		{[]string{"--to", "nats://127.0.0.1:4222", "extra"}, 2, "unexpected argument"},
		// The gateway has never run: data_dir holds no store.
		{[]string{"--to", "nats://127.0.0.1:4222"}, 1, "holds no embedded store"},
	} {
		if code, errs := run(c.args...); code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("migrate %v: exit %d, %q; want %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(gw.Cfg.DataDir, "jetstream")); err == nil {
		t.Error("a refused migration created a store in data_dir")
	}

	gw.Start()
	gw.Stop()
	// Nothing listens on the port: the cause, after --wait.
	port := freePort(t)
	if code, errs := run("--to", fmt.Sprintf("nats://127.0.0.1:%d", port), "--wait", "1s"); code != 1 || !strings.Contains(errs, "server unreachable") {
		t.Errorf("migrate to a cluster that does not answer: exit %d, %q; want 1 and server unreachable", code, errs)
	}
	if _, ok, _ := gateway.ReadMigrated(gw.Cfg.DataDir); ok {
		t.Error("a failed migration marked data_dir as migrated")
	}

	// A gateway already on a cluster has nothing embedded to move.
	clusterCfg := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(clusterCfg, []byte("queue: {nats_url: \"nats://127.0.0.1:4222\"}\nnational: {base_url: \"\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	if code := dispatch([]string{"migrate", "--config", clusterCfg, "--to", "nats://127.0.0.1:4222"}, &bytes.Buffer{}, &errb); code != 2 || !strings.Contains(errb.String(), "does not copy one cluster to another") {
		t.Errorf("migrate from a cluster: exit %d, %q; want 2 and cluster to cluster unsupported", code, errb.String())
	}
}
