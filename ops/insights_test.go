package ops_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/insights"
	"github.com/psgw/psgw/test/wait"
)

// TestInsightsAccessAndRebuild checks who may read the insights, who may turn suppression
// off and rebuild the store, and that a rebuild from the raw stream gives the same answer.
func TestInsightsAccessAndRebuild(t *testing.T) {
	base := startGateway(t, nil)
	for i := range 9 {
		postIncident(t, base, fmt.Sprintf("IN-%d", i), "Fall on ward.")
	}
	for i := range 9 {
		waitState(t, base, fmt.Sprintf("IN-%d", i), "delivered")
	}
	const q = "/api/v1/insights?from=2025-03-01&to=2025-03-31&by=organisation"
	read := func(token, query string) insights.Answer {
		t.Helper()
		var a insights.Answer
		wait.For(t, 20*time.Second, "the nine incidents in the insights of "+query, func() (bool, string) {
			code, b := call(t, "GET", base+query, token, nil)
			if code != 200 {
				t.Fatalf("GET %s: %d %s", query, code, b)
			}
			a = insights.Answer{}
			if err := json.Unmarshal(b, &a); err != nil {
				t.Fatal(err)
			}
			return a.Total.Value != nil && *a.Total.Value == 9, string(b)
		})
		return a
	}
	a := read(viewerToken, q)
	if len(a.Groups) != 1 || a.Groups[0].Key != "RRK" || *a.Groups[0].Value != 9 || !strings.Contains(a.Groups[0].Label, "BIRMINGHAM") {
		t.Fatalf("by organisation: %+v, want RRK with 9 and its ODS name", a.Groups)
	}
	for _, tc := range []struct {
		name, method, path, token string
		want                      int
	}{
		{"anonymous may not read", "GET", q, "", 401},
		{"viewer may not turn suppression off", "GET", q + "&suppress=off", viewerToken, 403},
		{"operator may", "GET", q + "&suppress=off", operatorToken, 200},
		{"bad suppress value", "GET", q + "&suppress=maybe", operatorToken, 400},
		{"viewer reads the page", "GET", "/insights", viewerToken, 200},
		{"the page names a bad parameter", "GET", "/insights?interval=fortnight", viewerToken, 400},
		{"viewer may not rebuild", "POST", "/api/v1/insights/rebuild", viewerToken, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := call(t, tc.method, base+tc.path, tc.token, nil); code != tc.want {
				t.Errorf("%s %s: got %d %s, want %d", tc.method, tc.path, code, body, tc.want)
			}
		})
	}

	code, b := call(t, "POST", base+"/api/v1/insights/rebuild", operatorToken, struct{}{})
	var res insights.Rebuilt
	_ = json.Unmarshal(b, &res)
	if code != 200 || res.Written != 9 || res.Deleted != 0 {
		t.Fatalf("rebuild: %d %s, want 200 with 9 written", code, b)
	}
	if again := read(viewerToken, q); *again.Total.Value != 9 || *again.Groups[0].Value != 9 {
		t.Errorf("after the rebuild: %+v, want the same 9", again.Groups)
	}
}
