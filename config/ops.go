package config

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
)

// tokenName is the rule for the name attached to an ops token: it is what the ledger history
// records as the actor, so it must be short and printable.
var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@ -]{0,63}$`)

// NamedToken is one ops credential: who holds it and the secret itself.
type NamedToken struct {
	Name  string
	Token string
}

// ParseNamedToken splits a "name:token" entry of ops.viewer_tokens or ops.operator_tokens.
func ParseNamedToken(s string) (NamedToken, error) {
	name, token, ok := strings.Cut(s, ":")
	name, token = strings.TrimSpace(name), strings.TrimSpace(token)
	if !ok || name == "" || token == "" {
		return NamedToken{}, fmt.Errorf("must be name:token")
	}
	if !tokenName.MatchString(name) {
		return NamedToken{}, fmt.Errorf("name %q must be letters, digits, . _ @ - or space, at most 64", name)
	}
	if len(token) < 16 {
		return NamedToken{}, fmt.Errorf("token for %q must be at least 16 characters", name)
	}
	return NamedToken{Name: name, Token: token}, nil
}

// AuthEnabled reports whether any ops token is configured, which turns access control on.
func (o OpsConfig) AuthEnabled() bool { return len(o.ViewerTokens)+len(o.OperatorTokens) > 0 }

// ReloadTokensFile returns o with the tokens of ops.tokens_file read afresh: those the file
// gave before are replaced, those of ops.viewer_tokens and ops.operator_tokens kept. It
// checks every token as Validate does, and the error never quotes one.
func (o OpsConfig) ReloadTokensFile() (OpsConfig, error) {
	out := o
	out.ViewerTokens = slices.Clone(o.ViewerTokens[:len(o.ViewerTokens)-o.FromTokensFile.Viewers])
	out.OperatorTokens = slices.Clone(o.OperatorTokens[:len(o.OperatorTokens)-o.FromTokensFile.Operators])
	out.FromTokensFile = TokensFileCounts{}
	if o.TokensFile == "" {
		return out, nil
	}
	b, err := os.ReadFile(o.TokensFile)
	if err != nil {
		return o, fmt.Errorf("ops.tokens_file: %w", err)
	}
	nv, no := len(out.ViewerTokens), len(out.OperatorTokens)
	if err := addOpsTokens(&out, string(b)); err != nil {
		return o, fmt.Errorf("ops.tokens_file: %w", err)
	}
	out.FromTokensFile = TokensFileCounts{Viewers: len(out.ViewerTokens) - nv, Operators: len(out.OperatorTokens) - no}
	c := Config{Ops: out}
	var problems []string
	c.validateOps(func(key, format string, args ...any) {
		if strings.HasPrefix(key, "ops.viewer_tokens") || strings.HasPrefix(key, "ops.operator_tokens") {
			problems = append(problems, key+": "+fmt.Sprintf(format, args...))
		}
	})
	if len(problems) > 0 {
		return o, fmt.Errorf("ops.tokens_file: %s", strings.Join(problems, "; "))
	}
	return out, nil
}

// addOpsTokens reads an ops.tokens_file: one "role name token" per line, where the name may
// not contain spaces here; blank lines and # comments are skipped.
func addOpsTokens(o *OpsConfig, text string) error {
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return fmt.Errorf("line %d: want \"role name token\"", i+1)
		}
		entry := f[1] + ":" + f[2]
		switch f[0] {
		case "viewer":
			o.ViewerTokens = append(o.ViewerTokens, entry)
		case "operator":
			o.OperatorTokens = append(o.OperatorTokens, entry)
		default:
			return fmt.Errorf("line %d: role must be viewer or operator, got %q", i+1, f[0])
		}
	}
	return nil
}

// validateOps checks access control and TLS settings.
func (c *Config) validateOps(bad func(string, string, ...any)) {
	seen := map[string]string{}
	check := func(key string, list []string) {
		for i, s := range list {
			k := fmt.Sprintf("%s[%d]", key, i)
			nt, err := ParseNamedToken(s)
			if err != nil {
				bad(k, "%v", err)
				continue
			}
			if prev, dup := seen[nt.Token]; dup {
				bad(k, "the same token is also given as %s; every person needs their own", prev)
			}
			seen[nt.Token] = k
		}
	}
	check("ops.viewer_tokens", c.Ops.ViewerTokens)
	check("ops.operator_tokens", c.Ops.OperatorTokens)
	if !c.Ops.AuthEnabled() {
		if c.Ops.ProtectMetrics {
			bad("ops.protect_metrics", "needs ops.viewer_tokens or ops.operator_tokens")
		}
		if c.Ops.ProtectHealth {
			bad("ops.protect_health", "needs ops.viewer_tokens or ops.operator_tokens")
		}
	}
	positive(bad, "ops.session_ttl", c.Ops.SessionTTL)
	for i, h := range c.HTTP.AllowedHosts {
		if !validAllowedHost(h) {
			bad(fmt.Sprintf("http.allowed_hosts[%d]", i), "must be a host name or IP address without scheme, port or path (psgw.trust.nhs.uk), or *")
		}
	}
	if (c.HTTP.TLSCertFile == "") != (c.HTTP.TLSKeyFile == "") {
		bad("http.tls_cert_file", "http.tls_cert_file and http.tls_key_file must be set together")
	}
}

// allowedHostShape is a DNS name (letters, digits, hyphens, dots, underscores) or an IP
// address; a scheme, port or path would never match a Host header's name.
var allowedHostShape = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})?$`)

func validAllowedHost(h string) bool {
	if h == "*" || allowedHostShape.MatchString(h) {
		return true
	}
	return net.ParseIP(strings.Trim(h, "[]")) != nil
}
