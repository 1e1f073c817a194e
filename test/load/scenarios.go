package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/sim"
)

// rawPublish is the ceiling: the same payload published straight to an embedded JetStream with
// the gateway's stream settings, sync policy and concurrency, each publish waiting for its
// PubAck as the gateway's ingest does.
func rawPublish(ctx context.Context, o options, work string, run int, name string, payload []byte, concurrency int) (result, error) {
	def := config.Default()
	every, err := config.SyncInterval(o.sync)
	if err != nil {
		return result{}, err
	}
	q, err := queue.Open(ctx, queue.Options{
		DataDir: filepath.Join(work, "ceiling-"+strconv.Itoa(len(payload))+"-c"+strconv.Itoa(concurrency)+"-"+strconv.Itoa(run)), Replicas: 1,
		MaxStoreBytes: def.Queue.MaxStoreBytes, MaxMemoryBytes: def.Queue.MaxMemoryBytes,
		RawMaxBytes: def.Queue.RawMaxBytes, RawMaxAge: def.Queue.RawMaxAge, OutboxMaxBytes: def.Queue.OutboxMaxBytes,
		DuplicateWindow: def.Queue.DuplicateWindow, SyncAlways: o.sync == "always", SyncInterval: every,
		Logger: zerolog.Nop(),
	})
	if err != nil {
		return result{}, err
	}
	defer q.Close()
	var lat latencies
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for w := 0; w < concurrency; w++ {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(o.n) || time.Since(start) > o.timeout {
					return
				}
				// The envelope the gateway's publisher writes: the record's own headers.
				env := queue.RawEnvelope{Kind: "bench", Source: "datix", LocalID: "INC-" + strconv.FormatInt(i, 10),
					Key: strconv.FormatInt(i%1024, 10), RecordID: "ceil-" + strconv.FormatInt(i, 10), ReceivedAt: time.Now().UTC()}
				t0 := time.Now()
				if _, err := q.PublishRaw(ctx, env, payload, 0); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				lat.add(time.Since(t0))
			}
		})
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return result{}, *e
	}
	r := result{name: name, note: fmt.Sprintf("%d B payload, %d publishers", len(payload), concurrency)}
	lat.fill(&r, time.Since(start))
	return r, nil
}

// proc is a psgw subprocess.
type proc struct {
	cmd      *exec.Cmd
	httpAddr string
	mllpAddr string
	// cpu0 and at0 are the CPU time the process had used, and when, at markCPU.
	cpu0 time.Duration
	at0  time.Time
}

// markCPU starts the interval that cpuNote reports on.
func (p *proc) markCPU() {
	p.cpu0, p.at0 = cpuTime(p.cmd.Process.Pid), time.Now()
}

// cpuNote says how many cores psgw used since markCPU, and this process (the load
// generator, and the simulator where there is one) beside it: on a small machine they share
// the cores, so a CPU-bound figure is only as good as what was left for psgw.
func (p *proc) cpuNote() string {
	el := time.Since(p.at0).Seconds()
	if el <= 0 {
		return ""
	}
	gw := (cpuTime(p.cmd.Process.Pid) - p.cpu0).Seconds() / el
	return fmt.Sprintf("CPU psgw %.2f, load %.2f cores", gw, selfCores.since(p.at0))
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startPsgw runs psgw with the given extra environment and waits for it to be ready.
func startPsgw(o options, dataDir string, env ...string) (*proc, error) {
	return startPsgwArgs(o, dataDir, nil, env...)
}

// startPsgwArgs is startPsgw with extra arguments to psgw run.
func startPsgwArgs(o options, dataDir string, args []string, env ...string) (*proc, error) {
	p := &proc{httpAddr: freeAddr(), mllpAddr: freeAddr()}
	p.cmd = exec.Command(o.psgw, append([]string{"run"}, args...)...)
	p.cmd.Env = append(os.Environ(),
		"PSGW_DATA_DIR="+dataDir, "PSGW_HTTP_ADDR="+p.httpAddr, "PSGW_MLLP_ADDR="+p.mllpAddr,
		"PSGW_QUEUE_SYNC="+o.sync, "PSGW_LOG_LEVEL=warn", "PSGW_MLLP_MAX_CONNECTIONS=1024",
		"PSGW_MLLP_MAX_CONNECTIONS_PER_PEER="+strconv.Itoa(mllpPerPeer(o)),
		"PSGW_QUEUE_PUBLISH_TIMEOUT=30s", "PSGW_MLLP_PUBLISH_TIMEOUT=30s")
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Env = append(p.cmd.Env, o.psgwEnv...)
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + p.httpAddr + "/healthz"); err == nil {
			resp.Body.Close()
			selfCores.mark()
			p.markCPU()
			return p, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
	return nil, errors.New("psgw did not start")
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}, Timeout: time.Minute}

