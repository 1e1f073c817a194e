// Command load measures psgw on this machine and prints rates and latencies beside the ceiling
// they are judged against: the raw JetStream publish rate of the same payload size, with the
// same storage, sync policy and concurrency, measured in the same run.
//
//	go run ./test/load                         # every scenario, default sizes
//	go run ./test/load -scenarios http,mllp -n 20000 -c 16 -mllp-c 8
//	go run ./test/load -scenarios backlog -backlog 1000000
//
// Every scenario is bounded in count (-n) and time (-timeout), and drives a real psgw process
// started from a fresh build on loopback addresses only.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/psgw/psgw/ingest/hl7mllp"
)

type options struct {
	scenarios       string
	n               int
	c               int
	mllpConns       int
	mllpRate        int
	backlog         int
	sync            string
	timeout         time.Duration
	psgw            string
	keep            bool
	profile         string
	profileScenario string
	repeat          int
	csvRows         int
	sqlRows         int
	pgDSN           string
	psgwEnv         []string
}

// envList is a repeatable flag of NAME=value pairs.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }

func (e *envList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("want NAME=value, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

// csvLanes is the CSV adapter's default publish concurrency (csvdrop.publish_concurrency):
// the csv scenario's ceiling is measured with as many publishers.
const csvLanes = 4

func main() {
	var o options
	flag.StringVar(&o.scenarios, "scenarios", "raw,http,mllp,e2e,backlog", "comma-separated: raw, http, mllp, mllp-paced, e2e, backlog, csv, sql")
	flag.IntVar(&o.n, "n", 20000, "records per scenario")
	flag.IntVar(&o.c, "c", 16, "concurrent senders (HTTP clients, raw publishers)")
	flag.IntVar(&o.mllpConns, "mllp-c", hl7mllp.Defaults().MaxConnectionsPerPeer,
		"MLLP connections, all from 127.0.0.1: psgw is started allowing this many per peer (mllp.max_connections_per_peer, 8 by default), so that none is cut")
	flag.IntVar(&o.mllpRate, "mllp-rate", 1000, "target ADT messages per second for mllp-paced")
	flag.IntVar(&o.csvRows, "csv-rows", 1000000, "rows in the exported file, for csv")
	flag.IntVar(&o.sqlRows, "sql-rows", 100000, "rows in the polled table, for sql")
	flag.StringVar(&o.pgDSN, "pg-dsn", "", "a PostgreSQL the sql scenario may create the table psgw_load_incidents in")
	flag.IntVar(&o.backlog, "backlog", 100000, "incidents queued before the national service comes back, for backlog")
	flag.StringVar(&o.sync, "sync", "always", "queue.sync for the gateway and the ceiling: always or an interval such as 1s")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "upper bound for each scenario")
	flag.StringVar(&o.psgw, "psgw", "", "psgw binary (default: build ./cmd/psgw)")
	flag.BoolVar(&o.keep, "keep", false, "keep data directories")
	flag.IntVar(&o.repeat, "repeat", 1, "run each scenario this many times, each on a fresh gateway, and report the median run with the spread of rates")
	flag.StringVar(&o.profile, "profile", "", "instead of the scenarios, run -profile-scenario in-process and write CPU and block profiles to this `dir`")
	flag.StringVar(&o.profileScenario, "profile-scenario", "e2e", "scenario for -profile: e2e, backlog (-n incidents), http, mllp or csv (-csv-rows)")
	var env envList
	flag.Var(&env, "psgw-env", "`NAME=value` added to psgw's environment (repeatable), e.g. GOMEMLIMIT=150MiB or GODEBUG=gctrace=1")
	flag.Parse()
	o.psgwEnv = env
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
		return profileRun(context.Background(), o, o.profile)
	}
	work, err := os.MkdirTemp("", "psgw-load-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(work)
	}
	if o.psgw == "" {
		o.psgw = filepath.Join(work, "psgw")
		fmt.Fprintln(os.Stderr, "building psgw…")
		cmd := exec.Command("go", "build", "-o", o.psgw, "./cmd/psgw")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building psgw: %w", err)
		}
	}
	host, _ := os.Hostname()
	fmt.Printf("machine: %s, %d CPUs, %s; queue.sync=%s; concurrency %d (MLLP connections %d); median of %d run(s)\n\n", host, numCPU(), cpuModel(), o.sync, o.c, o.mllpConns, max(o.repeat, 1))

	var results []result
	ceilings := map[string]result{}
	want := map[string]bool{}
	for _, s := range strings.Split(o.scenarios, ",") {
		want[strings.TrimSpace(s)] = true
	}
	ctx := context.Background()
	// The ceilings come first: they need the machine to themselves.
	ceiling := func(key, name string, payload []byte, concurrency int) error {
		r, err := repeat(o, func(i int) (result, error) {
			return rawPublish(ctx, o, work, i, name, payload, concurrency)
		})
		if err != nil {
			return err
		}
		ceilings[key] = r
		results = append(results, r)
		return nil
	}
	if want["raw"] || want["http"] || want["e2e"] || want["backlog"] {
		if err := ceiling("incident", "raw-publish (incident)", incidentJSON("CEIL-0", 1), o.c); err != nil {
			return err
		}
	}
	if want["mllp"] || want["mllp-paced"] {
		if err := ceiling("adt", "raw-publish (ADT)", adtMessage(0), o.c); err != nil {
			return err
		}
	}
	if want["csv"] {
		if err := ceiling("csv", fmt.Sprintf("raw-publish (incident, c=%d)", csvLanes), incidentJSON("CEIL-0", 1), csvLanes); err != nil {
			return err
		}
	}
	steps := []struct {
		name    string
		ceiling string
		fn      func(context.Context, options, string) (result, error)
	}{
		{"http", "incident", httpPush},
		{"mllp", "adt", mllpADT},
		{"mllp-paced", "", mllpPaced}, // judged by its latency at the offered rate
		{"e2e", "incident", endToEnd},
		{"backlog", "incident", backlogDrain},
		{"csv", "csv", csvBackfill},
		{"sql", "", sqlBackfill},
	}
	for _, st := range steps {
		if !want[st.name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "running %s…\n", st.name)
		r, err := repeat(o, func(i int) (result, error) {
			return st.fn(ctx, o, filepath.Join(work, st.name+"-"+strconv.Itoa(i)))
		})
		if err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
		if c, ok := ceilings[st.ceiling]; ok && c.rate > 0 {
			r.ratio = r.rate / c.rate
		}
		results = append(results, r)
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tcount\trate/s\tp50\tp99\tmax\tvs ceiling\tnote\t")
	for _, r := range results {
		ratio := "—"
		if r.ratio > 0 {
			ratio = fmt.Sprintf("%.0f%%", r.ratio*100)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n", r.name, r.count, r.rate, ms(r.p50), ms(r.p99), ms(r.max), ratio, r.note)
	}
	return tw.Flush()
}

// repeat runs one scenario o.repeat times and returns the run with the median rate, its note
// extended with the lowest and highest rate seen.
func repeat(o options, run func(i int) (result, error)) (result, error) {
	var rs []result
	for i := range max(o.repeat, 1) {
		r, err := run(i)
		if err != nil {
			return result{}, err
		}
		rs = append(rs, r)
	}
	if len(rs) == 1 {
		return rs[0], nil
	}
	slices.SortFunc(rs, func(a, b result) int { return cmp.Compare(a.rate, b.rate) })
	m := rs[len(rs)/2]
	m.note = strings.TrimSpace(fmt.Sprintf("%s; runs %.0f–%.0f/s", m.note, rs[0].rate, rs[len(rs)-1].rate))
	return m, nil
}

func ms(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
