// Package crash kills a real psgw process with SIGKILL, again and again, while incidents are
// posted and the national service misbehaves in every way it can, and checks that every
// incident the gateway accepted is created at the national service exactly once or sits
// visibly in unknown, explained by an ambiguous answer or a kill.
package crash

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/wait"
)

const key = "crash-test-key"

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// binary builds psgw once for the package's tests; TestMain removes it.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "psgw-crash-"); binErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "psgw"), "github.com/psgw/psgw/cmd/psgw")
		cmd.Stderr = os.Stderr
		binErr = cmd.Run()
	})
	if binErr != nil {
		t.Fatalf("building psgw: %v", binErr)
	}
	return filepath.Join(binDir, "psgw")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is one psgw subprocess.
type process struct {
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

type gatewayProc struct {
	t       *testing.T
	bin     string
	env     []string
	args    []string // extra flags for psgw run
	addr    string
	mu      sync.Mutex
	current *process
	logs    bytes.Buffer
}

// newGatewayProc is a psgw subprocess on a fresh data directory delivering to simURL (not
// started yet); env adds or overrides settings.
func newGatewayProc(t *testing.T, simURL string, env ...string) *gatewayProc {
	g := &gatewayProc{t: t, bin: binary(t), addr: freePort(t)}
	g.env = append(append(os.Environ(),
		"PSGW_DATA_DIR="+t.TempDir(),
		"PSGW_HTTP_ADDR="+g.addr,
		"PSGW_MLLP_ADDR=",
		"PSGW_LOG_LEVEL=error",
		"PSGW_NATIONAL_BASE_URL="+simURL,
		"PSGW_NATIONAL_SUBSCRIPTION_KEY="+key,
	), env...)
	return g
}

func (g *gatewayProc) mustStart() {
	g.t.Helper()
	if err := g.start(); err != nil {
		g.t.Fatal(err)
	}
}

// start runs psgw and waits until it is ready. It may be called from any goroutine.
func (g *gatewayProc) start() error {
	cmd := exec.Command(g.bin, append([]string{"run"}, g.args...)...)
	cmd.Env = g.env
	g.mu.Lock()
	cmd.Stdout = &g.logs
	cmd.Stderr = &g.logs
	g.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting psgw: %w", err)
	}
	g.mu.Lock()
	g.current = &process{cmd: cmd}
	g.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ok, _ := ready(g.addr); ok {
			return nil
		}
		time.Sleep(20 * time.Millisecond) // polled by hand: start returns an error and runs in the killer goroutine
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return errors.New("psgw did not become ready; logs:\n" + g.logs.String())
}

// ready reports whether the gateway at addr answers /readyz with 200.
func ready(addr string) (bool, error) {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == 200, nil
}

