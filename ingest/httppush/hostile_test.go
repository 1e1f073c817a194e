package httppush_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/ingest/httppush"
)

// maxBody is the largest http.max_body_bytes the configuration allows (16 MiB).
const maxBody = 16 << 20

// serveMaxBody runs the adapter at the largest body limit, storing into an in-memory store.
func serveMaxBody(tb testing.TB) (*adaptertest.Store, string) {
	tb.Helper()
	store := adaptertest.NewStore()
	a := httppush.New(httppush.Config{MaxBodyBytes: maxBody}, ingest.Deps{Name: "httppush", Publisher: store, Logger: zerolog.Nop()})
	mux := http.NewServeMux()
	a.Routes(mux)
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return store, srv.URL + "/api/v1/incidents"
}

// TestIngestMillionKeys is issue 15's second must-show at the HTTP ingest: a body at the
// 16 MiB limit with a million keys is answered 202, stored once, with a bounded list of
// warnings. BenchmarkIngestMillionKeys gives the time (must: under 2 s on the reference
// machine); this test only guards against a return to super-linear checks, with a bound a
// loaded machine and the race detector stay well inside but a quadratic check never could.
func TestIngestMillionKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB body")
	}
	n, size := 1_000_000, maxBody
	if raceDetector {
		// The race detector slows parsing some 25 times: a tenth of the keys keeps the
		// bound meaningful (a quadratic check took 11.7 s for 80,000 keys without it).
		n, size = 100_000, maxBody/10
	}
	store, url := serveMaxBody(t)
	body := adaptertest.ManyKeysBody(t, n, size)
	if len(body) != size {
		t.Fatalf("built a body of %d bytes, want %d", len(body), size)
	}
	start := time.Now()
	resp, answer, err := post(context.Background(), url, "application/json", string(body), nil)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d keys in %d bytes answered %d in %v", n, len(body), resp.StatusCode, elapsed.Round(time.Millisecond))
	if elapsed > 30*time.Second {
		t.Errorf("answered in %v, want well under 30 s", elapsed)
	}
	var got struct {
		Status   string
		Warnings []map[string]string
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal([]byte(answer), &got) != nil {
		t.Fatalf("got %d %.300s, want 202", resp.StatusCode, answer)
	}
	if len(got.Warnings) == 0 || len(got.Warnings) > 200 || len(answer) > 64<<10 {
		t.Errorf("got %d warnings in a %d-byte answer, want a bounded list", len(got.Warnings), len(answer))
	}
	if recs := store.Records(); len(recs) != 1 {
		t.Errorf("stored %d records, want 1", len(recs))
	}
}

// BenchmarkIngestMillionKeys reports one POST of a 16 MiB body with a million keys through
// the HTTP push adapter, from the request to the 202, in ms per request.
func BenchmarkIngestMillionKeys(b *testing.B) {
	_, url := serveMaxBody(b)
	body := string(adaptertest.ManyKeysBody(b, 1_000_000, maxBody))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		resp, _, err := post(context.Background(), url, "application/json", body, nil)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			b.Fatalf("got %v, %v", resp, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/request")
}
