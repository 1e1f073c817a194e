package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/ops"
)

func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("psgw "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

// cmdStatus prints the gateway's overview. Exit 0 when ready, 1 when not (or unreachable).
func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", "Usage: psgw status [--url URL] [-o text|json]\n\nShows a running gateway's state: endpoint health, outbox, counts per state, sources.\nTimes are UTC. -o json prints GET /api/v1/status's object (docs/api.md).\nExit status: 0 ready, 1 not ready or unreachable, 2 usage error.\n", stderr)
	cf := addClientFlags(fs)
	asJSON := addOutputFlags(fs)
	if pos, err := parseInterleaved(fs, args); err != nil {
		return exitFor(usageErr(err), stderr, "status")
	} else if len(pos) > 0 {
		// A word the command does not take (say, a source name without --source) would
		// otherwise be dropped and the answer be about everything.
		return exitFor(fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0]), stderr, "status")
	}
	if err := asJSON.check(); err != nil {
		return exitFor(err, stderr, "status")
	}
	c, err := cf.client()
	if err != nil {
		return exitFor(fmt.Errorf("%w: %v", errUsage, err), stderr, "status")
	}
	var o ops.Overview
	if err := c.do(context.Background(), "GET", "/api/v1/status", nil, &o); err != nil {
		return exitFor(err, stderr, "status")
	}
	if asJSON.json() {
		printJSON(stdout, o)
	} else {
		printOverview(stdout, c.base, o)
	}
	if !o.Ready.Ready {
		return 1
	}
	return 0
}

func printOverview(w io.Writer, base string, o ops.Overview) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "psgw " + o.Version
	if o.Demo {
		head += "  DEMO MODE (simulator, not LFPSE)"
	}
	fmt.Fprintf(tw, "%s\t%s\n", head, base)
	ready := "yes"
	if !o.Ready.Ready {
		ready = "NO: " + strings.Join(o.Ready.Reasons, "; ")
	}
	fmt.Fprintf(tw, "Ready\t%s\n", ready)
	ep := o.Endpoint.Summary
	if !o.Endpoint.LastSuccess.IsZero() {
		ep += " (last delivery " + since(o.Endpoint.LastSuccess) + " ago)"
	}
	fmt.Fprintf(tw, "National endpoint\t%s\n", ep)
	if o.Endpoint.Detail != "" {
		fmt.Fprintf(tw, "\t%s\n", o.Endpoint.Detail)
	}
	outbox := fmt.Sprintf("%d waiting", o.OutboxDepth)
	if o.OutboxDepth > 0 {
		outbox += fmt.Sprintf(" (oldest %s)", (time.Duration(o.OldestUndeliveredAge) * time.Second).String())
	}
	fmt.Fprintf(tw, "Outbox\t%s\n", outbox)
	fmt.Fprintf(tw, "Delivery rate\t%.1f/min over 5 min, %d in the last hour\n", o.Rate.PerMinute, o.Rate.LastHour)
	fmt.Fprintf(tw, "Taxonomy\tv%d\n", o.TaxonomyVersion)
	fmt.Fprintf(tw, "Uptime\t%s\n", o.Uptime)
	_ = tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "STATE\tINCIDENTS\tNOT REVIEWED\t\n")
	for _, st := range ledger.States() {
		nr := "-"
		if n, ok := o.NeedsReview[st]; ok {
			nr = strconv.Itoa(n)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t\n", st, o.States[st], nr)
	}
	fmt.Fprintf(tw, "total\t%d\t\t\n", o.Total)
	_ = tw.Flush()

	if len(o.Adapters) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "ADAPTER\tSTATE\tRECORDS\tERRORS\tLAST RECORD\tLAST ERROR\n")
		for _, a := range o.Adapters {
			last := "never"
			if !a.LastRecordAt.IsZero() {
				last = since(a.LastRecordAt) + " ago"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", a.Name, a.State, a.Records, a.Errors, last, clip(a.LastError, 60))
		}
		_ = tw.Flush()
	}
	if len(o.Sources) > 0 {
		// Incidents at their newest mapping: those with fallbacks went out with a guess
		// ("Other", an unlisted organisation) and want a code map (docs/mapping.md).
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "SOURCE\tINCIDENTS\tWITH WARNINGS\tWITH FALLBACKS\n")
		for _, s := range o.Sources {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", s.Source, s.Incidents, s.Warned, s.Fallbacks)
		}
		_ = tw.Flush()
	}
	if len(o.Stages) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "STAGE\tSTATE\tRESTARTS\tLAST ERROR\n")
		for _, st := range o.Stages {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", st.Name, st.State, st.Restarts, clip(st.LastError, 60))
		}
		_ = tw.Flush()
	}
	for _, p := range o.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
}

// eventFilters are the search flags shared by events and bulk replay.
type eventFilters struct {
	state, source, localID, from, to *string
}

func addEventFilters(fs *flag.FlagSet) eventFilters {
	return eventFilters{
		state:   fs.String("state", "", "only these `states`, comma-separated; \"attention\" means unknown,failed,rejected,quarantined"),
		source:  fs.String("source", "", "only this source `name`"),
		localID: fs.String("local-id", "", "local ids containing this `text`"),
		from:    fs.String("from", "", "last changed at or after this `time` (RFC 3339 or YYYY-MM-DD)"),
		to:      fs.String("to", "", "last changed before this `time` (a bare date means the end of that day)"),
	}
}

