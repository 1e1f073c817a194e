// Package example is the template ingest adapter: copy this folder to start a new one (see
// docs/adapters.md). It is complete and tested, and small on purpose.
//
// It listens on TCP for incidents sent as JSON, one per line, and answers each line with one
// line:
//
//	ACCEPTED <record id>     stored durably; the sender may forget the incident
//	DUPLICATE <record id>    stored before; nothing new was stored
//	RETRY <reason>           not stored; send it again later
//	REFUSED <reason>         never acceptable as it is; do not resend unchanged
//
// Everything an adapter must get right is here: its own settings section (Config, with its
// defaults and checks), registered with its Factory in init and passed in, never read; a
// Factory that does no I/O; Run that opens its listener, serves until its context is
// cancelled, and is restartable; and the source acknowledged only after Publish returned nil.
//
// A config file section enables it once this package is imported (docs/adapters.md):
//
//	example:
//	  addr: 127.0.0.1:7000
package example

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
)

// Kind is this adapter's registered kind: the adapter label of its metrics and its name on
// the status page. Section is its key in the config file.
const (
	Kind    = "example"
	Section = "example"
)

// Config is the adapter's settings: its section of the config file, whose keys are the yaml
// tags (each also PSGW_EXAMPLE_<KEY>). The config package decodes and validates them and
// passes them in Deps.Settings; the adapter never reads files or the environment.
type Config struct {
	// Addr is the TCP listen address, e.g. 127.0.0.1:7000 (port 0 picks a free one). Empty,
	// the default, leaves the adapter off: setting it is what enables it.
	Addr string `yaml:"addr"`
	// MaxLineBytes caps one incident; a longer line is refused.
	MaxLineBytes int `yaml:"max_line_bytes"`
	// IdleTimeout closes a connection that sends nothing for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// PublishTimeout bounds the wait for durable storage before answering RETRY.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// MaxConnections caps open connections (0: no limit).
	MaxConnections int `yaml:"max_connections"`
}

// Defaults returns the settings a key left out of the config file takes: the one place the
// adapter's defaults are written.
func Defaults() Config {
	return Config{MaxLineBytes: 64 << 10, IdleTimeout: 5 * time.Minute, PublishTimeout: 5 * time.Second}
}

// withDefaults fills the settings left zero from Defaults, for an adapter built in Go (tests)
// rather than from the config file.
func (c Config) withDefaults() Config {
	d := Defaults()
	if c.MaxLineBytes <= 0 {
		c.MaxLineBytes = d.MaxLineBytes
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = d.PublishTimeout
	}
	return c
}

// Enabled reports whether the section turns the adapter on: addr is set.
func (c Config) Enabled() bool { return c.Addr != "" }

// Validate checks the settings of an enabled adapter, without I/O; each problem names its key.
func (c Config) Validate(ingest.Shared) error {
	if !c.Enabled() {
		return nil
	}
	p := ingest.NewProblems(Section)
	p.Addr("addr", c.Addr)
	if c.MaxLineBytes < 1024 || c.MaxLineBytes > ingest.MaxRecordLimit {
		p.Add("max_line_bytes", "must be 1024 to %d, got %d", ingest.MaxRecordLimit, c.MaxLineBytes)
	}
	p.Positive("idle_timeout", c.IdleTimeout)
	p.Positive("publish_timeout", c.PublishTimeout)
	if c.MaxConnections < 0 {
		p.Add("max_connections", "must not be negative, got %d", c.MaxConnections)
	}
	return p.Err()
}

// MaxRecordBytes is the largest incident the adapter accepts, so that the store is sized to
// take it (ingest.RecordLimiter).
func (c Config) MaxRecordBytes() int64 { return int64(c.MaxLineBytes) }

// Adapter is a running example listener. Build it with New or the registered Factory.
type Adapter struct {
	cfg  Config
	deps ingest.Deps

	mu    sync.Mutex
	ln    net.Listener
	ready chan struct{} // closed once ln is listening for the current Run
}

// The interface guards: the build fails if Adapter or Config stop satisfying the contract.
var (
	_ ingest.Adapter       = (*Adapter)(nil)
	_ ingest.Listener      = (*Adapter)(nil)
	_ ingest.Settings      = (*Config)(nil)
	_ ingest.RecordLimiter = (*Config)(nil)
)

// init registers the adapter under its section: a config file with an example section whose
// addr is set runs it, once ingest/all (or a test) imports this package.
func init() {
	ingest.Register(ingest.Module{
		Kind:    Kind,
		Section: Section,
		New:     ingest.NewSettings(Defaults),
		Factory: Factory,
	})
}

// Factory builds the adapter from deps.Settings (a Config or *Config). It does no I/O.
func Factory(deps ingest.Deps) (ingest.Adapter, error) {
	cfg, err := ingest.SettingsAs[Config](Kind, deps)
	if err != nil {
		return nil, err
	}
	if cfg.Addr == "" {
		return nil, errors.New("example adapter: Addr is required")
	}
	cfg = cfg.withDefaults()
	cfg.MaxLineBytes = int(ingest.FitRecordLimit(deps, Section+".max_line_bytes", int64(cfg.MaxLineBytes)))
	return New(cfg, deps), nil
}

