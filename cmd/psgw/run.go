package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/internal/memlimit"
)

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("psgw run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config `file` (default: built-in defaults)")
	demo := fs.Bool("demo", false, "also run the national-service simulator in-process and deliver to it")
	production := fs.Bool("production", false, "refuse to start unless the national endpoint, its key (as a file), operator tokens and TLS are all set (docs/deploy.md)")
	tlsByProxy := fs.Bool("tls-by-proxy", false, "with --production: a proxy in front of psgw terminates TLS, so plain http on a non-loopback address is accepted")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: psgw run [--config FILE] [--demo | --production [--tls-by-proxy]]\n\nRuns the gateway. Settings come from the config file and PSGW_* environment variables.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "psgw run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *production {
		// What production needs is said first and whole, even when the configuration is also
		// invalid: an empty key file is both, and "set the key as a secret" is the fix.
		if cfg, err := config.Load(*cfgPath, os.Environ()); err == nil {
			if perr := cfg.CheckProduction(config.ProductionOptions{Demo: *demo, TLSByProxy: *tlsByProxy}); perr != nil {
				fmt.Fprintf(stderr, "psgw run: refusing to start in production mode:\n%v\n", indent(perr))
				if verr := cfg.Validate(); verr != nil {
					fmt.Fprintf(stderr, "psgw run: invalid configuration:\n%v\n", verr)
				}
				return 2
			}
		}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "psgw run: %v\n", err)
		return 2
	}
	if *demo {
		if err := cfg.CheckDemo(); err != nil {
			fmt.Fprintf(stderr, "psgw run: refusing --demo: %v\n", err)
			return 2
		}
	}
	log := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if *production && *tlsByProxy && cfg.HTTP.TLSCertFile == "" {
		log.Warn().Str("http_addr", cfg.HTTP.Addr).Msg("PLAIN HTTP: --tls-by-proxy says a proxy in front of psgw terminates TLS; anyone who reaches this address directly sees tokens and incidents in clear")
	}
	for _, name := range config.UnknownEnv(os.Environ()) {
		log.Warn().Str("variable", name).Msg("environment variable matches no setting; ignored")
	}
	switch res, err := memlimit.Apply(memlimit.System(), os.Getenv); {
	case err != nil:
		log.Warn().Err(err).Msg("could not read the container's memory limit; set GOMEMLIMIT to give the Go heap a soft limit")
	case res.Set > 0:
		log.Info().Int64("container_limit_mib", res.Container>>20).Int64("go_memory_limit_mib", res.Set>>20).
			Msg("Go memory limit set below the container's, so the collector works harder before the kernel would kill psgw")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g, err := gateway.Start(ctx, cfg, gateway.Options{Demo: *demo, Logger: log, Version: version})
	if err != nil {
		log.Error().Err(err).Msg("psgw could not start")
		return 1
	}
	if *demo {
		fmt.Fprintf(stderr, "\n  psgw is running in DEMO MODE: events go to the in-process simulator at %s, not to LFPSE.\n  API and status page: http://%s/\n\n", g.SimURL(), g.HTTPAddr())
	}
	// SIGHUP re-reads the secret files at once (they are also polled): docs/api.md,
	// "Changing keys, certificates and tokens".
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-hup:
			if keys := g.ReloadSecrets(); len(keys) == 0 {
				log.Info().Msg("SIGHUP: no secret file changed")
			} else {
				log.Info().Strs("keys", keys).Msg("SIGHUP: secret files reloaded")
			}
		}
	}
	log.Info().Msg("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g.Stop(sctx)
	log.Info().Msg("stopped")
	return 0
}

// indent puts each line of a joined error under the heading that introduces it.
func indent(err error) string {
	return "  " + strings.ReplaceAll(err.Error(), "\n", "\n  ")
}

// loadConfig loads and validates the configuration from path (may be empty) and the
// environment.
func loadConfig(path string) (config.Config, error) {
	cfg, err := config.Load(path, os.Environ())
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}