func (g *gatewayProc) kill() {
	g.mu.Lock()
	p := g.current
	g.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

func (g *gatewayProc) stop() {
	g.mu.Lock()
	p := g.current
	g.mu.Unlock()
	if p == nil || p.cmd.ProcessState != nil {
		return
	}
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

func incident(id string, rev int) []byte {
	b, _ := json.Marshal(map[string]any{
		"source": "datix", "local_id": id, "revision": rev, "event_type": "incident",
		"occurred_at": "2025-03-14T09:30:00Z",
		"description": fmt.Sprintf("Incident %s revision %d: a fall on the ward.", id, rev),
		"patients":    []map[string]any{{"nhs_number": "9434765919", "date_of_birth": "1940-05-17", "sex": "male", "physical_harm": "low"}},
		"location":    map[string]any{"organisation": "RRK"},
		"reporter":    map[string]any{"role": "Nurse or midwife", "organisation": "RRK"},
	})
	return b
}

type record struct {
	State      string `json:"state"`
	Revision   int    `json:"revision"`
	NationalID string `json:"national_id"`
	LastError  string `json:"last_error"`
	History    []struct {
		State  string `json:"state"`
		Detail string `json:"detail"`
	} `json:"history"`
}

// labelRE names a request body at the simulator by the incident it carries.
var labelRE = regexp.MustCompile(`Incident (K-\d{4}) revision (\d)`)

// ambiguousAnswer reports whether the simulator's answer to a request left its outcome
// unknowable to the gateway (docs/delivery.md, "Classification"): no answer, a 5xx other than
// 503, or a success cut short.
func ambiguousAnswer(q sim.Request) bool {
	switch {
	case q.Fault == sim.FaultTruncated:
		return true
	case q.Status == 0:
		return true
	case q.Status >= 500 && q.Status != http.StatusServiceUnavailable:
		return true
	}
	return false
}

func TestKill9NeverLosesOrDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	// Every fault the national service can show, mixed: 5xx without storing (500, 502, 503),
	// 429 with Retry-After, resets, and, once stored, a lost response, a 5xx (504 by
	// default), an answer slower than national.timeout (5 s here), a reset, a body cut short;
	// and an outage in the middle (below).
	mix := sim.Faults{
		ErrorRate: 0.03, RateLimitRate: 0.04, RetryAfter: time.Second, ResetRate: 0.01,
		Latency: 2 * time.Millisecond, LostResponseRate: 0.01,
		StoreThenErrorRate: 0.01, StoreThenSlowRate: 0.005, StoreThenSlowFor: 7 * time.Second,
		StoreThenResetRate: 0.01, TruncateRate: 0.005,
	}
	s, err := sim.New(sim.Options{SubscriptionKeys: []string{key}, Faults: mix, Validate: gateway.SimValidate,
		Label: func(b []byte) string {
			if m := labelRE.FindSubmatch(b); m != nil {
				return string(m[1])
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(s)
	defer simSrv.Close()

	g := newGatewayProc(t, simSrv.URL,
		"PSGW_NATIONAL_BACKOFF_INITIAL=50ms",
		"PSGW_NATIONAL_BACKOFF_MAX=500ms",
		"PSGW_NATIONAL_TIMEOUT=5s",
		"PSGW_NATIONAL_MAX_ATTEMPTS=1000",
	)
	g.mustStart()
	defer g.stop()

	// Sources behave as real ones do: a refused or unanswered POST is sent again until a 202.
	const incidents = 1000
	type accepted struct {
		mu    sync.Mutex
		final map[string]int // highest revision answered 202
		count int
		dups  int
	}
	acc := accepted{final: map[string]int{}}
	client := &http.Client{Timeout: 10 * time.Second}
	send := func(id string, rev int) {
		for attempt := 0; ; attempt++ {
			resp, err := client.Post("http://"+g.addr+"/api/v1/incidents", "application/json", bytes.NewReader(incident(id, rev)))
			if err == nil {
				var body struct {
					Duplicate bool `json:"duplicate"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					acc.mu.Lock()
					acc.count++
					if body.Duplicate {
						acc.dups++
					}
					if rev > acc.final[id] {
						acc.final[id] = rev
					}
					acc.mu.Unlock()
					return
				}
			}
			if attempt > 2000 {
				t.Errorf("%s r%d never accepted", id, rev)
				return
			}
			time.Sleep(20 * time.Millisecond) // a source's pause before it sends again: pacing
		}
	}
	// 1,300 posts: 1,000 new incidents, 150 amendments and 150 re-sends, in four streams.
	var plan [][2]any
	for i := 0; i < incidents; i++ {
		plan = append(plan, [2]any{fmt.Sprintf("K-%04d", i), 1})
	}
	for i := 0; i < 150; i++ {
		plan = append(plan, [2]any{fmt.Sprintf("K-%04d", i*4), 2})
		plan = append(plan, [2]any{fmt.Sprintf("K-%04d", i*4+1), 1})
	}
	work := make(chan [2]any)
	var posters sync.WaitGroup
	for w := 0; w < 4; w++ {
		posters.Go(func() {
			for p := range work {
				send(p[0].(string), p[1].(int))
			}
		})
	}
	// The killer: SIGKILL at random moments while the posts and deliveries are under way, at
	// least six times and at most twelve, so that a loaded machine (slow restarts, slow
	// posters) does not turn the run into dozens of kills and many minutes.
	const maxKills = 12
	var killCount atomic.Int32
	stopKilling := make(chan struct{})
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		for {
			select {
			case <-stopKilling:
				return
			case <-time.After(time.Duration(300+rand.IntN(900)) * time.Millisecond):
			}
			g.kill()
			n := killCount.Add(1)
			if err := g.start(); err != nil {
				t.Error(err)
				return
			}
			if n >= maxKills {
				return
			}
		}
	}()
	// An outage in the middle of it all: every request answered 503 for 2 s, then reset for 2 s.
	outageDone := make(chan struct{})
	go func() {
		defer close(outageDone)
		time.Sleep(3 * time.Second)
		down := mix
		down.Down = true
		s.SetFaults(down)
		time.Sleep(2 * time.Second)
		down.DownMode = sim.DownModeReset
		s.SetFaults(down)
		time.Sleep(2 * time.Second)
		s.SetFaults(mix)
	}()
	for _, p := range plan {
		work <- p
	}
	close(work)
	posters.Wait()
	<-outageDone
	// Keep killing while the backlog drains, until at least five kills have happened.
	wait.Until(t, 10*time.Minute, "six kills", func() bool { return killCount.Load() >= 6 || t.Failed() })
	close(stopKilling)
	<-killerDone
	kills := int(killCount.Load())

	// Let the rest drain on a calm national service.
	s.SetFaults(sim.Faults{})
	base := "http://" + g.addr
	recs := map[string]record{}
	wait.For(t, 3*time.Minute, "every incident settled", func() (bool, string) {
		pending := ""
		for i := 0; i < incidents; i++ {
			id := fmt.Sprintf("K-%04d", i)
			resp, err := client.Get(base + "/api/v1/incidents/datix/" + id)
			if err != nil {
				t.Fatal(err)
			}
			var rec record
			_ = json.NewDecoder(resp.Body).Decode(&rec)
			resp.Body.Close()
			recs[id] = rec
			switch {
			case resp.StatusCode == 404:
				t.Fatalf("%s was accepted (202) but the gateway has no record of it", id)
			case rec.State == "unknown":
			case rec.State == "delivered" && rec.Revision == acc.final[id]:
			default:
				if pending == "" {
					pending = fmt.Sprintf("%s: %s r%d (want r%d) %s", id, rec.State, rec.Revision, acc.final[id], rec.LastError)
				}
			}
		}
		return pending == "", "e.g. " + pending
	})

	// Count at the national service.
	creates := map[string]int{}
	final := map[string]int{}
	for _, ev := range s.Events() {
		m := labelRE.FindStringSubmatch(string(ev.Resource))
		if m == nil {
			t.Fatalf("unexpected event at the simulator")
		}
		creates[m[1]]++
		var rev int
		fmt.Sscanf(m[2], "%d", &rev)
		final[m[1]] = rev
		if strings.Contains(string(ev.Resource), "9434765919") || strings.Contains(string(ev.Resource), "1940-05-17") {
			t.Errorf("%s: a patient identifier reached the national service", m[1])
		}
	}
	// What the simulator did with each incident's POSTs.
	ambiguousPosts := map[string]int{}
	for _, q := range s.Requests() {
		if q.Method == http.MethodPost && q.Label != "" && ambiguousAnswer(q) {
			ambiguousPosts[q.Label]++
		}
	}
	var unknown, byAnswer, byKill, twice, lost int
	for i := 0; i < incidents; i++ {
		id := fmt.Sprintf("K-%04d", i)
		rec := recs[id]
		if creates[id] > 1 {
			twice++
			t.Errorf("%s: created %d times at the national service", id, creates[id])
			continue
		}
		if rec.State != "unknown" {
			switch {
			case creates[id] != 1:
				lost++
				t.Errorf("%s: delivered per the gateway but created %d times at the national service", id, creates[id])
			case final[id] != acc.final[id]:
				lost++
				t.Errorf("%s: national service holds revision %d, want %d", id, final[id], acc.final[id])
			}
			continue
		}
		// Unknown: the ledger's history says why, and the reason must be one that happened.
		unknown++
		why := ""
		for _, h := range rec.History {
			if h.State == "unknown" && why == "" {
				why = h.Detail
			}
		}
		switch {
		case strings.Contains(why, "a POST was in flight") || strings.Contains(why, "stopped while a POST was in flight"):
			byKill++
			if kills == 0 {
				t.Errorf("%s: unknown for a kill mid-POST, but nothing was killed", id)
			}
		case strings.Contains(why, "may hold the event") && ambiguousPosts[id] > 0:
			byAnswer++
		default:
			t.Errorf("%s: unknown, unexplained: history says %q; the simulator gave %d ambiguous answers to its POSTs", id, why, ambiguousPosts[id])
		}
	}
	st := s.Stats()
	t.Logf("posts answered 202: %d (%d duplicates); kills: %d; simulator: %d requests, %d creates, %d updates, faults %v",
		acc.count, acc.dups, kills, st.Requests, st.Creates, st.Updates, st.Faults)
	fmt.Printf("crash test: %d incidents (%d posts with re-sends and amendments), %d kills, %d requests with faults %v: "+
		"%d created twice, %d lost, %d unknown (%d after an ambiguous answer, %d after a kill mid-POST, %d unexplained)\n",
		incidents, acc.count, kills, st.Requests, st.Faults, twice, lost, unknown, byAnswer, byKill, unknown-byAnswer-byKill)
}