// New builds the adapter. It does no I/O.
func New(cfg Config, deps ingest.Deps) *Adapter {
	deps.Now = deps.Clock()
	return &Adapter{cfg: cfg.withDefaults(), deps: deps, ready: make(chan struct{})}
}

// Addr waits until Run is listening and returns the bound address (useful with port 0).
func (a *Adapter) Addr(ctx context.Context) (net.Addr, error) {
	a.mu.Lock()
	ready := a.ready
	a.mu.Unlock()
	select {
	case <-ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln == nil {
		return nil, errors.New("example adapter is not running")
	}
	return a.ln.Addr(), nil
}

// Run listens and serves until ctx is cancelled. See ingest.Adapter for the lifecycle.
func (a *Adapter) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", a.cfg.Addr, err)
	}
	a.mu.Lock()
	a.ln = ln
	close(a.ready)
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.ln = nil
		a.ready = make(chan struct{})
		a.mu.Unlock()
	}()
	return ingest.ServeConns(ctx, ln, a.cfg.MaxConnections, a.deps, a.serveConn)
}

// serveConn answers every line of one connection, in order. It tells ServeConns when the
// connection is busy (a line has started) and when idle again (the line was answered): at
// MaxConnections, the connection idle the longest makes room for a new one.
func (a *Adapter) serveConn(ctx context.Context, conn net.Conn) {
	in := &busyOnRead{ctx: ctx, r: conn}
	sc := bufio.NewScanner(in)
	var consumed int64 // bytes the scanner has handed out as lines, with their line breaks
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		advance, token, err := bufio.ScanLines(data, atEOF)
		consumed += int64(advance)
		return advance, token, err
	})
	sc.Buffer(make([]byte, 0, min(4096, a.cfg.MaxLineBytes)), a.cfg.MaxLineBytes)
	w := bufio.NewWriter(conn)
	reply := func(format string, args ...any) bool {
		_ = conn.SetWriteDeadline(time.Now().Add(a.cfg.IdleTimeout))
		fmt.Fprintf(w, format+"\n", args...)
		return w.Flush() == nil
	}
	for {
		_ = conn.SetReadDeadline(time.Now().Add(a.cfg.IdleTimeout))
		if !sc.Scan() {
			if errors.Is(sc.Err(), bufio.ErrTooLong) {
				a.deps.CountRejected("too_large")
				reply("REFUSED line longer than %d bytes", a.cfg.MaxLineBytes)
			}
			return // EOF, idle timeout, or shutdown closed the connection
		}
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		if !reply("%s", a.handle(ctx, line)) {
			return
		}
		if in.read == consumed {
			ingest.ConnIdle(ctx) // answered, and nothing of the next line has arrived
		}
	}
}

// busyOnRead marks the connection busy whenever bytes arrive, and counts them.
type busyOnRead struct {
	ctx  context.Context
	r    net.Conn
	read int64
}

func (b *busyOnRead) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.read += int64(n)
		ingest.ConnBusy(b.ctx)
	}
	return n, err
}

// handle turns one line into a record, publishes it and returns the answer for the source.
func (a *Adapter) handle(ctx context.Context, line []byte) string {
	in, problems := fhir.ParseIncident(line, fhir.ParseOptions{Now: a.deps.Now(), Sources: a.deps.Sources})
	if len(problems) > 0 {
		a.deps.CountRejected("invalid")
		// Problems name fields and rules, never values, so they are safe to send back.
		return "REFUSED " + problems[0].String()
	}
	key := ingest.IncidentKey(in.Source, in.LocalID)
	sum := sha256.Sum256(line)
	rec := ingest.Record{
		Kind:    ingest.KindIncident,
		Source:  in.Source,
		LocalID: in.LocalID,
		Key:     key,
		// The same line always gives the same id, so a resend is dropped as a duplicate.
		ID:         ingest.IncidentRecordID(in.Source, key, in.RevisionOr(0), hex.EncodeToString(sum[:12])),
		Revision:   in.RevisionOr(0),
		Data:       append([]byte(nil), line...), // the scanner reuses its buffer
		ReceivedAt: a.deps.Now().UTC(),
	}
	pctx, cancel := context.WithTimeout(ctx, a.cfg.PublishTimeout)
	defer cancel()
	res, err := a.deps.Publisher.Publish(pctx, rec)
	switch {
	case err != nil && ctx.Err() != nil:
		// Shutting down: the record may or may not be stored. Say nothing that could read as
		// an acknowledgement; the connection is about to close and the source will resend.
		return "RETRY gateway shutting down"
	case err != nil:
		// Log ids and the error, never the record.
		a.deps.Logger.Warn().Err(err).Str("record", rec.ID).Msg("incident not stored; answered RETRY")
		return "RETRY cannot store the incident durably right now"
	case res.Duplicate:
		return "DUPLICATE " + rec.ID
	default:
		return "ACCEPTED " + rec.ID
	}
}
