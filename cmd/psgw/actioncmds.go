package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/mattn/go-isatty"

	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/ops"
)

// cmdReplay replays one incident, or every incident a filter selects, one by one with a
// progress line on a terminal, so that a long bulk replay shows how far it got and which ones failed.
// Unknown incidents are never replayed: a replay would POST them again and could create a
// second national record, so the command names the resolve commands for them instead.
func cmdReplay(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("replay", `Usage:
  psgw replay SOURCE LOCAL_ID
  psgw replay --state STATE [--source NAME] [--local-id TEXT] [--from T] [--to T] [--yes] [--dry-run]

Re-maps incidents from the raw records the gateway keeps and queues them again (operator role).
A bulk replay lists what matches, asks before it starts (unless --yes), and shows progress.
Unknown incidents (a POST whose outcome is unknown) are never replayed, even with
--state unknown: resolve each with "psgw resolve" instead.
Exit status: 0 all replayed, 1 some failed, were skipped or the gateway refused, 2 usage error.
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
			if ae, ok := replayRefused(err); ok {
				fmt.Fprintf(stderr, "psgw replay: refused: %s/%s %s.\n", pos[0], pos[1], ae.Reason)
				printResolveHint(stderr, ae.Code, [][2]string{{pos[0], pos[1]}})
				return 1
			}
			return exitFor(err, stderr, "replay")
		}
		fmt.Fprintf(stdout, "%s/%s replayed: now %s\n", rec.Source, rec.LocalID, rec.State)
		return 0
	case len(pos) != 0:
		return exitFor(fmt.Errorf("%w: give SOURCE LOCAL_ID, or filters such as --state failed", errUsage), stderr, "replay")
	case *ef.state == "" && *ef.source == "" && *ef.localID == "" && *ef.from == "" && *ef.to == "":
		return exitFor(fmt.Errorf("%w: a bulk replay needs at least one filter (--state, --source, --local-id, --from, --to)", errUsage), stderr, "replay")
	}

	var matched []ledger.Summary
	if err := eachPage(ctx, c, ef.values(), 0, 0, true, func(p ledger.Page) { matched = append(matched, p.Items...) }); err != nil {
		return exitFor(err, stderr, "replay")
	}
	if len(matched) == 0 {
		fmt.Fprintln(stdout, "No incidents match; nothing to replay.")
		return 0
	}
	var todo []ledger.Summary
	var unknown [][2]string
	for _, it := range matched {
		if it.State == ledger.StateUnknown {
			unknown = append(unknown, [2]string{it.Source, it.LocalID})
			continue
		}
		todo = append(todo, it)
	}
	if *dry {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "SOURCE\tLOCAL ID\tSTATE\n")
		for _, it := range matched {
			note := ""
			if it.State == ledger.StateUnknown {
				note = "\t(skipped: resolve it)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s%s\n", it.Source, it.LocalID, it.State, note)
		}
		_ = tw.Flush()
		fmt.Fprintf(stdout, "\n%d would be replayed.\n", len(todo))
		if len(unknown) > 0 {
			fmt.Fprintf(stdout, "%d unknown would be skipped: resolve each with psgw resolve.\n", len(unknown))
		}
		return 0
	}
	if len(todo) == 0 {
		fmt.Fprintln(stdout, "Nothing replayed.")
		printSkipped(stderr, unknown, nil)
		return 1
	}
	question := fmt.Sprintf("Replay %d incident(s)?", len(todo))
	if len(unknown) > 0 {
		question = fmt.Sprintf("Replay %d incident(s)? (%d unknown will be skipped: resolve those instead)", len(todo), len(unknown))
	}
	if !*yes && !confirm(stderr, question) {
		fmt.Fprintln(stderr, "Nothing replayed.")
		return 1
	}
	prog := newProgress(stderr, len(todo))
	var failures []string
	var inFlight [][2]string
	replayed := 0
	for i, it := range todo {
		err := c.do(ctx, "POST", incidentURL(it.Source, it.LocalID)+"/replay", struct{}{}, nil)
		if ae, ok := replayRefused(err); ok {
			// It changed since it was listed: skipped, like the unknown ones listed.
			if ae.Code == ops.CodeNeedsResolve {
				unknown = append(unknown, [2]string{it.Source, it.LocalID})
			} else {
				inFlight = append(inFlight, [2]string{it.Source, it.LocalID})
			}
		} else if err != nil {
			failures = append(failures, fmt.Sprintf("%s/%s: %v", it.Source, it.LocalID, err))
			var ae *apiError
			if errors.As(err, &ae) && (ae.Status == 401 || ae.Status == 403) {
				prog.done(i+1, len(failures))
				return exitFor(err, stderr, "replay")
			}
		} else {
			replayed++
		}
		prog.done(i+1, len(failures))
	}
	prog.finish()
	fmt.Fprintf(stdout, "Replayed %d of %d.\n", replayed, len(matched))
	for _, f := range failures {
		fmt.Fprintf(stderr, "failed: %s\n", f)
	}
	printSkipped(stderr, unknown, inFlight)
	if len(failures) > 0 || len(unknown) > 0 || len(inFlight) > 0 {
		return 1
	}
	return 0
}

// replayRefused reports whether err is the gateway refusing a replay because it could POST
// the incident a second time.
func replayRefused(err error) (*apiError, bool) {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == 409 && (ae.Code == ops.CodeNeedsResolve || ae.Code == ops.CodePostInFlight) {
		return ae, true
	}
	return nil, false
}

// printSkipped explains the incidents a bulk replay left alone.
func printSkipped(w io.Writer, unknown, inFlight [][2]string) {
	if len(unknown) > 0 {
		fmt.Fprintf(w, "Skipped %d unknown incident(s): a POST of each may have reached the national service, so a replay could create a duplicate national record.\n", len(unknown))
		printResolveHint(w, ops.CodeNeedsResolve, unknown)
	}
	if len(inFlight) > 0 {
		fmt.Fprintf(w, "Skipped %d incident(s) being POSTed right now; look at them again once the send has an outcome:\n", len(inFlight))
		for _, id := range inFlight {
			fmt.Fprintf(w, "  %s %s\n", id[0], id[1])
		}
	}
}

// printResolveHint tells the operator what to do instead of a refused replay.
func printResolveHint(w io.Writer, code string, ids [][2]string) {
	if code != ops.CodeNeedsResolve {
		fmt.Fprintln(w, "Wait for the outcome of the send in flight, then look at it again (psgw events).")
		return
	}
	fmt.Fprintln(w, "Find out whether LFPSE holds each, then resolve it instead of replaying:")
	for _, id := range ids {
		src, lid := shellQuote(id[0]), shellQuote(id[1])
		fmt.Fprintf(w, "  psgw resolve %s %s --delivered --national-id ID   # LFPSE holds it as ID\n", src, lid)
		fmt.Fprintf(w, "  psgw resolve %s %s --resend                       # it is not there; flagged as a possible duplicate\n", src, lid)
	}
}

// shellQuote quotes s for a shell when it holds anything but plain characters.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// cmdResolve settles an unknown (or failed) incident: the operator says the national
// service holds it, or asks for it to be sent again.
func cmdResolve(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("resolve", `Usage:
  psgw resolve SOURCE LOCAL_ID --delivered --national-id ID [--reference REF]
  psgw resolve SOURCE LOCAL_ID --resend
  psgw resolve --state unknown [--source NAME] [--local-id TEXT] [--from T] [--to T] --resend [--yes] [--dry-run]

--delivered: LFPSE already holds the incident (look it up there first); it is never created twice.
--resend: it is not there; send it again, accepting that a lost first POST may make a duplicate.
With filters instead of SOURCE LOCAL_ID, every unknown incident they select is sent again (only
--resend: each one LFPSE holds needs its own national id). It lists them, asks first (unless
--yes) and shows progress.
Exit status: 0 all resolved, 1 some failed or the gateway refused, 2 usage error.
`, stderr)
	cf := addClientFlags(fs)
	ef := addEventFilters(fs)
	yes := fs.Bool("yes", false, "do not ask before a bulk resend")
	dry := fs.Bool("dry-run", false, "list what a bulk resend would send again, and stop")
	delivered := fs.Bool("delivered", false, "the national service holds it")
	resend := fs.Bool("resend", false, "send it again (may duplicate)")
	nid := fs.String("national-id", "", "the national `id` LFPSE shows for it (with --delivered)")
	ref := fs.String("reference", "", "the national reference `number` (with --delivered)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitFor(usageErr(err), stderr, "resolve")
	}
	body := map[string]string{}
	filtered := *ef.state != "" || *ef.source != "" || *ef.localID != "" || *ef.from != "" || *ef.to != ""
	switch {
	case len(pos) == 0 && filtered && *delivered:
		err = errors.New("a bulk resolve only resends: resolve each incident LFPSE holds on its own, with --delivered --national-id")
	case len(pos) == 0 && filtered && !*resend:
		err = errors.New("a bulk resolve needs --resend")
	case len(pos) == 0 && filtered && *ef.state != "" && *ef.state != string(ledger.StateUnknown):
		err = errors.New("a bulk resolve acts on --state unknown only (replay the others)")
	case len(pos) == 0 && filtered:
		return bulkResend(cf, ef, *yes, *dry, stdout, stderr)
	case len(pos) != 2:
		err = errors.New("give SOURCE LOCAL_ID, or filters such as --state unknown --source NAME with --resend")
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

// bulkResend sends again every unknown incident the filters select, one by one with progress,
// after listing them and asking.
func bulkResend(cf clientFlags, ef eventFilters, yes, dry bool, stdout, stderr io.Writer) int {
	c, err := cf.client()
	if err != nil {
		return exitFor(fmt.Errorf("%w: %v", errUsage, err), stderr, "resolve")
	}
	ctx := context.Background()
	q := ef.values()
	q.Set("state", string(ledger.StateUnknown))
	var matched []ledger.Summary
	if err := eachPage(ctx, c, q, 0, 0, true, func(p ledger.Page) { matched = append(matched, p.Items...) }); err != nil {
		return exitFor(err, stderr, "resolve")
	}
	if len(matched) == 0 {
		fmt.Fprintln(stdout, "No unknown incidents match; nothing to resend.")
		return 0
	}
	if dry {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "SOURCE\tLOCAL ID\tCHANGED\n")
		for _, it := range matched {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", it.Source, it.LocalID, it.UpdatedAt.UTC().Format("2006-01-02 15:04:05Z"))
		}
		_ = tw.Flush()
		fmt.Fprintf(stdout, "\n%d would be sent again, each flagged as a possible duplicate.\n", len(matched))
		return 0
	}
	if !yes && !confirm(stderr, fmt.Sprintf("Send %d unknown incident(s) again? Only if LFPSE shows none of them: any it holds would be duplicated.", len(matched))) {
		fmt.Fprintln(stderr, "Nothing sent.")
		return 1
	}
	prog := newProgress(stderr, len(matched))
	var failures []string
	for i, it := range matched {
		if err := c.do(ctx, "POST", incidentURL(it.Source, it.LocalID)+"/resolve", map[string]string{"action": "resend"}, nil); err != nil {
			failures = append(failures, fmt.Sprintf("%s/%s: %v", it.Source, it.LocalID, err))
			var ae *apiError
			if errors.As(err, &ae) && (ae.Status == 401 || ae.Status == 403) {
				prog.done(i+1, len(failures))
				return exitFor(err, stderr, "resolve")
			}
		}
		prog.done(i+1, len(failures))
	}
	prog.finish()
	fmt.Fprintf(stdout, "Sent again %d of %d.\n", len(matched)-len(failures), len(matched))
	for _, f := range failures {
		fmt.Fprintf(stderr, "failed: %s\n", f)
	}
	if len(failures) > 0 {
		return 1
	}
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

// cmdSQLPoll serves "psgw sqlpoll skip NAME --past V1[,V2...]": it moves the SQL poller NAME's
// cursor past a row that cannot be read even on its own (docs/adapters.md, "Stepping past a
// row").
func cmdSQLPoll(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sqlpoll", `Usage: psgw sqlpoll skip NAME --past V1[,V2...]

Moves the cursor of the SQL poller NAME (its adapter name, "sqlpoll" by default) to the given
values, one per cursor column, typed like the cursor it replaces (operator role). The next
poll reads the rows after them: use it to step past a row whose cursor cannot be read, which
the adapter's error names. It refuses to move the cursor back.
`, stderr)
	cf := addClientFlags(fs)
	past := fs.String("past", "", "the cursor values to step past, comma-separated, in cursor_columns order")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitFor(usageErr(err), stderr, "sqlpoll")
	}
	if len(pos) != 2 || pos[0] != "skip" || *past == "" {
		return exitFor(fmt.Errorf("%w: give skip NAME --past V1[,V2...]", errUsage), stderr, "sqlpoll")
	}
	c, err := cf.client()
	if err != nil {
		return exitFor(fmt.Errorf("%w: %v", errUsage, err), stderr, "sqlpoll")
	}
	var res struct {
		Previous string `json:"previous"`
	}
	body := map[string][]string{"past": strings.Split(*past, ",")}
	if err := c.do(context.Background(), "POST", "/api/v1/adapters/"+url.PathEscape(pos[1])+"/skip", body, &res); err != nil {
		return exitFor(err, stderr, "sqlpoll")
	}
	fmt.Fprintf(stdout, "%s: cursor moved from %s past %s\n", pos[1], res.Previous, *past)
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

// progress draws "replaying 12/40 [=====     ] 30%" on one line, redrawn in place, when w
// is a terminal; into a file or a pipe it writes nothing, since carriage returns would only
// clutter a log, and the summary line says what happened.
type progress struct {
	w     io.Writer
	total int
	draw  bool
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, total: total, draw: isTerminal(w)}
}

// isTerminal reports whether w is a terminal (not a file, a pipe or /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

func (p *progress) done(n, failed int) {
	if !p.draw {
		return
	}
	const width = 30
	filled := n * width / p.total
	extra := ""
	if failed > 0 {
		extra = fmt.Sprintf(", %d failed", failed)
	}
	fmt.Fprintf(p.w, "\rreplaying %d/%d [%s%s] %3d%%%s", n, p.total, strings.Repeat("=", filled),
		strings.Repeat(" ", width-filled), n*100/p.total, extra)
}

func (p *progress) finish() {
	if p.draw {
		fmt.Fprintln(p.w)
	}
}
