package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
)

// result is one scenario's figures.
type result struct {
	name          string
	count         int
	rate          float64
	p50, p99, max time.Duration
	ratio         float64
	note          string
}

// latencies collects per-operation latencies from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) fill(r *result, elapsed time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.count = len(l.d)
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	r.p50 = l.d[len(l.d)/2]
	r.p99 = l.d[min(len(l.d)-1, len(l.d)*99/100)]
	r.max = l.d[len(l.d)-1]
	r.rate = float64(len(l.d)) / elapsed.Seconds()
}

// incidentJSON is a realistic incident of the size trusts send.
func incidentJSON(id string, rev int) []byte {
	b, _ := json.Marshal(map[string]any{
		"source": "datix", "local_id": id, "revision": rev, "event_type": "incident",
		"occurred_at":       "2025-03-14T09:30:00Z",
		"description":       "Scheduled IV antibiotic dose given about four hours late because the ward was short of staff and the dose was missed at the handover; the patient was monitored and came to no harm. " + id,
		"immediate_actions": "Dose given; prescriber informed; family told.",
		"patients":          []map[string]any{{"nhs_number": "9434765919", "date_of_birth": "1975-03-01", "sex": "female", "physical_harm": "none", "psychological_harm": "none"}},
		"location":          map[string]any{"organisation": "RRK"},
		"reporter":          map[string]any{"role": "Nurse or midwife", "organisation": "RRK"},
	})
	return b
}

// adtMessage is an A08 update for one of many invented patients (the NHS number is a
// published test number; local ids vary so that keys spread).
func adtMessage(i int) []byte {
	return mllptest.ADT("A08", fmt.Sprintf("LOAD%08d", i), time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC), mllptest.Patient{
		Local: fmt.Sprintf("L%07d", i), DOB: "19750301", Sex: "F", Ethnicity: "A", Location: "WARD7",
	})
}

func numCPU() int { return runtime.NumCPU() }

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// clockTick is the unit of /proc/PID/stat's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuTime reads the CPU time (user and system) a process has used, from /proc.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count fields after it.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * clockTick
}

// coreMeter measures this process's CPU use over an interval, in cores.
type coreMeter struct {
	mu  sync.Mutex
	cpu time.Duration
}

var selfCores coreMeter

func (c *coreMeter) mark() {
	c.mu.Lock()
	c.cpu = cpuTime(os.Getpid())
	c.mu.Unlock()
}

func (c *coreMeter) since(at time.Time) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := time.Since(at).Seconds()
	if el <= 0 {
		return 0
	}
	return (cpuTime(os.Getpid()) - c.cpu).Seconds() / el
}

// rssMB reads a process's resident set size in MiB from /proc.
func rssMB(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}
