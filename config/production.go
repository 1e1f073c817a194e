package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/psgw/psgw/ingest"
)

// ProductionOptions are the run flags that bear on the production checks.
type ProductionOptions struct {
	// Demo is `psgw run --demo`: never in production.
	Demo bool
	// TLSByProxy says a proxy in front of psgw terminates TLS, so plain http on a
	// non-loopback listener is accepted (`psgw run --tls-by-proxy`).
	TLSByProxy bool
}

// CheckProduction returns every reason this configuration must not run as a production
// gateway (`psgw run --production`), one line each naming the setting and what to do, or nil.
// It reads only the loaded configuration, so a secret given as a file has already been read
// (docs/deploy.md, "Production mode").
func (c *Config) CheckProduction(o ProductionOptions) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if o.Demo {
		bad("--demo", "is a demonstration with an in-process simulator; it cannot run with --production")
	}
	if c.National.BaseURL == "" {
		bad("national.base_url", "must be set: without it incidents are only held, never sent to LFPSE")
	}
	if c.National.AllowHTTP {
		bad("national.allow_http", "must be false: the national service is reached over https only")
	}
	switch {
	case c.National.SubscriptionKeyFile == "" && c.National.SubscriptionKey != "":
		bad("national.subscription_key", "must be given as a file (national.subscription_key_file, a Docker secret), not in the environment or the config file, where `docker inspect` and backups of the config show it")
	case c.National.SubscriptionKeyFile == "":
		bad("national.subscription_key_file", "must name the file holding the LFPSE subscription key (a Docker secret such as /run/secrets/lfpse-key)")
	case c.National.SubscriptionKey == "":
		bad("national.subscription_key_file", "%s is empty", c.National.SubscriptionKeyFile)
	}
	if len(c.Ops.ViewerTokens) == 0 && len(c.Ops.OperatorTokens) == 0 {
		bad("ops.tokens_file", "must give at least one operator token (or set ops.operator_tokens): without one, anyone who can reach the status page can replay and resolve incidents")
	} else if len(c.Ops.OperatorTokens) == 0 {
		bad("ops.operator_tokens", "must hold at least one operator token: only viewers are configured, so no one could replay or resolve a stuck incident")
	}
	if c.HTTP.TLSCertFile == "" && !o.TLSByProxy && !loopbackAddr(c.HTTP.Addr) {
		bad("http.tls_cert_file", "must be set (with http.tls_key_file) when http.addr %s is not a loopback address; if a proxy in front of psgw terminates TLS, run with --tls-by-proxy", c.HTTP.Addr)
	}
	for _, a := range c.EnabledAdapters() {
		if pc, ok := a.Settings.(ingest.ProductionChecker); ok {
			errs = append(errs, flatten(pc.CheckProduction())...)
		}
	}
	return errors.Join(errs...)
}

// CheckDemo refuses `psgw run --demo` on a configuration that names a national service:
// demo mode would deliver its incidents to the in-process simulator instead, where they look
// delivered and never reach LFPSE (docs/safety/hazard-log.yaml, H-014). A national service is
// reached over https; an http national.base_url (taken only to a loopback host, or with
// national.allow_http) is a simulator or a test service, which demo mode may replace.
func (c *Config) CheckDemo() error {
	u, err := url.Parse(c.National.BaseURL)
	if c.National.BaseURL == "" || err != nil || u.Scheme == "http" {
		return nil
	}
	return errors.New("national.base_url names a national service (an https URL), and --demo would send its incidents to the in-process simulator instead, where they look delivered and never reach it: run without --demo, or unset national.base_url (PSGW_NATIONAL_BASE_URL) for a demonstration")
}

// loopbackAddr reports whether a listen address host:port binds loopback only; an empty host
// or a wildcard binds every interface.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || strings.TrimSpace(host) == "" {
		return false
	}
	return loopbackHost(host)
}
