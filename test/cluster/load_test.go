package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/psgw/psgw/test/dockertest"
)

// source is an incident system that knows both replicas: it sends to one, and on a refused
// connection or a 5xx tries the other, waiting as Retry-After says; it remembers the newest
// revision of each incident that was accepted (202).
type source struct {
	e      *env
	client *http.Client

	mu       sync.Mutex
	accepted map[string]int
	bases    []string
	fiveXX   atomic.Int64
	// acceptedN counts 202 answers, amendments included.
	acceptedN atomic.Int64
	next      atomic.Int64
}

func newSource(e *env) *source {
	s := &source{e: e, client: &http.Client{Timeout: 30 * time.Second}, accepted: map[string]int{}}
	s.refresh()
	return s
}

// refresh reads the replicas' published ports again (a restarted container gets new ones).
func (s *source) refresh() {
	var bases []string
	for _, r := range s.e.replicas {
		if addr, err := dockertest.Published(r, "8080"); err == nil {
			bases = append(bases, "http://"+addr)
		}
	}
	s.mu.Lock()
	s.bases = bases
	s.mu.Unlock()
}

func (s *source) base(i int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bases) == 0 {
		return ""
	}
	return s.bases[int(i)%len(s.bases)]
}

// send posts one incident until a replica accepts it, for up to two minutes.
func (s *source) send(ctx context.Context, id string, rev int) error {
	body, _ := json.Marshal(map[string]any{
		"source": "datix", "local_id": id, "revision": rev, "event_type": "incident",
		"occurred_at": "2025-03-14T09:30:00Z",
		"description": fmt.Sprintf("Incident %s revision %d: scheduled dose given late.", id, rev),
		"patients":    []map[string]any{{"physical_harm": "none", "psychological_harm": "none"}},
		"location":    map[string]any{"organisation": "RRK"},
	})
	deadline := time.Now().Add(2 * time.Minute)
	for try := s.next.Add(1); time.Now().Before(deadline); try++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		base := s.base(try)
		if base == "" {
			s.refresh()
			time.Sleep(200 * time.Millisecond)
			continue
		}
		resp, err := s.client.Post(base+"/api/v1/incidents", "application/json", bytes.NewReader(body))
		if err != nil {
			s.refresh()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusAccepted:
			s.acceptedN.Add(1)
			s.mu.Lock()
			s.accepted[id] = max(s.accepted[id], rev)
			s.mu.Unlock()
			return nil
		case resp.StatusCode >= 500:
			s.fiveXX.Add(1)
			wait := time.Second
			if ra := resp.Header.Get("Retry-After"); ra != "" {
				var sec int
				if _, err := fmt.Sscanf(ra, "%d", &sec); err == nil {
					wait = time.Duration(sec) * time.Second
				}
			}
			time.Sleep(min(wait, 5*time.Second))
		default:
			return fmt.Errorf("%s r%d: HTTP %d", id, rev, resp.StatusCode)
		}
	}
	return fmt.Errorf("%s r%d: not accepted within 2 minutes", id, rev)
}

// load sends n incidents named prefix-NNNN from 4 senders, amending every third (revision 2
// right after revision 1), spread evenly over spread so that the load runs through the
// case's fault, until done or ctx ends.
func (s *source) load(ctx context.Context, t *testing.T, prefix string, n int, spread time.Duration) {
	var wg sync.WaitGroup
	work := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range work {
				id := fmt.Sprintf("%s-%04d", prefix, i)
				if err := s.send(ctx, id, 1); err != nil {
					t.Errorf("sending: %v", err)
					continue
				}
				if i%3 == 0 {
					if err := s.send(ctx, id, 2); err != nil {
						t.Errorf("amending: %v", err)
					}
				}
			}
		})
	}
	start := time.Now()
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		if wait := time.Until(start.Add(spread * time.Duration(i) / time.Duration(n))); wait > 0 {
			time.Sleep(wait)
		}
		work <- i
	}
	close(work)
	wg.Wait()
}

func (s *source) snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.accepted))
	for k, v := range s.accepted {
		out[k] = v
	}
	return out
}

type record struct {
	State      string `json:"state"`
	Revision   int    `json:"revision"`
	NationalID string `json:"national_id"`
	LastError  string `json:"last_error"`
}

