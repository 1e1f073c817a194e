package httppush

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest/adaptertest"
)

// hashMaxBody is the largest http.max_body_bytes the configuration allows (16 MiB).
const hashMaxBody = 16 << 20

// typicalBody is the medication incident of docs/examples, about 1.3 KB.
func typicalBody(tb testing.TB) []byte {
	b, err := os.ReadFile("../../docs/examples/incident-medication.json")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

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

// BenchmarkContentHash compares the content hash before canon.go (encoding/json: decode into
// an any, encode again) with canonicalSum, on a typical incident and on a 16 MiB body with a
// million keys. Run one core: -cpu 1.
func BenchmarkContentHash(b *testing.B) {
	bodies := []struct {
		name string
		body []byte
	}{{"typical", typicalBody(b)}, {"million-keys", adaptertest.ManyKeysBody(b, 1_000_000, hashMaxBody)}}
	for _, c := range bodies {
		for _, f := range []struct {
			name string
			hash func([]byte) string
		}{{"encoding-json", contentHashReference}, {"canon", contentHash}} {
			b.Run(c.name+"/"+f.name, func(b *testing.B) {
				b.SetBytes(int64(len(c.body)))
				b.ReportAllocs()
				cpu := cpuTime(b)
				for b.Loop() {
					f.hash(c.body)
				}
				reportCPU(b, cpu)
			})
		}
	}
}

// BenchmarkParseIncidentBeside is fhir.ParseIncident on the same two bodies, the other half
// of what a request costs before its publish, for the ratio in docs/performance.md.
func BenchmarkParseIncidentBeside(b *testing.B) {
	for _, c := range []struct {
		name string
		body []byte
	}{{"typical", typicalBody(b)}, {"million-keys", adaptertest.ManyKeysBody(b, 1_000_000, hashMaxBody)}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			cpu := cpuTime(b)
			for b.Loop() {
				if _, probs := fhir.ParseIncident(c.body, fhir.ParseOptions{Now: time.Now()}); len(probs) != 0 {
					b.Fatal(probs)
				}
			}
			reportCPU(b, cpu)
		})
	}
}
