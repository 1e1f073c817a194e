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
	fs := newFlagSet("status", "Usage: psgw status [--url URL] [--json]\n\nShows a running gateway's state: endpoint health, outbox, counts per state, sources.\nExit status: 0 ready, 1 not ready or unreachable, 2 usage error.\n", stderr)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print the API's JSON")
	if _, err := parseInterleaved(fs, args); err != nil {
		return exitFor(usageErr(err), stderr, "status")
	}
	c, err := cf.client()
	if err != nil {
		return exitFor(fmt.Errorf("%w: %v", errUsage, err), stderr, "status")
	}
	var o ops.Overview
	if err := c.do(context.Background(), "GET", "/api/v1/status", nil, &o); err != nil {
		return exitFor(err, stderr, "status")
	}
	if *asJSON {
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
	fs := newFlagSet("events", "Usage: psgw events [--state STATE[,STATE]] [--source NAME] [--local-id TEXT] [--from T] [--to T] [--limit N] [--all]\n\nLists incidents from a running gateway's delivery ledger, most recently changed first.\n", stderr)
	cf := addClientFlags(fs)
	ef := addEventFilters(fs)
	limit := fs.Int("limit", 50, "how many to show")
	offset := fs.Int("offset", 0, "skip this many")
	all := fs.Bool("all", false, "show every match, page by page")
	asJSON := fs.Bool("json", false, "print JSON lines, one incident each")
	if _, err := parseInterleaved(fs, args); err != nil {
		return exitFor(usageErr(err), stderr, "events")
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
	if *asJSON {
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
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "SOURCE\tLOCAL ID\tSTATE\tREV\tTRIES\tCHANGED\tLAST ERROR\n")
	for _, it := range items {
		st := string(it.State)
		if it.Reviewed {
			st += " (reviewed)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", it.Source, it.LocalID, st, it.Revision, it.Attempts,
			it.UpdatedAt.Local().Format("2006-01-02 15:04"), clip(it.LastError, 70))
	}
	_ = tw.Flush()
	fmt.Fprintf(stdout, "\n%d–%d of %d\n", *offset+1, *offset+len(items), total)
	return 0
}

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

func usageErr(err error) error {
	if err == flag.ErrHelp {
		return err
	}
	return fmt.Errorf("%w: %v", errUsage, err)
}

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
