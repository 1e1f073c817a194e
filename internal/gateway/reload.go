package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/psgw/psgw/config"
)

// Secret files are re-read while psgw runs (docs/api.md, "Changing keys, certificates and
// tokens"): the national subscription key, the HTTP listener's TLS certificate and key,
// ops.tokens_file, the certificate, key and client CAs of a listener an adapter opens
// (mllp.tls_cert_file, mllp.tls.client_ca_file), and the files an adapter section's X_file
// keys name when the adapter takes them while it runs (http.ingest_tokens_file and each
// token_file of http.ingest_tokens; ingest.SecretsReloader). Each is polled for a change of
// content (a hash, so a secret mounted through a symlink that Kubernetes or Docker swaps is
// seen like an edit), and a change is applied once two polls in a row read the same new
// content, so that a file caught half written (truncated to nothing, say: no tokens,
// everyone signed out) is never applied. On SIGHUP the files are read and applied at once:
// whoever sent it has finished writing. A file that cannot be read or parsed changes
// nothing: the running value stays, and the error is logged without the file's content.

// secretFiles is what the gateway watches: each entry's files, the hash of their content
// when last applied, and how to apply them.
type secretFiles struct {
	mu      sync.Mutex
	entries []*secretFile
}

type secretFile struct {
	// key is the configuration key named in logs; or, when keys is set, keys names each of
	// paths, and logs name those whose file changed.
	key   string
	keys  []string
	paths []string
	// sum is the hash of the content last applied (or refused), and each file's in sums;
	// seen is the content the last poll read, which a poll applies only when it reads it
	// again.
	sum, seen [32]byte
	sums      [][32]byte
	apply     func() error
}

// name is what logs call the entry when files with the given hashes replace those last
// applied: its key, or the keys of the files that changed.
func (f *secretFile) name(sums [][32]byte) string {
	if f.keys == nil {
		return f.key
	}
	var changed []string
	for i, k := range f.keys {
		if i >= len(f.sums) || i >= len(sums) || f.sums[i] != sums[i] {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return strings.Join(f.keys, ", ")
	}
	return strings.Join(changed, ", ")
}

// addSecretsWatch sets up the watched files from cfg and adds the part that polls them.
func (g *Gateway) addSecretsWatch(cfg config.Config) {
	s := &secretFiles{}
	if p := cfg.National.SubscriptionKeyFile; p != "" && !g.opts.Demo && g.setKey != nil {
		s.add("national.subscription_key_file", []string{p}, func() error {
			key, err := config.ReadSubscriptionKeyFile(p)
			if err == nil && key == "" {
				err = errors.New("national.subscription_key_file: the file is empty")
			}
			if err != nil {
				return err
			}
			g.setKey(key)
			return nil
		})
	}
	if c, k := cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile; c != "" && k != "" {
		s.add("http.tls_cert_file", []string{c, k}, func() error {
			cert, err := tls.LoadX509KeyPair(c, k)
			if err != nil {
				return fmt.Errorf("http.tls_cert_file: %w", err)
			}
			g.cert.Store(&cert)
			return nil
		})
	}
	if cfg.Ops.TokensFile != "" {
		ops := cfg.Ops
		s.add("ops.tokens_file", []string{ops.TokensFile}, func() error {
			next, err := ops.ReloadTokensFile()
			if err != nil {
				return err
			}
			return g.auth.SetTokens(next)
		})
	}
	for _, l := range g.adapterTLS {
		s.add(l.certKey, []string{l.certFile, l.keyFile}, l.loadCert)
		if l.caFile != "" {
			s.add(l.caKey, []string{l.caFile}, l.loadCAs)
		}
	}
	for _, a := range g.adapterSecrets {
		files := cfg.AdapterSecretFiles(a.section)
		if len(files) == 0 {
			continue
		}
		keys, paths := make([]string, len(files)), make([]string, len(files))
		for i, f := range files {
			keys[i], paths[i] = f.Key, f.Path
		}
		shared := cfg.Shared()
		s.addKeyed(keys, paths, func() error {
			next, err := cfg.RereadAdapterSecrets(a.section)
			if err != nil {
				return err
			}
			if err := next.Validate(shared); err != nil {
				return err
			}
			return a.reloader.ReloadSecrets(next)
		})
	}
	g.secrets = s
	if len(s.entries) == 0 {
		return
	}
	every := g.opts.SecretsPollInterval
	if every <= 0 {
		every = 5 * time.Second
	}
	g.parts.add(part{name: "secret files", run: func(ctx context.Context) error {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				g.reloadSecrets(false)
			}
		}
	}})
}

func (s *secretFiles) add(key string, paths []string, apply func() error) {
	f := &secretFile{key: key, paths: paths, apply: apply}
	f.sum, f.sums, _ = hashFiles(paths) // what was read at start; unreadable now shows as a change later
	f.seen = f.sum
	s.entries = append(s.entries, f)
}

// addKeyed adds files applied together, each named by its own key in logs.
func (s *secretFiles) addKeyed(keys, paths []string, apply func() error) {
	s.add(strings.Join(keys, ", "), paths, apply)
	s.entries[len(s.entries)-1].keys = keys
}

// ReloadSecrets reads every watched secret file and applies at once those whose content
// changed since they were last applied; psgw run calls it on SIGHUP. It returns the
// configuration keys it applied.
func (g *Gateway) ReloadSecrets() []string { return g.reloadSecrets(true) }

// reloadSecrets applies the changed files: at once when now is set, else only those whose
// new content the previous poll read too.
func (g *Gateway) reloadSecrets(now bool) []string {
	s := g.secrets
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var applied []string
	for _, f := range s.entries {
		sum, sums, err := hashFiles(f.paths)
		if err != nil {
			continue // unreadable (mid-swap, or removed): keep what runs, try again later
		}
		if sum == f.sum {
			f.seen = sum
			continue
		}
		settled := sum == f.seen
		f.seen = sum
		if !now && !settled {
			continue // maybe half written: apply it if the next poll reads the same
		}
		name := f.name(sums)
		if err := f.apply(); err != nil {
			g.log.Error().Str("key", name).Err(err).Msg("secret file changed but could not be used; the running value is kept")
			f.sum, f.sums = sum, sums // do not log the same bad content on every poll
			continue
		}
		f.sum, f.sums = sum, sums
		applied = append(applied, name)
		g.log.Info().Str("key", name).Msg("secret file changed: reloaded without a restart")
	}
	return applied
}

// hashFiles is the SHA-256 of the files' contents, each length-prefixed, and each file's.
func hashFiles(paths []string) ([32]byte, [][32]byte, error) {
	var buf bytes.Buffer
	sums := make([][32]byte, len(paths))
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return [32]byte{}, nil, err
		}
		fmt.Fprintf(&buf, "%d:", len(b))
		buf.Write(b)
		sums[i] = sha256.Sum256(b)
	}
	return sha256.Sum256(buf.Bytes()), sums, nil
}
