// Package millionkeys measures issue 15's most expensive cheap request at the HTTP ingest:
// a 16 MiB incident with a million keys, POSTed through the push adapter into a real
// embedded JetStream that fsyncs every write (docs/performance.md, "A million-key body at
// ingest"). It lives outside ingest/httppush because adapters, their tests included, may
// import only ingest and fhir (test/imports).
package millionkeys

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/ingest/httppush"
	"github.com/psgw/psgw/queue"
	"github.com/psgw/psgw/test/jstest"
)

// hashMaxBody is the largest http.max_body_bytes the configuration allows (16 MiB).
const hashMaxBody = 16 << 20

// cpuTime is the CPU time the process has used, user and system, on every thread (the
// garbage collector's included): on a machine shared with other work it says more about the
// cost of an operation than the time it took.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ms/op, the process's CPU time per operation since from.
func reportCPU(b *testing.B, from time.Duration) {
	b.ReportMetric(float64((cpuTime(b)-from).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// rawPublisher stores records in the raw stream of a real JetStream, as the gateway's
// publisher does (internal/gateway), without its ledger and metrics.
type rawPublisher struct{ q *queue.Queue }

func (p rawPublisher) Publish(ctx context.Context, rec ingest.Record) (ingest.PublishResult, error) {
	env := queue.RawEnvelope{Kind: rec.Kind, Source: rec.Source, LocalID: rec.LocalID, Key: rec.Key,
		RecordID: rec.ID, Revision: rec.Revision, ReceivedAt: rec.ReceivedAt}
	res, err := p.q.PublishRaw(ctx, env, rec.Data, 0)
	if err != nil {
		return ingest.PublishResult{}, err
	}
	return ingest.PublishResult{Seq: res.Seq, Duplicate: res.Duplicate}, nil
}

// serveJetStream runs the adapter at the largest body limit over an embedded JetStream that
// takes a 16 MiB message, fsyncing each write before its PubAck as the gateway does by
// default (queue.sync: always).
func serveJetStream(tb testing.TB) (*queue.Queue, string) {
	tb.Helper()
	o := jstest.Options(tb.TempDir())
	o.MaxPayload = 20 << 20
	o.SyncAlways = true
	q := jstest.OpenWith(tb, o)
	a := httppush.New(httppush.Config{MaxBodyBytes: hashMaxBody, PublishTimeout: time.Minute},
		ingest.Deps{Name: "httppush", Publisher: rawPublisher{q}, Logger: zerolog.Nop()})
	mux := http.NewServeMux()
	a.Routes(mux)
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return q, srv.URL + "/api/v1/incidents"
}

// postBody POSTs body and returns the status and answer.
func postBody(tb testing.TB, url string, body []byte) (int, string) {
	tb.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var answer bytes.Buffer
	if _, err := answer.ReadFrom(resp.Body); err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, answer.String()
}

// BenchmarkIngestMillionKeysJetStream is one POST of a 16 MiB body with a million keys
// through the adapter's handler into an embedded JetStream, from the request to the 202, in
// ms per request. Each request is another incident (its local_id changes, same size), so
// that every one is stored, none answered as a duplicate.
func BenchmarkIngestMillionKeysJetStream(b *testing.B) {
	_, url := serveJetStream(b)
	body := adaptertest.ManyKeysBody(b, 1_000_000, hashMaxBody)
	at := bytes.Index(body, []byte("KEYS-1"))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	i := 0
	cpu := cpuTime(b)
	for b.Loop() {
		body[at+5] = "0123456789"[i%10]
		i++
		if code, answer := postBody(b, url, body); code != http.StatusAccepted || strings.Contains(answer, `"duplicate":true`) {
			b.Fatalf("got %d %.300s, want a 202 storing it", code, answer)
		}
	}
	reportCPU(b, cpu)
}

// TestIngestMillionKeysJetStream: a 16 MiB body with a million keys, POSTed through the
// adapter's handler into an embedded JetStream, is answered 202 and stored; the same
// incident sent again with its fields in another order is answered as a duplicate, so the
// content hash named both the same at that size. The bound (30 s) only catches a return to
// super-linear work; BenchmarkIngestMillionKeysJetStream gives the time (issue 15 asks for
// 2 s). Under the race detector a tenth of the body keeps it short.
func TestIngestMillionKeysJetStream(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB body")
	}
	n, size := 1_000_000, hashMaxBody
	if raceDetector {
		n, size = 100_000, hashMaxBody/10
	}
	_, url := serveJetStream(t)
	body := adaptertest.ManyKeysBody(t, n, size)
	start := time.Now()
	code, answer := postBody(t, url, body)
	elapsed := time.Since(start)
	t.Logf("%d keys in %d bytes answered %d in %v", n, len(body), code, elapsed.Round(time.Millisecond))
	if code != http.StatusAccepted || !strings.Contains(answer, `"duplicate":false`) {
		t.Fatalf("got %d %.300s, want 202 storing it", code, answer)
	}
	if elapsed > 30*time.Second {
		t.Errorf("answered in %v, want well under 30 s", elapsed)
	}
	head := `{"source":"datix","local_id":"KEYS-1",`
	again := bytes.Replace(body, []byte(head), []byte(`{"local_id":"KEYS-1","source":"datix",`), 1)
	if bytes.Equal(again, body) {
		t.Fatal("the body did not start as expected")
	}
	if code, answer := postBody(t, url, again); code != http.StatusAccepted || !strings.Contains(answer, `"duplicate":true`) {
		t.Fatalf("the same incident with its fields reordered: got %d %.300s, want 202 as a duplicate", code, answer)
	}
}