func post(addr string, body []byte) (int, error) {
	resp, err := httpClient.Post("http://"+addr+"/api/v1/incidents", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// postAll sends n incidents from c workers and records each 202's latency. accepted, when
// not nil, is called with each incident's local id and the time its 202 arrived.
func postAll(o options, addr, prefix string, n int, accepted func(id string, at time.Time)) (*latencies, time.Duration, error) {
	var lat latencies
	var next atomic.Int64
	var failed atomic.Pointer[error]
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < o.c; w++ {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) || time.Since(start) > o.timeout || failed.Load() != nil {
					return
				}
				id := prefix + strconv.FormatInt(i, 10)
				body := incidentJSON(id, 1)
				t0 := time.Now()
				code, err := post(addr, body)
				if err == nil && code != http.StatusAccepted {
					err = fmt.Errorf("HTTP %d", code)
				}
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				t1 := time.Now()
				lat.add(t1.Sub(t0))
				if accepted != nil {
					accepted(id, t1)
				}
			}
		})
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return nil, 0, *e
	}
	return &lat, time.Since(start), nil
}

// httpPush: POST /api/v1/incidents, 202 after the PubAck. No national endpoint, so delivery
// does not compete for the CPU.
func httpPush(ctx context.Context, o options, work string) (result, error) {
	p, err := startPsgw(o, work)
	if err != nil {
		return result{}, err
	}
	defer p.stop()
	lat, elapsed, err := postAll(o, p.httpAddr, "H-", o.n, nil)
	if err != nil {
		return result{}, err
	}
	r := result{name: "http-push", note: fmt.Sprintf("RSS %.0f MB; %s", rssMB(p.cmd.Process.Pid), p.cpuNote())}
	lat.fill(&r, elapsed)
	return r, nil
}

// mllpADT: ADT A08 over MLLP from c connections as fast as ACKs come back (ACK after PubAck).
func mllpADT(ctx context.Context, o options, work string) (result, error) {
	return mllpRun(ctx, o, work, "mllp-adt", 0)
}

// mllpPaced: the same at a fixed offered rate, for ACK latency at that rate.
func mllpPaced(ctx context.Context, o options, work string) (result, error) {
	return mllpRun(ctx, o, work, fmt.Sprintf("mllp-adt @%d/s", o.mllpRate), o.mllpRate)
}

