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
// Everything an adapter must get right is here: settings passed in, not read; a Factory that
// does no I/O, registered in init; Run that opens its listener, serves until its context is
// cancelled, and is restartable; and the source acknowledged only after Publish returned nil.
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

// Kind is this adapter's registered kind.
const Kind = "example"

// Config is the adapter's settings. The gateway decodes and validates them from its config
// file and passes them in Deps.Settings; the adapter never reads files or the environment.
type Config struct {
	// Addr is the TCP listen address, e.g. 127.0.0.1:7000 (port 0 picks a free one).
	Addr string
	// MaxLineBytes caps one incident; a longer line is refused. Default 64 KiB.
	MaxLineBytes int
	// IdleTimeout closes a connection that sends nothing for this long. Default 5 minutes.
	IdleTimeout time.Duration
	// PublishTimeout bounds the wait for durable storage before answering RETRY. Default 5s.
	PublishTimeout time.Duration
	// MaxConnections caps open connections (0: no limit).
	MaxConnections int
}

// withDefaults fills unset settings. In the gateway the config package sets defaults; this
// keeps the adapter usable on its own, in tests.
func (c Config) withDefaults() Config {
	if c.MaxLineBytes <= 0 {
		c.MaxLineBytes = 64 << 10
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
	return c
}

// Adapter is a running example listener. Build it with New or the registered Factory.
type Adapter struct {
	cfg  Config
	deps ingest.Deps

	mu    sync.Mutex
	ln    net.Listener
	ready chan struct{} // closed once ln is listening for the current Run
}

// The interface guard: the build fails if Adapter stops satisfying the contract.
var _ ingest.Adapter = (*Adapter)(nil)

func init() { ingest.Register(Kind, Factory) }

// Factory builds the adapter from deps.Settings (a Config). It does no I/O.
func Factory(deps ingest.Deps) (ingest.Adapter, error) {
	cfg, err := ingest.SettingsAs[Config](Kind, deps)
	if err != nil {
		return nil, err
	}
	if cfg.Addr == "" {
		return nil, errors.New("example adapter: Addr is required")
	}
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
