// Package browser drives the status page in a real headless Chromium against a real gateway
// and the national-service simulator: the page loads, counts move when incidents arrive, a
// rejection is listed and replayed, and a viewer's actions are refused. It also takes the
// screenshots in docs/ (go test ./test/browser -args -screenshots).
package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/wait"
)

var screenshots = flag.Bool("screenshots", false, "write the page screenshots to docs/ (otherwise to a temporary directory)")

const (
	simKey        = "browser-subscription-key"
	operatorToken = "alice-operator-token-0001"
	viewerToken   = "bob-viewer-token-000000001"
)

// chromium finds a Chromium or Chrome binary; PSGW_CHROMIUM overrides the search.
func chromium() string {
	if p := os.Getenv("PSGW_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// gatewayUnderTest is a real gateway (embedded JetStream in a temp dir) delivering to a real
// simulator. While accept is set, the national service has "fixed" whatever made it refuse:
// the reject marker is taken out of payloads before the simulator sees them.
type gatewayUnderTest struct {
	t      *testing.T
	gw     *gateway.Gateway
	base   string
	accept atomic.Bool
}

func startGateway(t *testing.T) *gatewayUnderTest {
	t.Helper()
	s, err := gateway.NewSimulator([]string{simKey}, sim.Faults{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	g := &gatewayUnderTest{t: t}
	simSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.accept.Load() && r.Body != nil {
			b, _ := io.ReadAll(r.Body)
			b = bytes.ReplaceAll(b, []byte(sim.DefaultRejectMarker), nil)
			r.Body = io.NopCloser(bytes.NewReader(b))
			r.ContentLength = int64(len(b))
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(simSrv.Close)

	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config).Addr = ""
	cfg.Queue.Sync = "1s"
	cfg.National.BaseURL = simSrv.URL
	cfg.National.SubscriptionKey = simKey
	cfg.National.BackoffInitial = 20 * time.Millisecond
	cfg.National.BackoffMax = 200 * time.Millisecond
	cfg.Ops.OperatorTokens = []string{"alice:" + operatorToken}
	cfg.Ops.ViewerTokens = []string{"bob:" + viewerToken}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	log := zerolog.Nop()
	if testing.Verbose() {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.WarnLevel)
	}
	gw, err := gateway.Start(context.Background(), cfg, gateway.Options{Logger: log, Version: "test"})
	if err != nil {
		t.Fatalf("starting gateway: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		gw.Stop(ctx)
	})
	g.gw, g.base = gw, "http://"+gw.HTTPAddr()
	return g
}

func (g *gatewayUnderTest) post(localID, description string) {
	g.t.Helper()
	in := map[string]any{
		"source": "datix", "local_id": localID, "revision": 1, "event_type": "incident",
		"occurred_at": "2025-03-14T09:30:00Z", "description": description,
		"patients": []map[string]any{{"nhs_number": "9434765919", "date_of_birth": "1975-03-01", "sex": "female",
			"physical_harm": "low", "psychological_harm": "none"}},
		"location": map[string]any{"organisation": "RRK"},
		"reporter": map[string]any{"role": "Nurse or midwife", "organisation": "RRK"},
	}
	b, _ := json.Marshal(in)
	resp, err := http.Post(g.base+"/api/v1/incidents", "application/json", bytes.NewReader(b))
	if err != nil {
		g.t.Fatalf("POST incident: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		body, _ := io.ReadAll(resp.Body)
		g.t.Fatalf("POST incident %s: got %d %s, want 202", localID, resp.StatusCode, body)
	}
}

// state asks the API (as the operator) for an incident's state.
func (g *gatewayUnderTest) state(localID string) string {
	req, _ := http.NewRequest(http.MethodGet, g.base+"/api/v1/incidents/datix/"+localID, nil)
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var r struct {
		State string `json:"state"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return r.State
}

func TestStatusPage(t *testing.T) {
	exe := chromium()
	if exe == "" {
		t.Skip("no Chromium found (install Debian's chromium, or set PSGW_CHROMIUM): skipping the browser test")
	}
	g := startGateway(t)

	// Some history, so the page has something to show.
	for i := 1; i <= 6; i++ {
		g.post(fmt.Sprintf("INC-%04d", 1000+i), fmt.Sprintf("Scheduled IV antibiotic dose %d given late.", i))
	}
	g.post("INC-0999", "Refused by the national service [sim:reject]")
	waitAPI(t, g, "INC-0999", "rejected")
	waitAPI(t, g, "INC-1006", "delivered")

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelTimeout()

	shotDir := t.TempDir()
	if *screenshots {
		shotDir = filepath.Join("..", "..", "docs")
	}
	shot := func(name string, width, height int64) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
				return chromedp.Void{}, err
			}
			buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				return chromedp.Void{}, err
			}
			return chromedp.Void{}, os.WriteFile(filepath.Join(shotDir, name), buf, 0o644)
		}
	}
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	// 1. Load the page: without a session it asks for a token; the operator signs in.
	do("sign in as operator",
		chromedp.Navigate(g.base+"/"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), operatorToken),
		chromedp.Click(css("#sign-in")),
		chromedp.WaitVisible(css(`#me[data-role="operator"]`)),
		chromedp.WaitVisible(css(`#count-delivered[data-count="6"]`)),
	)

	// 2. Post an incident and see the counts change, without reloading.
	g.post("INC-1007", "Patient fall on ward 7; no injury.")
	do("delivered count moves to 7", chromedp.WaitVisible(css(`#count-delivered[data-count="7"]`)))

	// 3. Force a rejection and see it listed.
	g.post("INC-1008", "Wrong-site block narrowly avoided [sim:reject]")
	rejectedRow := `#list-rejected tr[data-local-id="INC-1008"]`
	do("rejection listed",
		chromedp.WaitVisible(css(rejectedRow)),
		chromedp.WaitVisible(css(`#count-rejected[data-count="2"]`)),
		shot("status-overview.png", 1280, 900),
		shot("status-overview-phone.png", 390, 844),
		chromedp.EmulateViewport(1280, 900),
	)

	// 4. Replay it, once the national service accepts it: it leaves the list and is delivered.
	g.accept.Store(true)
	do("replay from the overview",
		chromedp.Click(css(rejectedRow+` button[data-api$="/replay"]`)),
		chromedp.WaitVisible(css(`#toast:not([hidden])`)),
		chromedp.WaitNotPresent(css(rejectedRow)),
		chromedp.WaitVisible(css(`#count-delivered[data-count="8"]`)),
	)
	do("timeline of the replayed incident",
		chromedp.Navigate(g.base+"/incidents/datix/INC-1008"),
		chromedp.WaitVisible(css(`#incident-state[data-state="delivered"]`)),
		shot("status-incident.png", 1280, 900),
		chromedp.EmulateViewport(1280, 900),
	)
	timeline, err := chromedp.Run(ctx, chromedp.Text(css("#timeline")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(timeline, "alice (operator)") || !strings.Contains(timeline, "rejected") {
		t.Errorf("timeline: got %q, want the rejection and a step by alice (operator)", timeline)
	}

	// 5. Search finds it by local id and state.
	do("search",
		chromedp.Navigate(g.base+"/incidents?local_id=1008&state=delivered"),
		chromedp.WaitVisible(css(`tr[data-local-id="INC-1008"]`)),
	)
	if count, err := chromedp.Run(ctx, chromedp.Text(css("#result-count"))); err != nil || !strings.Contains(count, "of 1,") {
		t.Errorf("search result count: got %q (%v), want 1 match", count, err)
	}

	// 6. A viewer sees everything but may not act: the buttons are disabled, and the API
	// refuses the action even when it is sent by hand.
	do("sign in as viewer",
		chromedp.Click(css(`form[action="/logout"] button`)),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), viewerToken),
		chromedp.Click(css("#sign-in")),
		chromedp.WaitVisible(css(`#me[data-role="viewer"]`)),
		chromedp.Navigate(g.base+"/incidents/datix/INC-0999"),
		chromedp.WaitVisible(css("#viewer-note")),
	)
	disabled, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("btn-replay").disabled`))
	if err != nil || !disabled {
		t.Errorf("viewer: replay button disabled = %v (%v), want true", disabled, err)
	}
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/api/v1/incidents/datix/INC-0999/replay", {method: "POST",
		headers: {"X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content}}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusForbidden {
		t.Errorf("viewer replay through the API: got %d (%v), want 403", status, err)
	}
	if got := g.state("INC-0999"); got != "rejected" {
		t.Errorf("INC-0999 after the viewer's refused replay: got %s, want rejected", got)
	}
}

// waitAPI polls the API until the incident reaches want; the gateway is asynchronous, so
// there is nothing to await but the state itself.
func waitAPI(t *testing.T, g *gatewayUnderTest, localID, want string) {
	t.Helper()
	wait.For(t, 30*time.Second, localID+" "+want, func() (bool, string) {
		got := g.state(localID)
		return got == want, "state " + got
	})
}
