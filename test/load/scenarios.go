package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/sim"
)

// rawPublish is the ceiling: the same payload published straight to an embedded JetStream with
// the gateway's stream settings, sync policy and concurrency, each publish waiting for its
// PubAck as the gateway's ingest does.
func rawPublish(ctx context.Context, o options, work string, run int, name string, payload []byte) (result, error) {
	def := config.Default()
	every, err := config.SyncInterval(o.sync)
	if err != nil {
		return result{}, err
	}
	q, err := queue.Open(ctx, queue.Options{
		DataDir: filepath.Join(work, "ceiling-"+strconv.Itoa(len(payload))+"-"+strconv.Itoa(run)), Replicas: 1,
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
	for w := 0; w < o.c; w++ {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(o.n) || time.Since(start) > o.timeout {
					return
				}
				hdr := nats.Header{}
				hdr.Set(queue.HeaderSource, "datix")
				t0 := time.Now()
				if _, err := q.Publish(ctx, queue.RawSubject("bench", "datix", strconv.FormatInt(i%1024, 10)), "ceil-"+strconv.FormatInt(i, 10), payload, hdr); err != nil {
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
	r := result{name: name, note: fmt.Sprintf("%d B payload", len(payload))}
	lat.fill(&r, time.Since(start))
	return r, nil
}

// proc is a psgw subprocess.
type proc struct {
	cmd      *exec.Cmd
	httpAddr string
	mllpAddr string
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
		"PSGW_QUEUE_PUBLISH_TIMEOUT=30s", "PSGW_MLLP_PUBLISH_TIMEOUT=30s")
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + p.httpAddr + "/healthz"); err == nil {
			resp.Body.Close()
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

// postAll sends n incidents from c workers and records each 202's latency.
func postAll(o options, addr, prefix string, n int) (*latencies, time.Duration, error) {
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
				body := incidentJSON(prefix+strconv.FormatInt(i, 10), 1)
				t0 := time.Now()
				code, err := post(addr, body)
				if err == nil && code != http.StatusAccepted {
					err = fmt.Errorf("HTTP %d", code)
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
	lat, elapsed, err := postAll(o, p.httpAddr, "H-", o.n)
	if err != nil {
		return result{}, err
	}
	r := result{name: "http-push", note: fmt.Sprintf("RSS %.0f MB", rssMB(p.cmd.Process.Pid))}
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
	r := result{name: name, note: fmt.Sprintf("RSS %.0f MB", rssMB(p.cmd.Process.Pid))}
	lat.fill(&r, time.Since(start))
	return r, nil
}

// sendADT sends o.n ADT messages over MLLP from o.c connections, as fast as ACKs come back or,
// with rate > 0, at that many messages per second in all, recording each ACK's latency.
func sendADT(ctx context.Context, o options, addr string, rate int, lat *latencies) error {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		tick = t.C
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < o.c; w++ {
		wg.Go(func() {
			cl, err := mllptest.Dial(ctx, addr, nil)
			if err != nil {
				failed.CompareAndSwap(nil, &err)
				return
			}
			defer cl.Close()
			for {
				if tick != nil {
					<-tick
				}
				i := next.Add(1)
				if i > int64(o.n) || time.Since(start) > o.timeout || failed.Load() != nil {
					return
				}
				t0 := time.Now()
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
// the rate is incidents delivered per second from the first post to the last create.
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
	start := time.Now()
	if _, _, err := postAll(o, p.httpAddr, "E-", o.n); err != nil {
		return result{}, err
	}
	if _, maxRSS, err := waitCreates(o, s, p, o.n); err != nil {
		return result{}, err
	} else {
		elapsed := time.Since(start)
		return result{name: "end-to-end", count: o.n, rate: float64(o.n) / elapsed.Seconds(), note: fmt.Sprintf("max RSS %.0f MB", maxRSS)}, nil
	}
}

// backlogDrain: the national service is down while a backlog builds; the rate is how fast it
// drains once the service is back, with psgw's peak RSS throughout.
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
	maxRSS := 0.0
	stopSampling := make(chan struct{})
	sampled := make(chan float64)
	go func() {
		m := 0.0
		for {
			select {
			case <-stopSampling:
				sampled <- m
				return
			case <-time.After(200 * time.Millisecond):
				m = max(m, rssMB(p.cmd.Process.Pid))
			}
		}
	}()
	if _, _, err := postAll(o, p.httpAddr, "B-", o.backlog); err != nil {
		return result{}, err
	}
	s.SetFaults(sim.Faults{})
	elapsed, rss, err := waitCreates(o, s, p, o.backlog)
	close(stopSampling)
	maxRSS = max(rss, <-sampled)
	if err != nil {
		return result{}, err
	}
	return result{name: fmt.Sprintf("backlog drain (%d)", o.backlog), count: o.backlog, rate: float64(o.backlog) / elapsed.Seconds(), note: fmt.Sprintf("max RSS %.0f MB", maxRSS)}, nil
}

// csvBackfill: an export of o.csvRows incidents dropped in the CSV folder at once, as a trust's
// backfill would be; the rate is rows durably stored per second, from the file appearing to its
// move to processed/ (which happens only after every row was stored), so it includes up to
// one poll interval and the settle time (1 s each here). No national endpoint: the mapper
// maps and holds behind ingest, as in the HTTP scenario.
func csvBackfill(ctx context.Context, o options, work string) (result, error) {
	drop := filepath.Join(work, "drop")
	if err := os.MkdirAll(drop, 0o755); err != nil {
		return result{}, err
	}
	cfgFile := filepath.Join(work, "psgw.yaml")
	cfgYAML := "sources:\n  datix:\n    csv_columns:\n" +
		"      local_id: Ref\n      revision: Version\n      event_type: Type\n      occurred_at: Incident date\n" +
		"      description: Description\n      immediate_actions: Action taken\n      patient.nhs_number: NHS number\n" +
		"      patient.date_of_birth: DOB\n      patient.sex: Sex\n      patient.physical_harm: Harm\n" +
		"      patient.psychological_harm: Psychological harm\n      location.organisation: Site\n      reporter.role: Reporter role\n" +
		"      reporter.organisation: Reporter site\n" +
		"csvdrop:\n  dir: " + drop + "\n  source: datix\n  poll_interval: 1s\n  settle_time: 1s\n"
	if err := os.WriteFile(cfgFile, []byte(cfgYAML), 0o644); err != nil {
		return result{}, err
	}
	part := filepath.Join(drop, ".backfill.csv.part")
	f, err := os.Create(part)
	if err != nil {
		return result{}, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	_, _ = w.WriteString("Ref,Version,Type,Incident date,Description,Action taken,NHS number,DOB,Sex,Harm,Psychological harm,Site,Reporter role,Reporter site\n")
	for i := range o.csvRows {
		id := "CSV-" + strconv.Itoa(i)
		_, _ = w.WriteString(id + ",1,incident,2025-03-14T09:30:00Z,\"Scheduled IV antibiotic dose given about four hours late because the ward was short of staff and the dose was missed at the handover; the patient was monitored and came to no harm. " +
			id + "\",\"Dose given; prescriber informed; family told.\",9434765919,1975-03-01,female,none,none,RRK,Nurse or midwife,RRK\n")
	}
	if err := w.Flush(); err != nil {
		return result{}, err
	}
	if err := f.Close(); err != nil {
		return result{}, err
	}
	p, err := startPsgwArgs(o, filepath.Join(work, "data"), []string{"--config", cfgFile})
	if err != nil {
		return result{}, err
	}
	defer p.stop()
	start := time.Now()
	if err := os.Rename(part, filepath.Join(drop, "backfill.csv")); err != nil {
		return result{}, err
	}
	maxRSS := 0.0
	for {
		maxRSS = max(maxRSS, rssMB(p.cmd.Process.Pid))
		if _, err := os.Stat(filepath.Join(drop, "processed", "backfill.csv")); err == nil {
			break
		}
		if _, err := os.Stat(filepath.Join(drop, "failed", "backfill.csv")); err == nil {
			reason, _ := os.ReadFile(filepath.Join(drop, "failed", "backfill.csv.reason.txt"))
			return result{}, fmt.Errorf("the export went to failed/: %s", reason)
		}
		if time.Since(start) > o.timeout {
			return result{}, fmt.Errorf("export not processed after %s", o.timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	elapsed := time.Since(start)
	return result{name: fmt.Sprintf("csv backfill (%d rows)", o.csvRows), count: o.csvRows, rate: float64(o.csvRows) / elapsed.Seconds(),
		note: fmt.Sprintf("max RSS %.0f MB", maxRSS)}, nil
}
