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
// any read or write in progress.
type ConnHandler func(ctx context.Context, conn net.Conn)

// ServeConns is the accept loop for adapters that own a TCP listener. It serves every
// connection on its own goroutine, so one slow or broken peer never holds up another. Beyond
// maxConns open connections (0: no limit) a new connection is closed at once and counted
// with deps.CountRejected("too_many_connections").
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
		conns = map[net.Conn]struct{}{}
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
		if ctx.Err() != nil || (maxConns > 0 && len(conns) >= maxConns) {
			mu.Unlock()
			// Count before closing, so that whoever sees the close also sees the count.
			if ctx.Err() == nil {
				deps.CountRejected("too_many_connections")
			}
			_ = c.Close()
			continue
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
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
			handle(ctx, c)
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
