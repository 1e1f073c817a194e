package main

import (
	"context"
	"fmt"
	"io"

	"github.com/psgw/psgw/insights"
)

// cmdInsights is "psgw insights rebuild": it asks the running gateway to write its learning
// store afresh from the raw stream (docs/insights.md, "Rebuilding").
func cmdInsights(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("insights", "Usage: psgw insights rebuild\n\nRewrites the learning store of /insights from the raw stream, with the current code maps (operator role).\n", stderr)
	cf := addClientFlags(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitFor(usageErr(err), stderr, "insights")
	}
	if len(pos) != 1 || pos[0] != "rebuild" {
		return exitFor(fmt.Errorf("%w: the one subcommand is rebuild", errUsage), stderr, "insights")
	}
	c, err := cf.client()
	if err != nil {
		return exitFor(fmt.Errorf("%w: %v", errUsage, err), stderr, "insights")
	}
	var res insights.Rebuilt
	if err := c.do(context.Background(), "POST", "/api/v1/insights/rebuild", struct{}{}, &res); err != nil {
		return exitFor(err, stderr, "insights")
	}
	fmt.Fprintf(stdout, "learning store rebuilt: %d facts written, %d removed, %d incidents without a raw record kept as they were\n", res.Written, res.Deleted, res.Missing)
	return 0
}
