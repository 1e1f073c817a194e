package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ConnHandler serves one accepted connection until the peer goes away or ctx is cancelled.
// The connection is closed for it afterwards, and also when ctx is cancelled, which unblocks
// any read or write in progress. A handler may mark its connection idle and busy with
// ConnIdle and ConnBusy on ctx.
type ConnHandler func(ctx context.Context, conn net.Conn)

// Reasons ServeConns counts with Deps.CountRejected.
const (
	// ReasonTooManyConnections: a new connection closed at once, maxConns being open and
	// none of them idle.
	ReasonTooManyConnections = "too_many_connections"
	// ReasonEvictedIdle: an idle connection closed to make room for a new one.
	ReasonEvictedIdle = "evicted_idle"
)

type connMarkKey struct{}

// connMark is one connection's idle state, guarded by its ServeConns's mutex.
type connMark struct {
	mu      *sync.Mutex
	clock   *uint64 // ServeConns's idle clock: orders the times connections went idle
	idle    bool
	idleAt  uint64
	evicted bool
}

// ConnIdle marks the connection served under ctx (a ConnHandler's context) as idle: between
// messages, with nothing read of the next one and nothing to answer. Once maxConns
// connections are open, ServeConns makes room for a new one by closing the connection that
// has been idle the longest. A new connection is idle from the moment it is accepted, so a
// handler must call ConnBusy as soon as any byte of a message arrives, and ConnIdle once the
// message is answered. Marking an idle connection idle again changes nothing. Outside
// ServeConns it does nothing.
func ConnIdle(ctx context.Context) {
	if m, ok := ctx.Value(connMarkKey{}).(*connMark); ok {
		m.mu.Lock()
		if !m.idle {
			*m.clock++
			m.idle, m.idleAt = true, *m.clock
		}
		m.mu.Unlock()
	}
}

// ConnBusy marks the connection served under ctx as busy: a message is being read, stored or
// answered. A busy connection is never closed to make room. See ConnIdle.
func ConnBusy(ctx context.Context) {
	if m, ok := ctx.Value(connMarkKey{}).(*connMark); ok {
		m.mu.Lock()
		m.idle = false
		m.mu.Unlock()
	}
}

// ServeConns is the accept loop for adapters that own a TCP listener. It serves every
// connection on its own goroutine, so one slow or broken peer never holds up another. With
// maxConns connections open (0: no limit), a new connection takes the place of the one that
// has been idle the longest (see ConnIdle), which is closed and counted with
// deps.CountRejected(ReasonEvictedIdle): so peers that connect and send nothing cannot lock
// out a real sender. When none is idle, the new connection is closed at once and counted
// with deps.CountRejected(ReasonTooManyConnections).
//
// ServeConns takes ownership of ln. When ctx is cancelled it closes ln and every open
// connection, waits for every handler to return, and returns nil. If Accept fails for any
// other reason it does the same and returns the error, so that the Runner restarts the
// adapter.
func ServeConns(ctx context.Context, ln net.Listener, maxConns int, deps Deps, handle ConnHandler) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		conns = map[net.Conn]*connMark{}
		clock uint64
		wg    sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	defer stop()

	var err error
	delay := 5 * time.Millisecond
	for {
		var c net.Conn
		c, err = ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				err = nil
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: wait a little and try again, as
				// net/http does.
				select {
				case <-ctx.Done():
				case <-time.After(delay):
				}
				delay = min(2*delay, time.Second)
				continue
			}
			err = fmt.Errorf("accepting connections: %w", err)
			break
		}
		delay = 5 * time.Millisecond
		mu.Lock()
		var evict net.Conn
		if maxConns > 0 && len(conns) >= maxConns && ctx.Err() == nil {
			var oldest *connMark
			for oc, m := range conns {
				if m.idle && !m.evicted && (oldest == nil || m.idleAt < oldest.idleAt) {
					evict, oldest = oc, m
				}
			}
			if oldest != nil {
				oldest.evicted = true
				delete(conns, evict)
			}
		}
		if ctx.Err() != nil || (maxConns > 0 && len(conns) >= maxConns) {
			mu.Unlock()
			// Count before closing, so that whoever sees the close also sees the count.
			if ctx.Err() == nil {
				deps.CountRejected(ReasonTooManyConnections)
			}
			_ = c.Close()
			continue
		}
		clock++
		mark := &connMark{mu: &mu, clock: &clock, idle: true, idleAt: clock}
		conns[c] = mark
		mu.Unlock()
		if evict != nil {
			deps.CountRejected(ReasonEvictedIdle)
			deps.Logger.Debug().Str("peer", evict.RemoteAddr().String()).Int("max_connections", maxConns).
				Msg("connection limit reached; closed the connection idle the longest")
			_ = evict.Close()
		}
		cctx := context.WithValue(ctx, connMarkKey{}, mark)
		wg.Go(func() {
			defer func() {
				mu.Lock()
				if conns[c] == mark {
					delete(conns, c)
				}
				mu.Unlock()
				_ = c.Close()
			}()
			defer func() {
				if p := recover(); p != nil {
					// A bug in the handler must not take the listener down. The panic value
					// is not logged: it may hold record data.
					deps.CountRejected("panic")
					deps.Logger.Error().Str("panic_type", fmt.Sprintf("%T", p)).Msg("connection handler panicked; connection closed")
				}
			}()
			handle(cctx, c)
		})
	}
	cancel()
	_ = ln.Close()
	mu.Lock()
	for c := range conns {
		_ = c.Close()
	}
	mu.Unlock()
	wg.Wait()
	return err
}
