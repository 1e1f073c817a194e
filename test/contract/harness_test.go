// Package contract is a black-box test of psgw against its external contract (the command line of
// README.md, docs/api.md, docs/delivery.md "The national API" and docs/privacy.md). It builds
// cmd/psgw once, runs the gateway and the national-service simulator as real subprocesses on free
// ports, and speaks to them only through their public interfaces: the command line, the HTTP ingest
// and ops API, HL7 v2 over MLLP, the simulator's LFPSE API and its /_sim/events test endpoint, and
// their logs. The tests are written from the contract alone; where the product deviates they fail.
package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// simKey is the subscription key the shared simulator accepts.
const simKey = "contract-test-key"

var (
	psgwBin string // the binary built once in TestMain
	tmpRoot string // removed after the run

	sharedOnce sync.Once
	sharedEnv  *env
	sharedErr  error
)

func TestMain(m *testing.M) {
	var err error
	tmpRoot, err = os.MkdirTemp("", "psgw-contract-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	psgwBin = filepath.Join(tmpRoot, "psgw")
	build := exec.Command("go", "build", "-o", psgwBin, "github.com/psgw/psgw/cmd/psgw")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building psgw:", err)
		_ = os.RemoveAll(tmpRoot)
		os.Exit(1)
	}
	code := m.Run()
	if sharedEnv != nil {
		sharedEnv.close()
	}
	_ = os.RemoveAll(tmpRoot)
	os.Exit(code)
}

// ---------------------------------------------------------------------------------------------
// processes

// syncBuf collects a subprocess's output; safe for concurrent write and read.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one psgw subprocess.
type proc struct {
	cmd    *exec.Cmd
	out    syncBuf // stdout and stderr together
	done   chan struct{}
	exitMu sync.Mutex
	state  *os.ProcessState
}

// cleanEnv is the test process's environment without any PSGW_ variable, so that nothing set
// on the machine leaks into a gateway under test.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PSGW_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func startProc(dir string, env []string, args ...string) (*proc, error) {
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(psgwBin, args...)
	p.cmd.Env = env
	p.cmd.Dir = dir
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = p.cmd.Wait()
		p.exitMu.Lock()
		p.state = p.cmd.ProcessState
		p.exitMu.Unlock()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop sends SIGTERM and waits, then SIGKILL.
func (p *proc) stop() { p.stopWithin(20 * time.Second) }

// stopWithin sends SIGTERM, waits up to d, then SIGKILL; it reports whether SIGTERM sufficed.
func (p *proc) stopWithin(d time.Duration) bool {
	if p == nil || p.exited() {
		return true
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		return false
	}
}

func freeAddr(t testing.TB) string {
	if t != nil {
		t.Helper()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		if t != nil {
			t.Fatal(err)
		}
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ---------------------------------------------------------------------------------------------
// the simulator

type simProc struct {
	*proc
	addr string
	url  string
}

func launchSim(args ...string) (*simProc, error) {
	addr := freeAddr(nil)
	p, err := startProc(tmpRoot, cleanEnv(), append([]string{"sim", "--addr", addr, "--log-level", "debug"}, args...)...)
	if err != nil {
		return nil, err
	}
	s := &simProc{proc: p, addr: addr, url: "http://" + addr}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			return nil, fmt.Errorf("psgw sim exited at start:\n%s", p.out.String())
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return s, nil
		}
		time.Sleep(20 * time.Millisecond) // polled by hand: this returns an error, wait.For would end the test
	}
	p.stop()
	return nil, fmt.Errorf("psgw sim did not listen on %s:\n%s", addr, p.out.String())
}