func mllpRun(ctx context.Context, o options, work, name string, rate int) (result, error) {
	p, err := startPsgw(o, work)
	if err != nil {
		return result{}, err
	}
	defer p.stop()
	var lat latencies
	start := time.Now()
	if err := sendADT(ctx, o, p.mllpAddr, rate, &lat); err != nil {
		return result{}, err
	}
	sent := time.Since(start)
	r := result{name: name, note: fmt.Sprintf("RSS %.0f MB; %s", rssMB(p.cmd.Process.Pid), p.cpuNote())}
	lat.fill(&r, sent)
	// The demographics stage applies the ADT records behind ingest, one at a time: how far
	// behind it was when the last ACK came, and how long it took to catch up.
	_, pending, _ := demographics(p)
	for {
		applied, _, ok := demographics(p)
		if ok && applied >= uint64(o.n) {
			r.note += fmt.Sprintf("; demographics: %d waiting at the last ACK, all applied after %.1fs (%.0f/s)",
				pending, time.Since(start).Seconds(), float64(o.n)/time.Since(start).Seconds())
			break
		}
		if time.Since(start) > o.timeout {
			r.note += fmt.Sprintf("; demographics: %d of %d applied after %s", applied, o.n, o.timeout)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return r, nil
}

// demographics reads how many ADT records psgw's demographics stage has applied, and how many
// wait for it.
func demographics(p *proc) (applied, pending uint64, ok bool) {
	resp, err := http.Get("http://" + p.httpAddr + "/api/v1/status")
	if err != nil {
		return 0, 0, false
	}
	defer resp.Body.Close()
	var st struct {
		Demographics *struct {
			Applied uint64 `json:"applied"`
			Pending uint64 `json:"pending"`
		} `json:"demographics"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil || st.Demographics == nil {
		return 0, 0, false
	}
	return st.Demographics.Applied, st.Demographics.Pending, true
}

// mllpPerPeer is the mllp.max_connections_per_peer the load tool starts psgw with: its own
// connections all come from 127.0.0.1, and past that cap psgw cuts the one idle longest, which
// would count as a failed send and distort the figures. Never below the default, so that a
// run with fewer connections measures psgw as shipped.
func mllpPerPeer(o options) int {
	return max(o.mllpConns, hl7mllp.Defaults().MaxConnectionsPerPeer)
}

// sendADT sends o.n ADT messages over MLLP from o.mllpConns connections, as fast as ACKs come back or,
// with rate > 0, on a fixed schedule of that many messages per second in all (message i is
// due at start + i/rate, whichever connection is free takes it), recording each ACK's latency
// from the moment the message was sent. A schedule rather than a ticker: a ticker drops the
// ticks that come while every connection waits for an ACK, so a slow spell would lower the
// offered rate instead of showing as latency. A message sent late because every connection
// was busy counts its lateness too (latency from when it was due), so a stall is not hidden.
func sendADT(ctx context.Context, o options, addr string, rate int, lat *latencies) error {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < o.mllpConns; w++ {
		wg.Go(func() {
			cl, err := mllptest.Dial(ctx, addr, nil)
			if err != nil {
				failed.CompareAndSwap(nil, &err)
				return
			}
			defer cl.Close()
			for {
				i := next.Add(1)
				if i > int64(o.n) || time.Since(start) > o.timeout || failed.Load() != nil {
					return
				}
				t0 := time.Now()
				if rate > 0 {
					due := start.Add(time.Duration(i-1) * time.Second / time.Duration(rate))
					if wait := time.Until(due); wait > 0 {
						time.Sleep(wait)
					}
					t0 = due
				}
				ack, err := cl.Send(adtMessage(int(i)))
				if err == nil && ack.Code != "AA" {
					err = fmt.Errorf("ACK %s: %s", ack.Code, ack.Text)
				}
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				lat.add(time.Since(t0))
			}
		})
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return *e
	}
	return nil
}

// simServer runs the national-service simulator in this process, on loopback.
func simServer(faults sim.Faults) (*sim.Simulator, *httptest.Server, error) {
	s, err := gateway.NewSimulator([]string{"load-key"}, faults, zerolog.Nop())
	if err != nil {
		return nil, nil, err
	}
	return s, httptest.NewServer(s), nil
}

// waitCreates waits until the simulator holds want events, sampling psgw's RSS on the way.
func waitCreates(o options, s *sim.Simulator, p *proc, want int) (time.Duration, float64, error) {
	start := time.Now()
	maxRSS := 0.0
	for {
		if rss := rssMB(p.cmd.Process.Pid); rss > maxRSS {
			maxRSS = rss
		}
		if s.Stats().Creates >= want {
			return time.Since(start), maxRSS, nil
		}
		if time.Since(start) > o.timeout {
			return 0, maxRSS, fmt.Errorf("only %d of %d delivered after %s", s.Stats().Creates, want, o.timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// endToEnd: incidents posted as fast as they are accepted, delivered through the simulator;
// the rate is incidents delivered per second from the first post to the last create, and the
// latencies are each incident's, from its 202 to the simulator storing it.
func endToEnd(ctx context.Context, o options, work string) (result, error) {
	s, srv, err := simServer(sim.Faults{})
	if err != nil {
		return result{}, err
	}
	defer srv.Close()
	p, err := startPsgw(o, work, "PSGW_NATIONAL_BASE_URL="+srv.URL, "PSGW_NATIONAL_SUBSCRIPTION_KEY=load-key", "PSGW_NATIONAL_CONCURRENCY=32")
	if err != nil {
		return result{}, err
	}
	defer p.stop()
	var acceptedMu sync.Mutex
	accepted := make(map[string]time.Time, o.n)
	start := time.Now()
	if _, _, err := postAll(o, p.httpAddr, "E-", o.n, func(id string, at time.Time) {
		acceptedMu.Lock()
		accepted[id] = at
		acceptedMu.Unlock()
	}); err != nil {
		return result{}, err
	}
	_, maxRSS, err := waitCreates(o, s, p, o.n)
	if err != nil {
		return result{}, err
	}
	elapsed := time.Since(start)
	r := result{name: "end-to-end", note: fmt.Sprintf("max RSS %.0f MB; %s", maxRSS, p.cpuNote())}
	deliveryLatencies(s, accepted).fill(&r, elapsed)
	r.count, r.rate = o.n, float64(o.n)/elapsed.Seconds()
	return r, nil
}

// loadID finds the load tool's local id, which incidentJSON puts at the end of the description.
var loadID = regexp.MustCompile(`came to no harm\. ([A-Z]-[0-9]+)"`)

// deliveryLatencies matches the simulator's events to the incidents accepted, by the local
// id in their description: the time from each 202 to the simulator storing the event.
func deliveryLatencies(s *sim.Simulator, accepted map[string]time.Time) *latencies {
	var lat latencies
	for _, ev := range s.Events() {
		m := loadID.FindSubmatch(ev.Resource)
		if m == nil {
			continue
		}
		if at, ok := accepted[string(m[1])]; ok {
			lat.add(ev.Created.Sub(at))
		}
	}
	return &lat
}

// backlogDrain: the national service is down while a backlog builds; the rate is how fast it
// drains once the service is back, with psgw's peak RSS while the backlog built and while it
// drained.
func backlogDrain(ctx context.Context, o options, work string) (result, error) {
	s, srv, err := simServer(sim.Faults{Down: true})
	if err != nil {
		return result{}, err
	}
	defer srv.Close()
	p, err := startPsgw(o, work, "PSGW_NATIONAL_BASE_URL="+srv.URL, "PSGW_NATIONAL_SUBSCRIPTION_KEY=load-key",
		"PSGW_NATIONAL_CONCURRENCY=32", "PSGW_NATIONAL_BACKOFF_MAX=2s", "PSGW_NATIONAL_MAX_ATTEMPTS=100000")
	if err != nil {
		return result{}, err
	}
	defer p.stop()
	rss := sampleRSS(p.cmd.Process.Pid)
	qStart := time.Now()
	if _, _, err := postAll(o, p.httpAddr, "B-", o.backlog, nil); err != nil {
		return result{}, err
	}
	queued := time.Since(qStart)
	queueCPU := p.cpuNote()
	peakQueued := rss.restart()
	// Let the mapper finish what ingest left it, so the drain is delivery alone.
	for !mapped(p, o.backlog) && time.Since(qStart) < o.timeout {
		time.Sleep(200 * time.Millisecond)
	}
	p.markCPU()
	selfCores.mark()
	s.SetFaults(sim.Faults{})
	elapsed, lastRSS, err := waitCreates(o, s, p, o.backlog)
	peakDrain := max(lastRSS, rss.stop())
	if err != nil {
		return result{}, err
	}
	return result{name: fmt.Sprintf("backlog drain (%d)", o.backlog), count: o.backlog, rate: float64(o.backlog) / elapsed.Seconds(),
		note: fmt.Sprintf("max RSS %.0f MB queuing (%.0f/s accepted; %s), %.0f MB draining; %s",
			peakQueued, float64(o.backlog)/queued.Seconds(), queueCPU, peakDrain, p.cpuNote())}, nil
}

// mapped reports whether psgw's ledger holds n incidents: every one accepted has been mapped.
func mapped(p *proc, n int) bool {
	resp, err := http.Get("http://" + p.httpAddr + "/api/v1/status")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st struct {
		Total int `json:"total"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return false
	}
	return st.Total >= n
}

// csvBackfill: an export of o.csvRows incidents dropped in the CSV folder at once, as a trust's
// backfill would be; the rate is rows durably stored per second, from the file appearing to its
// move to processed/ (which happens only after every row was stored), so it includes up to
// one poll interval and the settle time (1 s each here). No national endpoint: the mapper
// maps and holds behind ingest, as in the HTTP scenario.
func csvBackfill(ctx context.Context, o options, work string) (result, error) {
	drop := filepath.Join(work, "drop")
	if err := writeCSVExport(drop, o.csvRows); err != nil {
		return result{}, err
	}
	cfgFile := filepath.Join(work, "psgw.yaml")
	cfgYAML := "sources:\n  datix:\n    csv_columns:\n"
	for _, k := range slices.Sorted(maps.Keys(csvColumns)) {
		cfgYAML += "      " + k + ": " + csvColumns[k] + "\n"
	}
	cfgYAML += "csvdrop:\n  dir: " + drop + "\n  source: datix\n  poll_interval: 1s\n  settle_time: 1s\n"
	if err := os.WriteFile(cfgFile, []byte(cfgYAML), 0o644); err != nil {
		return result{}, err
	}
	p, err := startPsgwArgs(o, filepath.Join(work, "data"), []string{"--config", cfgFile})
	if err != nil {
		return result{}, err
	}
	defer p.stop()
	start := time.Now()
	rss := sampleRSS(p.cmd.Process.Pid)
	err = dropCSVExport(drop, o.timeout)
	peak := rss.stop()
	if err != nil {
		return result{}, err
	}
	elapsed := time.Since(start)
	return result{name: fmt.Sprintf("csv backfill (%d rows)", o.csvRows), count: o.csvRows, rate: float64(o.csvRows) / elapsed.Seconds(),
		note: fmt.Sprintf("max RSS %.0f MB, %.0f MB at the end; %s", peak, rssMB(p.cmd.Process.Pid), p.cpuNote())}, nil
}

// csvColumns maps the export's headers to incident fields (sources.datix.csv_columns).
var csvColumns = map[string]string{
	"local_id": "Ref", "revision": "Version", "event_type": "Type", "occurred_at": "Incident date",
	"description": "Description", "immediate_actions": "Action taken", "patient.nhs_number": "NHS number",
	"patient.date_of_birth": "DOB", "patient.sex": "Sex", "patient.physical_harm": "Harm",
	"patient.psychological_harm": "Psychological harm", "location.organisation": "Site",
	"reporter.role": "Reporter role", "reporter.organisation": "Reporter site",
}

// writeCSVExport writes an export of rows incidents to drop/.backfill.csv.part, a name the
// adapter ignores until dropCSVExport renames it.
func writeCSVExport(drop string, rows int) error {
	if err := os.MkdirAll(drop, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(drop, ".backfill.csv.part"))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	_, _ = w.WriteString("Ref,Version,Type,Incident date,Description,Action taken,NHS number,DOB,Sex,Harm,Psychological harm,Site,Reporter role,Reporter site\n")
	for i := range rows {
		id := "CSV-" + strconv.Itoa(i)
		_, _ = w.WriteString(id + ",1,incident,2025-03-14T09:30:00Z,\"Scheduled IV antibiotic dose given about four hours late because the ward was short of staff and the dose was missed at the handover; the patient was monitored and came to no harm. " +
			id + "\",\"Dose given; prescriber informed; family told.\",9434765919,1975-03-01,female,none,none,RRK,Nurse or midwife,RRK\n")
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// dropCSVExport makes the export visible to the adapter and waits until it has been moved to
// processed/, which happens only after every row was stored.
func dropCSVExport(drop string, timeout time.Duration) error {
	if err := os.Rename(filepath.Join(drop, ".backfill.csv.part"), filepath.Join(drop, "backfill.csv")); err != nil {
		return err
	}
	start := time.Now()
	for {
		if _, err := os.Stat(filepath.Join(drop, "processed", "backfill.csv")); err == nil {
			return nil
		}
		if _, err := os.Stat(filepath.Join(drop, "failed", "backfill.csv")); err == nil {
			reason, _ := os.ReadFile(filepath.Join(drop, "failed", "backfill.csv.reason.txt"))
			return fmt.Errorf("the export went to failed/: %s", reason)
		}
		if time.Since(start) > timeout {
			return fmt.Errorf("export not processed after %s", timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// rssSampler keeps the peak resident memory of a process, read every 200 ms, because the
// peak of a backlog or backfill comes and goes between the figures taken at its ends.
type rssSampler struct {
	pid  int
	peak atomic.Int64 // KiB
	done chan struct{}
	quit chan struct{}
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{pid: pid, done: make(chan struct{}), quit: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			s.sample()
			select {
			case <-s.quit:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *rssSampler) sample() {
	if kb := int64(rssMB(s.pid) * 1024); kb > s.peak.Load() {
		s.peak.Store(kb)
	}
}

// restart returns the peak so far in MB, the current figure included, and starts a new one.
func (s *rssSampler) restart() float64 {
	s.sample()
	return float64(s.peak.Swap(0)) / 1024
}

// stop ends the sampling and returns the peak in MB since the start or the last restart.
func (s *rssSampler) stop() float64 {
	close(s.quit)
	<-s.done
	s.sample()
	return float64(s.peak.Load()) / 1024
}
