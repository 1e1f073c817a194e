package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/psgw/psgw/config"
)

// metricsText fetches GET /metrics.
func (h *harness) metricsText() string {
	h.t.Helper()
	resp, err := http.Get(h.Base + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

// TestMetricLabelsAreBounded is issue 16's item 5: with no sources list, each new "source"
// once made new metric series, and 2,000 sources grew /metrics from 16 to 248 KB. Now the
// first 32 names have a series each and the rest are counted under "other": 2,000 sources
// grow /metrics by a few kilobytes, and every incident is still counted.
func TestMetricLabelsAreBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 incidents")
	}
	h := newHarness(t, func(c *config.Config) { c.National.BaseURL = "" }) // held: nothing to deliver
	before := len(h.metricsText())
	const sources = 2000
	var wg sync.WaitGroup
	work := make(chan int)
	failed := make(chan string, sources)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				in := incident(fmt.Sprintf("INC-%d", i), 1, fmt.Sprintf("incident %d", i))
				in["source"] = fmt.Sprintf("src-%04d", i)
				if r := h.post(in); r.Status != 202 {
					failed <- fmt.Sprintf("%d: %d %s", i, r.Status, r.Error)
				}
			}
		})
	}
	for i := range sources {
		work <- i
	}
	close(work)
	wg.Wait()
	close(failed)
	for f := range failed {
		t.Fatalf("POST %s", f)
	}
	text := h.metricsText()
	grown := len(text) - before
	t.Logf("/metrics: %d bytes before, %d after %d sources (%+d)", before, len(text), sources, grown)
	if grown > 32<<10 {
		t.Errorf("/metrics grew by %d bytes for %d sources, want under 32 KB", grown, sources)
	}
	series := regexp.MustCompile(`(?m)^psgw_ingest_received_total\{kind="incident",source="([^"]+)"\} (\d+)$`).FindAllStringSubmatch(text, -1)
	counted, other := 0, ""
	for _, s := range series {
		var n int
		fmt.Sscan(s[2], &n)
		counted += n
		if s[1] == "other" {
			other = s[2]
		}
	}
	if len(series) != 33 || other != "1968" || counted != sources {
		t.Errorf("psgw_ingest_received_total: %d series, %s under other, %d counted; want 33, 1968, %d:\n%s",
			len(series), other, counted, sources, strings.Join(strings.Split(text, "\n")[:10], "\n"))
	}
}
