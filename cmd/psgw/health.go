package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/psgw/psgw/config"
)

// cmdHealth asks the gateway running in this container (or on this host) whether it can
// accept and durably store records: GET /readyz on loopback, at the port http.addr names.
// It exists for Docker's HEALTHCHECK, which runs inside an image that has no shell or curl,
// and reads the same config file and PSGW_* variables as `psgw run`, so it always probes the
// address the gateway really listens on.
func cmdHealth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("psgw health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config `file` the gateway runs with (default: built-in defaults)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: psgw health [--config FILE] [--timeout D]\n\nExits 0 when the local gateway is ready to accept and store records, 1 when it is not\nor does not answer, 2 on usage errors. For container health checks.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "psgw health: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "psgw health: %v\n", err)
		return 2
	}
	url, err := readyURL(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "psgw health: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "psgw health: %v\n", err)
		return 2
	}
	if cfg.Ops.ProtectHealth {
		if tok := anyOpsToken(cfg.Ops); tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	client := &http.Client{Transport: &http.Transport{
		// The probe goes to this machine's own loopback, where the certificate is issued for
		// the service's public name, not for 127.0.0.1: what it proves is readiness, not
		// identity.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback only
	}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "psgw health: not ready: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "psgw health: not ready (%s): %s\n", resp.Status, strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Fprintln(stdout, "ready")
	return 0
}

// readyURL is the loopback URL of /readyz for the gateway's http.addr: a wildcard or
// non-loopback host is replaced by loopback, since the probe runs beside the gateway.
func readyURL(cfg config.Config) (string, error) {
	host, port, err := net.SplitHostPort(cfg.HTTP.Addr)
	if err != nil {
		return "", fmt.Errorf("http.addr %q: %w", cfg.HTTP.Addr, err)
	}
	ip := net.ParseIP(host)
	switch {
	case ip != nil && ip.To4() == nil:
		host = "::1"
	case ip == nil && host != "localhost":
		host = "127.0.0.1"
	case ip != nil && !ip.IsLoopback():
		host = "127.0.0.1"
	}
	scheme := "http"
	if cfg.HTTP.TLSCertFile != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// anyOpsToken is a token that may read /readyz when ops.protect_health is on.
func anyOpsToken(o config.OpsConfig) string {
	for _, list := range [][]string{o.ViewerTokens, o.OperatorTokens} {
		for _, s := range list {
			if nt, err := config.ParseNamedToken(s); err == nil {
				return nt.Token
			}
		}
	}
	return ""
}