// settled waits until every incident in want is delivered at its revision or a newer one, as
// a replica's API shows it; with mayBeUnknown, an unknown one (its gateway died mid-POST)
// counts as settled. It returns the ids found unknown.
func (s *source) settled(t *testing.T, want map[string]int, mayBeUnknown bool, within time.Duration) []string {
	t.Helper()
	pending := make(map[string]int, len(want))
	for k, v := range want {
		pending[k] = v
	}
	var unknown []string
	deadline := time.Now().Add(within)
	last := ""
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			for id := range pending {
				t.Logf("not settled: %s", s.raw("/api/v1/incidents/datix/"+id))
				break
			}
			s.e.diagnoseStuck()
			t.Fatalf("%d incidents not delivered within %v; e.g. %s", len(pending), within, last)
		}
		for id, rev := range pending {
			var rec record
			if !s.get("/api/v1/incidents/datix/"+id, &rec) {
				break
			}
			switch {
			// A newer revision delivered settles it too: the incident database amends rows
			// while the check runs.
			case rec.State == "delivered" && rec.Revision >= rev && rec.NationalID != "":
				delete(pending, id)
			case rec.State == "unknown" && mayBeUnknown:
				unknown = append(unknown, id)
				delete(pending, id)
			case rec.State == "unknown":
				// Unknown is final until an operator resolves it: waiting on would only
				// hide the cause, so the record and its history are shown now.
				t.Errorf("%s is unknown, which nothing in this case explains:\n%s", id, s.raw("/api/v1/incidents/datix/"+id))
				unknown = append(unknown, id)
				delete(pending, id)
			default:
				last = fmt.Sprintf("%s: state %s revision %d (want %d) %s", id, rec.State, rec.Revision, rev, rec.LastError)
			}
		}
		if len(pending) > 0 {
			time.Sleep(500 * time.Millisecond)
		}
	}
	return unknown
}

// raw is path's answer from whichever replica answers, for a failure's message.
func (s *source) raw(path string) string {
	var v json.RawMessage
	if !s.get(path, &v) {
		return "(no replica answered " + path + ")"
	}
	var b bytes.Buffer
	_ = json.Indent(&b, v, "", "  ")
	return b.String()
}

