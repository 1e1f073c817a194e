package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/sim"
)

func cmdSim(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("psgw sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen `address`")
	keys := fs.String("key", gateway.DemoKey, "accepted subscription `keys`, comma-separated")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	var faults sim.Faults
	faults.BindFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: psgw sim [--addr HOST:PORT] [flags]\n\nRuns the LFPSE national-service simulator. Test endpoints: GET /_sim/events, GET /_sim/stats,\nGET /_sim/requests, GET|PUT /_sim/faults, PUT /_sim/keys, POST /_sim/reset.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "psgw sim: unexpected argument %q (the address goes after --addr)\n", fs.Arg(0))
		return 2
	}
	log := newLogger(stderr, *logLevel, "json")
	var keyList []string
	for _, k := range strings.Split(*keys, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keyList = append(keyList, k)
		}
	}
	s, err := gateway.NewSimulator(keyList, faults, log)
	if err != nil {
		fmt.Fprintf(stderr, "psgw sim: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "psgw sim: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("national-service simulator listening")
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "psgw sim: %v\n", err)
		return 1
	}
	return 0
}
