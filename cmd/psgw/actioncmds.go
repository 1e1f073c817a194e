package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/psgw/psgw/ops"
)

// cmdReplay replays one incident, or every incident a filter selects, one by one with a
// progress line, so that a long bulk replay shows how far it got and which ones failed.
func cmdReplay(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("replay", `Usage:
  psgw replay SOURCE LOCAL_ID
  psgw replay --state STATE [--source NAME] [--local-id TEXT] [--from T] [--to T] [--yes] [--dry-run]

Re-maps incidents from the raw records the gateway keeps and queues them again (operator role).
A bulk replay lists what matches, asks before it starts (unless --yes), and shows progress.
Exit status: 0 all replayed, 1 some failed or the gateway refused, 2 usage error.
`, stderr)
	cf := addClientFlags(fs)
	ef := addEventFilters(fs)
	yes := fs.Bool("yes", false, "do not ask before a bulk replay")
	dry := fs.Bool("dry-run", false, "list what a bulk replay would replay, and stop")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitFor(usageErr(err), stderr, "replay")
	}
	c, err := cf.client()
	if err != nil {
		return exitFor(fmt.Errorf("%w: %v", errUsage, err), stderr, "replay")
	}
	ctx := context.Background()
	switch {
	case len(pos) == 2:
		var rec ops.Record
		if err := c.do(ctx, "POST", incidentURL(pos[0], pos[1])+"/replay", struct{}{}, &rec); err != nil {
			return exitFor(err, stderr, "replay")
		}
		fmt.Fprintf(stdout, "%s/%s replayed: now %s\n", rec.Source, rec.LocalID, rec.State)
		return 0
	case len(pos) != 0:
		return exitFor(fmt.Errorf("%w: give SOURCE LOCAL_ID, or filters such as --state failed", errUsage), stderr, "replay")
	case *ef.state == "" && *ef.source == "" && *ef.localID == "" && *ef.from == "" && *ef.to == "":
		return exitFor(fmt.Errorf("%w: a bulk replay needs at least one filter (--state, --source, --local-id, --from, --to)", errUsage), stderr, "replay")
	}

	var todo []ops.Summary
	if err := eachPage(ctx, c, ef.values(), 0, 0, true, func(p ops.Page) { todo = append(todo, p.Items...) }); err != nil {
		return exitFor(err, stderr, "replay")
	}
	if len(todo) == 0 {
		fmt.Fprintln(stdout, "No incidents match; nothing to replay.")
		return 0
	}
	if *dry {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "SOURCE\tLOCAL ID\tSTATE\n")
		for _, it := range todo {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", it.Source, it.LocalID, it.State)
		}
		_ = tw.Flush()
		fmt.Fprintf(stdout, "\n%d would be replayed.\n", len(todo))
		return 0
	}
	if !*yes && !confirm(stderr, fmt.Sprintf("Replay %d incident(s)?", len(todo))) {
		fmt.Fprintln(stderr, "Nothing replayed.")
		return 1
	}
	prog := newProgress(stderr, len(todo))
	var failures []string
	for i, it := range todo {
		err := c.do(ctx, "POST", incidentURL(it.Source, it.LocalID)+"/replay", struct{}{}, nil)
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s/%s: %v", it.Source, it.LocalID, err))
			var ae *apiError
			if errors.As(err, &ae) && (ae.Status == 401 || ae.Status == 403) {
				prog.done(i+1, len(failures))
				return exitFor(err, stderr, "replay")
			}
		}
		prog.done(i+1, len(failures))
	}
	prog.finish()
	fmt.Fprintf(stdout, "Replayed %d of %d.\n", len(todo)-len(failures), len(todo))
	for _, f := range failures {
		fmt.Fprintf(stderr, "failed: %s\n", f)
	}
	if len(failures) > 0 {
		return 1
	}
	return 0
}