func (f eventFilters) values() url.Values {
	v := url.Values{}
	for k, p := range map[string]*string{"state": f.state, "source": f.source, "local_id": f.localID, "from": f.from, "to": f.to} {
		if *p != "" {
			v.Set(k, *p)
		}
	}
	return v
}

// cmdEvents lists incidents in a table, newest change first.
func cmdEvents(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("events", "Usage: psgw events [--state STATE[,STATE]] [--source NAME] [--local-id TEXT] [--from T] [--to T] [--limit N] [--all] [-o text|json]\n\nLists incidents from a running gateway's delivery ledger, most recently changed first.\nTimes are UTC. -o json prints one JSON object per incident, one per line (docs/api.md).\n", stderr)
	cf := addClientFlags(fs)
	ef := addEventFilters(fs)
	limit := fs.Int("limit", 50, "how many to show")
	offset := fs.Int("offset", 0, "skip this many")
	all := fs.Bool("all", false, "show every match, page by page")
	asJSON := addOutputFlags(fs)
	if pos, err := parseInterleaved(fs, args); err != nil {
		return exitFor(usageErr(err), stderr, "events")
	} else if len(pos) > 0 {
		// A word the command does not take (say, a source name without --source) would
		// otherwise be dropped and the answer be about everything.
		return exitFor(fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0]), stderr, "events")
	}
	if err := asJSON.check(); err != nil {
		return exitFor(err, stderr, "events")
	}
	c, err := cf.client()
	if err != nil {
		return exitFor(fmt.Errorf("%w: %v", errUsage, err), stderr, "events")
	}
	var items []ledger.Summary
	total := 0
	err = eachPage(context.Background(), c, ef.values(), *offset, *limit, *all, func(p ledger.Page) {
		items = append(items, p.Items...)
		total = p.Total
	})
	if err != nil {
		return exitFor(err, stderr, "events")
	}
	if asJSON.json() {
		enc := json.NewEncoder(stdout)
		for _, it := range items {
			_ = enc.Encode(it)
		}
		return 0
	}
	if len(items) == 0 {
		fmt.Fprintln(stdout, "No incidents match.")
		return 0
	}
	printEvents(stdout, items)
	fmt.Fprintf(stdout, "\n%d–%d of %d\n", *offset+1, *offset+len(items), total)
	return 0
}

// printEvents writes the events table. Times are UTC and say so, as on the status page,
// so that an operator comparing the two, or a screen shared across sites, reads one clock.
func printEvents(w io.Writer, items []ledger.Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "SOURCE\tLOCAL ID\tSTATE\tREV\tTRIES\tCHANGED\tLAST ERROR\n")
	for _, it := range items {
		st := string(it.State)
		if it.Reviewed {
			st += " (reviewed)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", it.Source, it.LocalID, st, it.Revision, it.Attempts,
			utcMinute(it.UpdatedAt), clip(it.LastError, 70))
	}
	_ = tw.Flush()
}

// utcMinute is how the CLI shows a time: UTC, to the minute, with its zone.
func utcMinute(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// outputFlags are -o text|json and its older spelling --json, on status and events.
type outputFlags struct {
	format *string
	asJSON *bool
}

func addOutputFlags(fs *flag.FlagSet) outputFlags {
	return outputFlags{
		format: fs.String("o", "text", "output `format`: text (for people) or json (for scripts; field names are stable)"),
		asJSON: fs.Bool("json", false, "the same as -o json"),
	}
}

func (o outputFlags) check() error {
	if *o.format != "text" && *o.format != "json" {
		return fmt.Errorf("%w: -o must be text or json, got %q", errUsage, *o.format)
	}
	return nil
}

func (o outputFlags) json() bool { return *o.asJSON || *o.format == "json" }

// eachPage walks the search results; with all, every page from offset on.
func eachPage(ctx context.Context, c *apiClient, v url.Values, offset, limit int, all bool, fn func(ledger.Page)) error {
	if all {
		limit = ledger.MaxPageSize
	}
	for {
		v.Set("offset", strconv.Itoa(offset))
		v.Set("limit", strconv.Itoa(limit))
		var p ledger.Page
		if err := c.do(ctx, "GET", "/api/v1/incidents?"+v.Encode(), nil, &p); err != nil {
			return err
		}
		fn(p)
		offset += len(p.Items)
		if !all || len(p.Items) == 0 || offset >= p.Total {
			return nil
		}
	}
}

// usageErr marks a flag-parsing error, which the flag package has already printed with the
// command's usage, so that exitFor does not print it a second time.
func usageErr(err error) error {
	if err == flag.ErrHelp {
		return err
	}
	return flagError{err}
}

// flagError is a usage error already reported by the flag package.
type flagError struct{ err error }

func (e flagError) Error() string        { return e.err.Error() }
func (e flagError) Is(target error) bool { return target == errUsage }

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func since(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
