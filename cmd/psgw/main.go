// Command psgw is the Patient Safety Gateway. This package only wires the parts together:
// it parses flags, loads config, builds the parts, starts them and stops them on signals.
package main

import (
	"fmt"
	"io"
	"os"
	// The zone database in the binary: LFPSE dates are Europe/London wall-clock, and the
	// container image has no /usr/share/zoneinfo.
	_ "time/tzdata"
)

const usage = `psgw: the Patient Safety Gateway

Usage:
  psgw run [--config FILE] [--demo]     run the gateway
  psgw run --production [--tls-by-proxy] [--config FILE]
                                        run it as a trust does: refuse to start without
                                        the national key, operator tokens and TLS
  psgw map --source NAME [--config FILE] FILE
                                        dry run: print the FHIR resource one record maps to
  psgw sim [--addr HOST:PORT] [flags]   run the national-service simulator on its own
  psgw status [--url URL]               a running gateway's state
  psgw events [--state STATE] [filters] list incidents from its delivery ledger
  psgw replay SOURCE LOCAL_ID | --state STATE [filters]
                                        re-map and queue incidents again
  psgw resolve SOURCE LOCAL_ID --delivered --national-id ID | --resend
                                        settle an incident whose send is unknown
  psgw review SOURCE LOCAL_ID           mark a stuck incident reviewed
  psgw insights rebuild                 rewrite the learning store of /insights from the raw stream
  psgw sqlpoll skip NAME --past V1[,V2]  move an SQL poller's cursor past a row it cannot read
  psgw health [--config FILE]           exit 0 when the local gateway is ready (for HEALTHCHECK)
  psgw backup [--config FILE] DIR       snapshot every stream and bucket of the running gateway
  psgw restore [--config FILE] DIR      create a stopped gateway's store from a backup
  psgw migrate [--config FILE] --to URLS [--replicas N]
                                        copy a stopped gateway's embedded store to a cluster
  psgw version                          print the version

Run "psgw COMMAND --help" for a command's flags.
`

// version, commit and buildDate are stamped at build time (-ldflags -X main.version=...);
// deploy/build-rootfs.sh does it for the container image.
var (
	version   = "dev"
	commit    = ""
	buildDate = ""
)

// versionLine is what `psgw version` prints: the version first, so scripts can take the
// second word, then where it was built from when that is known.
func versionLine() string {
	s := "psgw " + version
	switch {
	case commit != "" && buildDate != "":
		s += " (commit " + commit + ", built " + buildDate + ")"
	case commit != "":
		s += " (commit " + commit + ")"
	}
	return s
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "map":
		return cmdMap(args[1:], stdout, stderr)
	case "sim":
		return cmdSim(args[1:], stdout, stderr)
	case "status":
		return cmdStatus(args[1:], stdout, stderr)
	case "events":
		return cmdEvents(args[1:], stdout, stderr)
	case "replay":
		return cmdReplay(args[1:], stdout, stderr)
	case "resolve":
		return cmdResolve(args[1:], stdout, stderr)
	case "review":
		return cmdReview(args[1:], stdout, stderr)
	case "health":
		return cmdHealth(args[1:], stdout, stderr)
	case "insights":
		return cmdInsights(args[1:], stdout, stderr)
	case "sqlpoll":
		return cmdSQLPoll(args[1:], stdout, stderr)
	case "backup":
		return cmdBackup(args[1:], stdout, stderr)
	case "restore":
		return cmdRestore(args[1:], stdout, stderr)
	case "migrate":
		return cmdMigrate(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionLine())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "psgw: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