// startSim runs `psgw sim --addr <free port> --key simKey [args]` for one test.
func startSim(t *testing.T, args ...string) *simProc {
	t.Helper()
	s, err := launchSim(append([]string{"--key", simKey}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

// simEvent is one entry of GET /_sim/events.
type simEvent struct {
	ID       string          `json:"id"`
	Resource json.RawMessage `json:"resource"`
	raw      json.RawMessage
}

func (s *simProc) eventsRaw(t *testing.T) []byte {
	t.Helper()
	resp, err := http.Get(s.url + "/_sim/events")
	if err != nil {
		t.Fatalf("GET /_sim/events: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /_sim/events: %d %s", resp.StatusCode, b)
	}
	return b
}

func (s *simProc) events(t *testing.T) []simEvent {
	t.Helper()
	b := s.eventsRaw(t)
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		// Some simulators wrap the list.
		var wrapped map[string]json.RawMessage
		if err2 := json.Unmarshal(b, &wrapped); err2 != nil {
			t.Fatalf("GET /_sim/events is not JSON: %v", err)
		}
		for _, k := range []string{"events", "items", "entry"} {
			if v, ok := wrapped[k]; ok {
				_ = json.Unmarshal(v, &raws)
				break
			}
		}
	}
	out := make([]simEvent, 0, len(raws))
	for _, r := range raws {
		var e simEvent
		_ = json.Unmarshal(r, &e)
		e.raw = r
		if len(e.Resource) == 0 {
			e.Resource = r
		}
		out = append(out, e)
	}
	return out
}

// resource decodes the stored AdverseEvent of a simulator event.
func (e simEvent) resource() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(e.Resource, &m)
	return m
}

func (e simEvent) resourceID() string {
	if id, _ := e.resource()["id"].(string); id != "" {
		return id
	}
	return e.ID
}

// eventByNationalID finds the simulator's event with this id.
func (s *simProc) eventByNationalID(t *testing.T, id string) (simEvent, bool) {
	t.Helper()
	for _, e := range s.events(t) {
		if e.resourceID() == id || e.ID == id {
			return e, true
		}
	}
	return simEvent{}, false
}

// eventsContaining counts the simulator's events whose stored JSON contains marker.
func (s *simProc) eventsContaining(t *testing.T, marker string) int {
	t.Helper()
	n := 0
	for _, e := range s.events(t) {
		if bytes.Contains(e.raw, []byte(marker)) {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------------------------------------
// the gateway

type gateway struct {
	*proc
	http    string // host:port
	mllp    string // host:port, "" when disabled
	dataDir string
}

func (g *gateway) url(path string) string { return "http://" + g.http + path }

type gwOpts struct {
	env      map[string]string // PSGW_ variables; "" values are set as empty
	args     []string          // after "run"
	dir      string            // working directory; a temp dir when empty
	noMLLP   bool
	noData   bool   // do not set PSGW_DATA_DIR
	waitFor  string // "/readyz" (default) or "/healthz"
	simURL   string // PSGW_NATIONAL_BASE_URL (with simKey) unless env sets it
	noNation bool   // no national endpoint at all
}

func gatewayEnv(o gwOpts, httpAddr, mllpAddr, dataDir string) []string {
	env := cleanEnv()
	set := map[string]string{
		"PSGW_HTTP_ADDR":                    httpAddr,
		"PSGW_MLLP_ADDR":                    mllpAddr,
		"PSGW_LOG_LEVEL":                    "debug",
		"PSGW_NATIONAL_BACKOFF_INITIAL":     "50ms",
		"PSGW_NATIONAL_BACKOFF_MAX":         "500ms",
		"PSGW_NATIONAL_TIMEOUT":             "5s",
		"PSGW_NATIONAL_AUTH_PROBE_INTERVAL": "1s",
	}
	if !o.noData {
		set["PSGW_DATA_DIR"] = dataDir
	}
	if o.simURL != "" && !o.noNation {
		set["PSGW_NATIONAL_BASE_URL"] = o.simURL
		set["PSGW_NATIONAL_SUBSCRIPTION_KEY"] = simKey
	}
	for k, v := range o.env {
		set[k] = v
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

func launchGateway(o gwOpts, tempDir func() string) (*gateway, error) {
	g := &gateway{http: freeAddr(nil)}
	if !o.noMLLP {
		g.mllp = freeAddr(nil)
	}
	if v, ok := o.env["PSGW_HTTP_ADDR"]; ok {
		g.http = v
	}
	if v, ok := o.env["PSGW_MLLP_ADDR"]; ok {
		g.mllp = v
	}
	g.dataDir = filepath.Join(tempDir(), "data")
	dir := o.dir
	if dir == "" {
		dir = tempDir()
	}
	p, err := startProc(dir, gatewayEnv(o, g.http, g.mllp, g.dataDir), append([]string{"run"}, o.args...)...)
	if err != nil {
		return nil, err
	}
	g.proc = p
	wait := o.waitFor
	if wait == "" {
		wait = "/readyz"
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			return nil, fmt.Errorf("psgw run exited at start:\n%s", p.out.String())
		}
		resp, err := client.Get(g.url(wait))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return g, nil
			}
		}
		time.Sleep(25 * time.Millisecond) // polled by hand: this returns an error, wait.For would end the test
	}
	p.stop()
	return nil, fmt.Errorf("psgw run did not answer 200 on %s:\n%s", wait, p.out.String())
}

// startGateway runs `psgw run` for one test. At the end it is stopped and its log is checked
// for patient identifiers (docs/privacy.md, "What never leaves").
func startGateway(t *testing.T, o gwOpts) *gateway {
	t.Helper()
	g, err := launchGateway(o, t.TempDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.stop()
		assertNoIdentifiers(t, "log of psgw run ("+t.Name()+")", g.out.String())
	})
	return g
}

// env is the shared simulator and gateway most ingest, MLLP and ops tests use.
type env struct {
	sim            *simProc
	gw             *gateway
	initialMetrics string // /metrics scraped right after start, before anything was sent
}

func (e *env) close() {
	e.gw.stop()
	e.sim.stop()
}

// shared starts (once) the simulator and a gateway delivering to it, with debug logging so that
// the log check sees as much as the gateway can write.
func shared(t *testing.T) *env {
	t.Helper()
	sharedOnce.Do(func() {
		s, err := launchSim("--key", simKey)
		if err != nil {
			sharedErr = err
			return
		}
		n := 0
		g, err := launchGateway(gwOpts{simURL: s.url}, func() string {
			n++
			d := filepath.Join(tmpRoot, fmt.Sprintf("shared-%d", n))
			_ = os.MkdirAll(d, 0o755)
			return d
		})
		if err != nil {
			s.stop()
			sharedErr = err
			return
		}
		e := &env{sim: s, gw: g}
		_, body := httpGet(nil, g.url("/metrics"))
		e.initialMetrics = string(body)
		sharedEnv = e
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedEnv
}

// ---------------------------------------------------------------------------------------------
// HTTP

var client = &http.Client{Timeout: 20 * time.Second}

func httpGet(t *testing.T, u string) (int, []byte) {
	if t != nil {
		t.Helper()
	}
	resp, err := client.Get(u)
	if err != nil {
		if t != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func (r httpResult) String() string {
	b := r.body
	if len(b) > 600 {
		b = append(b[:600:600], "…"...)
	}
	return fmt.Sprintf("HTTP %d %s", r.status, b)
}

func doReq(t *testing.T, method, u string, body io.Reader, header map[string]string) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{status: resp.StatusCode, header: resp.Header, body: b}
}

// post sends a body to POST /api/v1/incidents as application/json.
func (g *gateway) post(t *testing.T, body []byte) httpResult {
	t.Helper()
	return doReq(t, http.MethodPost, g.url("/api/v1/incidents"), bytes.NewReader(body), map[string]string{"Content-Type": "application/json"})
}

func (g *gateway) postIncident(t *testing.T, inc map[string]any) httpResult {
	t.Helper()
	return g.post(t, mustJSON(t, inc))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// accepted is the 202 body.
type accepted struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Duplicate *bool  `json:"duplicate"`
}

// mustAccept posts and checks the 202 body shape; it returns the duplicate flag.
func (g *gateway) mustAccept(t *testing.T, inc map[string]any) accepted {
	t.Helper()
	r := g.postIncident(t, inc)
	return checkAccepted(t, r)
}

func checkAccepted(t *testing.T, r httpResult) accepted {
	t.Helper()
	if r.status != http.StatusAccepted {
		t.Fatalf("want 202 Accepted, got %s", r)
	}
	var a accepted
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("202 body is not JSON: %v: %s", err, r.body)
	}
	if a.ID == "" || a.Status != "accepted" || a.Duplicate == nil {
		t.Fatalf(`202 body must be {"id": "...", "status": "accepted", "duplicate": bool}; got %s`, r.body)
	}
	return a
}

// problemsBody is the 400 body.
type problemsBody struct {
	Error    string           `json:"error"`
	Problems []map[string]any `json:"problems"`
}

// check400 checks the 400 body shape and returns the problems' fields.
func check400(t *testing.T, r httpResult) []string {
	t.Helper()
	if r.status != http.StatusBadRequest {
		t.Fatalf("want 400, got %s", r)
	}
	var p problemsBody
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("400 body is not JSON: %v: %s", err, r.body)
	}
	if strings.TrimSpace(p.Error) == "" {
		t.Errorf("400 body has no error text: %s", r.body)
	}
	if len(p.Problems) == 0 {
		t.Fatalf("400 body has no problems: %s", r.body)
	}
	var fields []string
	for _, pr := range p.Problems {
		f, okF := pr["field"].(string)
		m, okM := pr["message"].(string)
		if !okF || !okM {
			t.Errorf("each problem must be {\"field\": string, \"message\": string}; got %v", pr)
		}
		if strings.TrimSpace(m) == "" {
			t.Errorf("problem for field %q has an empty message", f)
		}
		fields = append(fields, f)
	}
	return fields
}

// record is the delivery record of GET /api/v1/incidents/{source}/{local_id}.
type record struct {
	Source            string `json:"source"`
	LocalID           string `json:"local_id"`
	Revision          int64  `json:"revision"`
	State             string `json:"state"`
	NationalID        string `json:"national_id"`
	NationalReference string `json:"national_reference"`
	Attempts          int    `json:"attempts"`
	LastError         string `json:"last_error"`
	History           []struct {
		At     string `json:"at"`
		State  string `json:"state"`
		Detail string `json:"detail"`
	} `json:"history"`
}

var allStates = map[string]bool{
	"received": true, "queued": true, "delivering": true, "delivered": true, "retrying": true,
	"rejected": true, "quarantined": true, "held": true, "unknown": true, "failed": true,
}

// settled states: the incident will not move on by itself.
var settledStates = map[string]bool{
	"delivered": true, "rejected": true, "quarantined": true, "held": true, "unknown": true, "failed": true,
}

func (g *gateway) recordURL(source, localID string) string {
	return g.url("/api/v1/incidents/" + url.PathEscape(source) + "/" + url.PathEscape(localID))
}

// getRecord fetches a delivery record; ok is false on 404.
func (g *gateway) getRecord(t *testing.T, source, localID string) (record, bool) {
	t.Helper()
	code, b := httpGet(t, g.recordURL(source, localID))
	if code == http.StatusNotFound {
		return record{}, false
	}
	if code != 200 {
		t.Fatalf("GET record %s/%s: %d %s", source, localID, code, b)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("record is not JSON: %v: %s", err, b)
	}
	return r, true
}

// waitRecord polls the record until pred holds.
func (g *gateway) waitRecord(t *testing.T, source, localID string, timeout time.Duration, what string, pred func(record) bool) record {
	t.Helper()
	var last record
	var seen bool
	deadline := time.Now().Add(timeout)
	for {
		r, ok := g.getRecord(t, source, localID)
		if ok {
			last, seen = r, true
			if pred(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			if !seen {
				t.Fatalf("%s/%s: no record after %s (waiting for %s)", source, localID, timeout, what)
			}
			b, _ := json.Marshal(last)
			t.Fatalf("%s/%s: not %s after %s; last record: %s", source, localID, what, timeout, b)
		}
		time.Sleep(40 * time.Millisecond) // a condition polled by hand: this black-box package imports nothing of the repository, test/wait included
	}
}

func (g *gateway) waitState(t *testing.T, source, localID, state string) record {
	t.Helper()
	return g.waitRecord(t, source, localID, 20*time.Second, "in state "+state, func(r record) bool { return r.State == state })
}

func (g *gateway) waitSettled(t *testing.T, source, localID string) record {
	t.Helper()
	return g.waitRecord(t, source, localID, 20*time.Second, "settled", func(r record) bool { return settledStates[r.State] })
}

// healthy fails the test if /healthz does not answer 200 (the gateway crashed or wedged).
func (g *gateway) healthy(t *testing.T) {
	t.Helper()
	if g.exited() {
		t.Fatalf("psgw exited; log tail:\n%s", tail(g.out.String(), 3000))
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(g.url("/healthz"))
	if err != nil {
		t.Fatalf("/healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// ---------------------------------------------------------------------------------------------
// incidents and identifiers

var idSeq atomic.Int64

// uid returns a local id unique within the run.
func uid(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, idSeq.Add(1))
}

// incident returns a valid incident with the core fields only.
func incident(localID string) map[string]any {
	return map[string]any{
		"source":      "datix",
		"local_id":    localID,
		"event_type":  "incident",
		"occurred_at": "2025-03-14T09:30:00Z",
		"description": "Scheduled IV antibiotic dose given about four hours late (" + localID + ").",
	}
}

// fullIncident is a valid incident with every core field, naming a patient.
func fullIncident(localID string) map[string]any {
	m := incident(localID)
	m["revision"] = 1
	m["immediate_actions"] = "Dose given; prescriber informed"
	m["patients"] = []any{map[string]any{
		"nhs_number": nhsFull, "local_patient_id": lpidFull, "date_of_birth": dobFull, "sex": "female",
		"physical_harm": "none", "psychological_harm": "none",
	}}
	m["location"] = map[string]any{"organisation": "RRK"}
	m["reporter"] = map[string]any{"role": "Nurse or midwife", "organisation": "RRK"}
	return m
}

// nhsCheck returns the Modulus 11 check digit of nine digits, or -1 when there is none.
func nhsCheck(nine string) int {
	sum := 0
	for i := 0; i < 9; i++ {
		sum += int(nine[i]-'0') * (10 - i)
	}
	c := 11 - sum%11
	if c == 11 {
		c = 0
	}
	if c == 10 {
		return -1
	}
	return c
}

func nhsNumber(nine string) string {
	c := nhsCheck(nine)
	if c < 0 {
		panic("no check digit for " + nine)
	}
	return fmt.Sprintf("%s%d", nine, c)
}

// Identifiers sent to the gateways. None of them may reach the national service or a log.
var (
	nhsFull  = "9434765919"           // README example, valid
	nhsEnr   = nhsNumber("401023213") // named by the EPR's ADT feed
	nhsEnr2  = nhsNumber("450557710")
	nhsText  = nhsNumber("485777345") // typed into free text
	nhsBad   = nhsNumber("512345678") // used in rejected incidents
	nhsKill  = nhsNumber("401023214") // registered just before a SIGKILL
	lpidFull = "LPX-778311"
	lpidEnr  = "MRN-55120937"
	lpidEnr2 = "MRN-55120938"
	dobFull  = "1975-03-01"
	dobEnr   = "1938-07-23"
	dobEnr2  = "1947-11-02"
	dobBad   = "1961-12-13"
	// names, address parts and phone numbers from ADT messages
	familyEnr = "QUILLFEATHER"
	givenEnr  = "ZEBEDIAH"
	family2   = "MORTLOCKE"
	given2    = "PERPETUA"
	streetEnr = "7 PUDDING LANE"
	postEnr   = "LS17 8QX"
	phoneEnr  = "01134960872"
)

// sensitive lists every identifier in the forms it could be written in.
func sensitive() []string {
	var out []string
	for _, n := range []string{nhsFull, nhsEnr, nhsEnr2, nhsText, nhsBad, nhsKill} {
		out = append(out, n, n[:3]+" "+n[3:6]+" "+n[6:])
	}
	for _, d := range []string{dobFull, dobEnr, dobEnr2, dobBad} {
		out = append(out, d, strings.ReplaceAll(d, "-", ""))
	}
	return append(out, lpidFull, lpidEnr, lpidEnr2, familyEnr, givenEnr, family2, given2, streetEnr, postEnr, phoneEnr)
}

// assertNoIdentifiers fails when text holds any identifier the tests sent.
func assertNoIdentifiers(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range sensitive() {
		if i := strings.Index(text, s); i >= 0 {
			lo, hi := max(0, i-200), min(len(text), i+len(s)+200)
			t.Errorf("%s contains the identifier %q: …%s…", where, s, text[lo:hi])
		}
	}
}

// ---------------------------------------------------------------------------------------------
// running psgw commands to completion

type cmdResult struct {
	code           int
	stdout, stderr string
}

func runPsgw(t *testing.T, dir string, env []string, stdin io.Reader, timeout time.Duration, args ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, psgwBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = stdin
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			t.Fatalf("psgw %v: %v", args, err)
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("psgw %v did not finish within %s", args, timeout)
	}
	return cmdResult{code: code, stdout: so.String(), stderr: se.String()}
}
