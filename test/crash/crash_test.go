// Package crash kills a real psgw process with SIGKILL, again and again, while incidents are
// posted and the national service misbehaves, and checks that every incident the gateway
// accepted is created at the national service exactly once or sits visibly in unknown.
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

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/sim"
)

const key = "crash-test-key"

// binary builds psgw once per test run.
func binary(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "psgw")
	cmd := exec.Command("go", "build", "-o", out, "github.com/psgw/psgw/cmd/psgw")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("building psgw: %v", err)
	}
	return out
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
		time.Sleep(20 * time.Millisecond)
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
}

func TestKill9NeverLosesOrDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	s, err := gateway.NewSimulator([]string{key}, sim.Faults{
		ErrorRate: 0.05, RateLimitRate: 0.05, RetryAfter: time.Second,
		Latency: 2 * time.Millisecond, ResetRate: 0.02, LostResponseRate: 0.02,
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(s)
	defer simSrv.Close()

	g := &gatewayProc{t: t, bin: binary(t), addr: freePort(t)}
	g.env = append(os.Environ(),
		"PSGW_DATA_DIR="+t.TempDir(),
		"PSGW_HTTP_ADDR="+g.addr,
		"PSGW_MLLP_ADDR=",
		"PSGW_LOG_LEVEL=error",
		"PSGW_NATIONAL_BASE_URL="+simSrv.URL,
		"PSGW_NATIONAL_SUBSCRIPTION_KEY="+key,
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
			time.Sleep(20 * time.Millisecond)
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
	// The killer: SIGKILL at random moments while the posts and deliveries are under way.
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
			killCount.Add(1)
			if err := g.start(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for _, p := range plan {
		work <- p
	}
	close(work)
	posters.Wait()
	// Keep killing while the backlog drains, until at least five kills have happened.
	for killCount.Load() < 6 && !t.Failed() {
		time.Sleep(100 * time.Millisecond)
	}
	close(stopKilling)
	<-killerDone
	kills := int(killCount.Load())

	// Let the rest drain on a calm national service.
	s.SetFaults(sim.Faults{})
	base := "http://" + g.addr
	var unknown []string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		unknown = unknown[:0]
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
			switch {
			case resp.StatusCode == 404:
				t.Fatalf("%s was accepted (202) but the gateway has no record of it", id)
			case rec.State == "unknown":
				unknown = append(unknown, id)
			case rec.State == "delivered" && rec.Revision == acc.final[id]:
			default:
				if pending == "" {
					pending = fmt.Sprintf("%s: %s r%d (want r%d) %s", id, rec.State, rec.Revision, acc.final[id], rec.LastError)
				}
			}
		}
		if pending == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled after 3 minutes; e.g. %s", pending)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Count at the national service.
	creates := map[string]int{}
	final := map[string]int{}
	re := regexp.MustCompile(`Incident (K-\d{4}) revision (\d)`)
	for _, ev := range s.Events() {
		m := re.FindStringSubmatch(string(ev.Resource))
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
	isUnknown := map[string]bool{}
	for _, id := range unknown {
		isUnknown[id] = true
	}
	for i := 0; i < incidents; i++ {
		id := fmt.Sprintf("K-%04d", i)
		switch {
		case creates[id] > 1:
			t.Errorf("%s: created %d times at the national service", id, creates[id])
		case isUnknown[id]:
			// The outcome of one POST is not known: it may or may not have been stored.
		case creates[id] != 1:
			t.Errorf("%s: delivered per the gateway but created %d times at the national service", id, creates[id])
		case final[id] != acc.final[id]:
			t.Errorf("%s: national service holds revision %d, want %d", id, final[id], acc.final[id])
		}
	}
	st := s.Stats()
	// Each lost response or reset leaves at most one POST unknown; each kill at most one per
	// delivery worker (national.concurrency, 8 by default) that was mid-POST.
	const concurrency = 8
	bound := st.LostResponses + st.Faults[sim.FaultReset] + kills*concurrency
	t.Logf("posts answered 202: %d (%d duplicates); kills: %d; simulator: %d creates, %d updates, %d lost responses, %d resets, %d 5xx, %d 429",
		acc.count, acc.dups, kills, st.Creates, st.Updates, st.LostResponses, st.Faults[sim.FaultReset], st.Faults[sim.FaultError], st.Faults[sim.FaultRateLimit])
	t.Logf("incidents in unknown: %d (bound: lost responses + resets + kills × concurrency = %d)", len(unknown), bound)
	fmt.Printf("crash test: %d incidents, %d kills, %d unknown (bound %d)\n", incidents, kills, len(unknown), bound)
	if len(unknown) > bound {
		t.Errorf("%d incidents in unknown, more than lost responses + resets + kills × concurrency (%d)", len(unknown), bound)
	}
}