// get reads path from whichever replica answers into v.
func (s *source) get(path string, v any) bool {
	for i := range int64(4) {
		base := s.base(i)
		if base == "" {
			s.refresh()
			continue
		}
		resp, err := s.client.Get(base + path)
		if err != nil {
			s.refresh()
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(v)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK {
			return true
		}
	}
	return false
}

var describedID = regexp.MustCompile(`Incident ([A-Za-z0-9]+-[0-9]+) revision`)

// createdOnce reads the simulator's events and fails the test for an incident it holds
// twice; it returns how many incidents it holds and how many of them more than once.
func (e *env) createdOnce(t *testing.T) (held, twice int) {
	t.Helper()
	count, err := simHolds(e.url(e.sim, "8090"))
	if err != nil {
		t.Fatal(err)
	}
	var more []string
	for id, n := range count {
		if n > 1 {
			more = append(more, fmt.Sprintf("%s×%d", id, n))
		}
	}
	sort.Strings(more)
	if len(more) > 0 {
		t.Errorf("the national service holds %d incidents more than once: %v", len(more), more)
	}
	return len(count), len(more)
}

// simHolds counts the incidents the simulator at base was sent as created, by the local id
// their description names.
func simHolds(base string) (map[string]int, error) {
	resp, err := http.Get(base + "/_sim/events")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var events []struct {
		Resource json.RawMessage `json:"resource"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&events); err != nil {
		return nil, fmt.Errorf("the simulator's events: %w", err)
	}
	count := map[string]int{}
	for _, ev := range events {
		if m := describedID.FindSubmatch(ev.Resource); m != nil {
			count[string(m[1])]++
		}
	}
	return count, nil
}

// waitReady waits until a replica's /readyz answers 200, logging how long it took; when it
// does not within the deadline, it writes what the replica and the cluster show into the
// test's output (diagnose) before failing.
func (e *env) waitReady(container string, within time.Duration) {
	e.t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	last := "no published port yet"
	for time.Now().Before(deadline) {
		// A replica that exited (psgw gave up its start) will not become ready: say why now.
		if st, _ := e.dockerErr("inspect", "--format", "{{.State.Status}}", container); st == "exited" || st == "dead" {
			e.diagnose(container)
			e.t.Fatalf("%s %s after %v, before it was ready (its log above)", container, st, time.Since(start).Round(100*time.Millisecond))
		}
		if addr, err := dockertest.Published(container, "8080"); err == nil {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				last = "GET /readyz: " + err.Error()
			} else {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					since := "its start"
					started, _ := e.dockerErr("inspect", "--format", "{{.State.StartedAt}}", container)
					if at, err := time.Parse(time.RFC3339Nano, started); err == nil {
						since = fmt.Sprintf("%v after its start", time.Since(at).Round(100*time.Millisecond))
					}
					e.t.Logf("%s ready %s (waited %v)", container, since, time.Since(start).Round(100*time.Millisecond))
					return
				}
				last = fmt.Sprintf("GET /readyz: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
			}
		} else {
			last = err.Error()
		}
		time.Sleep(500 * time.Millisecond)
	}
	e.diagnose(container)
	e.t.Fatalf("%s not ready within %v; last: %s", container, within, last)
}

// diagnose writes into the test's output what is known about a replica that did not become
// ready: the machine's load, the container's state, its whole log (stdout and stderr), its
// /readyz answer, and each NATS node's state, log and monitoring reports (/healthz, /jsz,
// /routez), so that a start-up failure can be understood from the run that had it.
func (e *env) diagnose(container string) {
	e.t.Helper()
	load, _ := os.ReadFile("/proc/loadavg")
	e.t.Logf("=== diagnosis of %s (load average %s)", container, strings.TrimSpace(string(load)))
	state, _ := e.dockerErr("inspect", "--format",
		"status={{.State.Status}} exit={{.State.ExitCode}} oom={{.State.OOMKilled}} started={{.State.StartedAt}} restarts={{.RestartCount}}", container)
	e.t.Logf("--- %s state: %s", container, state)
	logs, _ := e.dockerErr("logs", "--timestamps", container)
	e.t.Logf("--- %s log (stdout and stderr, whole):\n%s", container, logs)
	if addr, err := dockertest.Published(container, "8080"); err == nil {
		e.t.Logf("--- %s /readyz: %s", container, httpText("http://"+addr+"/readyz"))
	} else {
		e.t.Logf("--- %s /readyz: %v", container, err)
	}
	for i := 1; i <= 3; i++ {
		node := fmt.Sprintf("%s-nats-%d", e.prefix, i)
		state, _ := e.dockerErr("inspect", "--format", "status={{.State.Status}} started={{.State.StartedAt}}", node)
		logs, _ := e.dockerErr("logs", "--timestamps", node)
		e.t.Logf("--- %s state: %s; log:\n%s", node, state, logs)
		addr, err := dockertest.Published(node, "8222")
		if err != nil {
			e.t.Logf("--- %s monitoring: %v", node, err)
			continue
		}
		base := "http://" + addr
		for _, path := range []string{"/healthz", "/jsz?streams=true&consumers=true&raft=true", "/routez"} {
			e.t.Logf("--- %s %s: %s", node, path, httpText(base+path))
		}
	}
	e.t.Logf("=== end of diagnosis of %s", container)
}

// diagnoseStuck writes what the cluster holds when incidents do not settle: each node's view
// of the outbox stream and its consumer (messages, pending acks, redeliveries, ack floor),
// then each replica's goroutines, taken with SIGQUIT (which ends it: the case fails anyway),
// so that a message a replica holds and does not handle can be told from one the server
// does not deliver again (run 15, docs/cluster.md).
func (e *env) diagnoseStuck() {
	e.t.Helper()
	for i := 1; i <= 3; i++ {
		node := fmt.Sprintf("%s-nats-%d", e.prefix, i)
		addr, err := dockertest.Published(node, "8222")
		if err != nil {
			e.t.Logf("--- %s: %v", node, err)
			continue
		}
		resp, err := http.Get("http://" + addr + "/jsz?streams=true&consumers=true&config=true")
		if err != nil {
			e.t.Logf("--- %s /jsz: %v", node, err)
			continue
		}
		var jsz struct {
			Accounts []struct {
				Streams []json.RawMessage `json:"stream_detail"`
			} `json:"account_details"`
		}
		err = json.NewDecoder(resp.Body).Decode(&jsz)
		resp.Body.Close()
		if err != nil {
			e.t.Logf("--- %s /jsz: %v", node, err)
			continue
		}
		for _, a := range jsz.Accounts {
			for _, st := range a.Streams {
				var named struct {
					Name string `json:"name"`
				}
				if json.Unmarshal(st, &named) == nil && named.Name == "PSGW_OUTBOX" {
					e.t.Logf("--- %s: the outbox stream and its consumer: %s", node, st)
				}
			}
		}
	}
	for _, r := range e.replicas {
		_, _ = e.dockerErr("kill", "--signal", "QUIT", r)
		_, _ = e.dockerErr("wait", r)
		out, _ := e.dockerErr("logs", "--tail", "3000", r)
		e.t.Logf("--- %s after SIGQUIT (its goroutines):\n%s", r, out)
	}
}

// httpText is a GET's status and body (up to 64 KB), or the error, for a diagnosis.
func httpText(url string) string {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return fmt.Sprintf("%d %s", resp.StatusCode, body)
}

// adapterStatus is what the replica's API says of the adapter name: its state (running on the
// lease's holder, standby on the other), and the records and duplicates it stored since the
// replica started. ok is false when the replica does not answer.
type adapterStatus struct {
	Name, State         string
	Records, Duplicates uint64
}

func (e *env) adapter(replica, name string) (adapterStatus, bool) {
	addr, err := dockertest.Published(replica, "8080")
	if err != nil {
		return adapterStatus{}, false // a killed replica publishes no port
	}
	resp, err := http.Get("http://" + addr + "/api/v1/status")
	if err != nil {
		return adapterStatus{}, false
	}
	defer resp.Body.Close()
	var st struct {
		Adapters []adapterStatus `json:"adapters"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return adapterStatus{}, false
	}
	for _, a := range st.Adapters {
		if a.Name == name {
			return a, true
		}
	}
	return adapterStatus{}, false
}

// holder is the replica whose adapter name runs (it holds the adapter's lease; the other
// stands by), waiting up to a minute for one to run it.
func (e *env) holder(t *testing.T, name string) (holder, other string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for i, r := range e.replicas {
			if a, ok := e.adapter(r, name); ok && a.State == "running" {
				return r, e.replicas[1-i]
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("no replica runs the %s adapter", name)
	return "", ""
}
