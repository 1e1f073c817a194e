package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/psgw/psgw/insights/insightstest"
	"github.com/psgw/psgw/test/wait"
)

var spcWeek0 = time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)

// TestInsightsPage posts the planted weekly series (insightstest) through the gateway and opens /insights in
// Chromium, at desktop and phone widths: the SPC chart must flag the outlier and the shift
// and nothing else. With -screenshots it writes docs/insights-desktop.png and
// docs/insights-phone.png.
func TestInsightsPage(t *testing.T) {
	exe := chromium()
	if exe == "" {
		t.Skip("no chromium on PATH (set PSGW_CHROMIUM)")
	}
	g := startGateway(t)
	n := 0
	for w, count := range insightstest.PlantedWeeks {
		for i := range count {
			day := spcWeek0.AddDate(0, 0, 7*w+i%7).Format("2006-01-02")
			harm := []string{"none", "low", "low", "moderate"}[i%4]
			in := map[string]any{"source": []string{"datix", "ulysses"}[i%2], "local_id": fmt.Sprintf("SPC-%02d-%02d", w, i), "event_type": []string{"incident", "incident", "incident", "good_care"}[i%4],
				"occurred_at": day, "reported_at": day, "description": "planted for the insights page",
				"patients": []map[string]any{{"sex": "female", "age_years": 20 + i, "physical_harm": harm, "psychological_harm": "none"}},
				"location": map[string]any{"organisation": []string{"RRK", "RR8"}[i%2], "service_area": []string{"1", "3"}[i%3%2]},
				"reporter": map[string]any{"role": "Nurse or midwife", "organisation": "RRK"}}
			if in["event_type"] == "good_care" {
				// Good care has no harmed patient and nothing that went wrong.
				delete(in, "patients")
			} else if i%3 == 0 {
				in["agents"] = map[string]any{"medications": []map[string]any{{"name": "planted"}}}
			}
			b, _ := json.Marshal(in)
			resp, err := http.Post(g.base+"/api/v1/incidents", "application/json", bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("posting week %d incident %d: %d", w, i, resp.StatusCode)
			}
			n++
		}
	}
	wait.For(t, 90*time.Second, fmt.Sprintf("%d facts in the learning store", n), func() (bool, string) {
		got := g.gw.Insights.Len()
		return got >= n, fmt.Sprintf("%d facts", got)
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()
	shotDir := t.TempDir()
	if *screenshots {
		shotDir = filepath.Join("..", "..", "docs")
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	shot := func(name string, width, height int64) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
			t.Fatal(err)
		}
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shotDir, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	page := g.base + "/insights?from=2025-01-06&to=2025-08-03&interval=week&measure=all&improve=neutral"
	if err := chromedp.Do(ctx,
		chromedp.Navigate(g.base+"/"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), viewerToken),
		chromedp.Click(css("#sign-in")),
		chromedp.WaitVisible(css(`#me[data-role="viewer"]`)),
		chromedp.Navigate(page),
		chromedp.WaitVisible(css("#spc svg.chart")),
		chromedp.WaitVisible(css(`#variation-icon[data-icon="common_cause"]`)),
	); err != nil {
		t.Fatalf("opening the insights page: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(css("#spc")))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, w := range insightstest.Flagged() {
		want = append(want, spcWeek0.AddDate(0, 0, 7*w).Format("2006-01-02"))
	}
	if !strings.Contains(text, "Special cause at "+strings.Join(want, ", ")+".") {
		t.Errorf("SPC text %q, want special cause at exactly %v", text, want)
	}
	shot("insights-desktop.png", 1280, 900)
	shot("insights-phone.png", 390, 844)
	// The phone width must not scroll sideways: the page fits the screen.
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int]("document.documentElement.scrollWidth"))
	if err != nil {
		t.Fatal(err)
	}
	if width > 400 {
		t.Errorf("at 390 px the page is %d px wide, want no sideways scroll", width)
	}
}