// cmdResolve settles an unknown (or failed) incident: the operator says the national
// service holds it, or asks for it to be sent again.
func cmdResolve(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("resolve", `Usage:
  psgw resolve SOURCE LOCAL_ID --delivered --national-id ID [--reference REF]
  psgw resolve SOURCE LOCAL_ID --resend

--delivered: LFPSE already holds the incident (look it up there first); it is never created twice.
--resend: it is not there; send it again, accepting that a lost first POST may make a duplicate.
`, stderr)
	cf := addClientFlags(fs)
	delivered := fs.Bool("delivered", false, "the national service holds it")
	resend := fs.Bool("resend", false, "send it again (may duplicate)")
	nid := fs.String("national-id", "", "the national `id` LFPSE shows for it (with --delivered)")
	ref := fs.String("reference", "", "the national reference `number` (with --delivered)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitFor(usageErr(err), stderr, "resolve")
	}
	body := map[string]string{}
	switch {
	case len(pos) != 2:
		err = errors.New("give SOURCE LOCAL_ID")
	case *delivered == *resend:
		err = errors.New("give exactly one of --delivered or --resend")
	case *delivered && *nid == "":
		err = errors.New("--delivered needs --national-id")
	case *delivered:
		body["action"], body["national_id"], body["national_reference"] = "delivered", *nid, *ref
	default:
		body["action"] = "resend"
	}
	if err != nil {
		return exitFor(fmt.Errorf("%w: %v", errUsage, err), stderr, "resolve")
	}
	c, err := cf.client()
	if err != nil {
		return exitFor(fmt.Errorf("%w: %v", errUsage, err), stderr, "resolve")
	}
	var rec ops.Record
	if err := c.do(context.Background(), "POST", incidentURL(pos[0], pos[1])+"/resolve", body, &rec); err != nil {
		return exitFor(err, stderr, "resolve")
	}
	fmt.Fprintf(stdout, "%s/%s resolved: now %s", rec.Source, rec.LocalID, rec.State)
	if rec.NationalID != "" {
		fmt.Fprintf(stdout, " (national id %s)", rec.NationalID)
	}
	fmt.Fprintln(stdout)
	return 0
}

// cmdReview marks a stuck incident reviewed, so it leaves the overview's lists.
func cmdReview(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("review", "Usage: psgw review SOURCE LOCAL_ID\n\nMarks a rejected, quarantined, failed or unknown incident reviewed (operator role).\n", stderr)
	cf := addClientFlags(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitFor(usageErr(err), stderr, "review")
	}
	if len(pos) != 2 {
		return exitFor(fmt.Errorf("%w: give SOURCE LOCAL_ID", errUsage), stderr, "review")
	}
	c, err := cf.client()
	if err != nil {
		return exitFor(fmt.Errorf("%w: %v", errUsage, err), stderr, "review")
	}
	if err := c.do(context.Background(), "POST", incidentURL(pos[0], pos[1])+"/review", struct{}{}, nil); err != nil {
		return exitFor(err, stderr, "review")
	}
	fmt.Fprintf(stdout, "%s/%s marked reviewed\n", pos[0], pos[1])
	return 0
}

// confirmInput is where confirm reads the answer; tests replace it.
var confirmInput io.Reader = os.Stdin

func confirm(w io.Writer, question string) bool {
	fmt.Fprintf(w, "%s [y/N] ", question)
	line, _ := bufio.NewReader(confirmInput).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}

// progress draws "replaying 12/40 [=====     ] 30%" on one line, redrawn in place.
type progress struct {
	w     io.Writer
	total int
}

func newProgress(w io.Writer, total int) *progress { return &progress{w: w, total: total} }

func (p *progress) done(n, failed int) {
	const width = 30
	filled := n * width / p.total
	extra := ""
	if failed > 0 {
		extra = fmt.Sprintf(", %d failed", failed)
	}
	fmt.Fprintf(p.w, "\rreplaying %d/%d [%s%s] %3d%%%s", n, p.total, strings.Repeat("=", filled),
		strings.Repeat(" ", width-filled), n*100/p.total, extra)
}

func (p *progress) finish() { fmt.Fprintln(p.w) }
