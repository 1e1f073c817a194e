package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/internal/backoff"
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
	// ReasonPeerLimit: a new connection closed at once, its peer address holding
	// ConnLimits.MaxPerPeer connections, none of them idle.
	ReasonPeerLimit = "too_many_from_peer"
	// ReasonPeerNotAllowed: a connection from an address outside ConnLimits.Allowed, closed
	// at once, before a byte was read from it.
	ReasonPeerNotAllowed = "peer_not_allowed"
	// ReasonTLSHandshake: a TLS connection whose handshake failed (no client certificate, one
	// not signed by the configured CA, not TLS at all) or did not finish within
	// ConnLimits.HandshakeTimeout.
	ReasonTLSHandshake = "tls_handshake"
)

// ConnLimits bound who may hold a listener's connections (ServeConnsLimited). The zero value
// limits nothing.
type ConnLimits struct {
	// Max caps open connections; 0: no limit. At the cap a new connection takes the place of
	// the one idle the longest (see ConnIdle), else it is closed at once.
	Max int
	// MaxPerPeer caps the connections from one IP address; 0 (or Max and over): no cap but
	// Max. At its cap a new connection from that address takes the place of that address's
	// connection idle the longest, else it is closed at once. So one host, however many
	// sockets it opens, holds at most MaxPerPeer slots and cannot lock out the others.
	MaxPerPeer int
	// Allowed, when not empty, are the only addresses that may connect: any other connection
	// is closed as it is accepted, before a byte is read or a TLS handshake begun, so that no
	// slot is ever held by an outsider: every slot is the listed peers'.
	Allowed []netip.Prefix
	// HandshakeTimeout bounds a TLS connection's handshake, which ServeConnsLimited runs
	// before calling the handler (so the handler sees a verified peer); 0: 10s.
	HandshakeTimeout time.Duration
	// Peers, when set, lists the open connections by peer, for the adapter's status.
	Peers *PeerTable
}

// AllowedPeer reports whether addr (an IP address or a CIDR prefix, as in a config list of
// allowed peers) is well formed, and returns it as a prefix.
func AllowedPeer(addr string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(addr); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR prefix", addr)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// peerAddr is the IP address of a connection's remote end, IPv4-mapped addresses unmapped.
func peerAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

func allowed(list []netip.Prefix, a netip.Addr) bool {
	if len(list) == 0 {
		return true
	}
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Peer is one peer address's open connections, as an adapter's status shows them.
type Peer struct {
	// Addr is the peer's IP address.
	Addr string `json:"addr"`
	// TLSSubject is the subject of the certificate the peer presented (a TLS listener that
	// verifies client certificates), e.g. "CN=rhapsody.rgt.nhs.uk,O=RGT".
	TLSSubject string `json:"tls_subject,omitempty"`
	// Connections is how many connections from Addr (with that certificate) are open.
	Connections int `json:"connections"`
	// Since is when the oldest of them was accepted.
	Since time.Time `json:"since"`
}

// MaxPeersShown bounds the peers a PeerTable reports, so a crowd of addresses cannot make
// the status page large.
const MaxPeersShown = 20

// PeerTable lists a listener's open connections by peer for its status. Safe for concurrent
// use; the zero value is ready.
type PeerTable struct {
	mu    sync.Mutex
	conns map[net.Conn]Peer
}

func (t *PeerTable) add(c net.Conn, p Peer) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns == nil {
		t.conns = map[net.Conn]Peer{}
	}
	t.conns[c] = p
}

func (t *PeerTable) remove(c net.Conn) {
	if t == nil {
		return
	}
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// Peers returns the open connections grouped by address and certificate subject, oldest
// first, at most MaxPeersShown of them.
func (t *PeerTable) Peers() []Peer {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	byPeer := map[[2]string]*Peer{}
	for _, p := range t.conns {
		k := [2]string{p.Addr, p.TLSSubject}
		if g, ok := byPeer[k]; ok {
			g.Connections++
			if p.Since.Before(g.Since) {
				g.Since = p.Since
			}
			continue
		}
		p.Connections = 1
		byPeer[k] = &p
	}
	t.mu.Unlock()
	out := make([]Peer, 0, len(byPeer))
	for _, p := range byPeer {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].Addr+out[i].TLSSubject < out[j].Addr+out[j].TLSSubject
	})
	if len(out) > MaxPeersShown {
		out = out[:MaxPeersShown]
	}
	return out
}

// PeerLister is implemented by adapters that keep a PeerTable: the runner shows its Peers in
// the adapter's Status.
type PeerLister interface {
	Peers() []Peer
}

type connMarkKey struct{}

// connMark is one connection's idle state, guarded by its ServeConns's mutex.
type connMark struct {
	mu      *sync.Mutex
	clock   *uint64 // ServeConns's idle clock: orders the times connections went idle
	addr    netip.Addr
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

// acceptBackoff is the pause after a failed Accept (out of file descriptors and the like):
// 5 ms, doubling, at most a second, as net/http's.
var acceptBackoff = backoff.Backoff{Initial: 5 * time.Millisecond, Max: time.Second}

// ServeConns is ServeConnsLimited with no limit but maxConns (0: no limit).
func ServeConns(ctx context.Context, ln net.Listener, maxConns int, deps Deps, handle ConnHandler) error {
	return ServeConnsLimited(ctx, ln, ConnLimits{Max: maxConns}, deps, handle)
}

// ServeConnsLimited is the accept loop for adapters that own a TCP listener. It serves every
// connection on its own goroutine, so one slow or broken peer never holds up another.
//
// As a connection is accepted, its peer is checked against lim.Allowed (an outsider is
// closed at once: ReasonPeerNotAllowed). With lim.MaxPerPeer connections open from its
// address, the new one takes the place of that address's connection idle the longest, else
// it is closed (ReasonPeerLimit). With lim.Max connections open, it takes the place of the
// connection idle the longest (ReasonEvictedIdle), else it is closed
// (ReasonTooManyConnections). So peers that connect and send nothing cannot lock out a real
// sender, and one host cannot take every slot. A TLS connection (ln from tls.NewListener)
// has its handshake run, within lim.HandshakeTimeout, before the handler is called; one that
// fails is closed (ReasonTLSHandshake). Every refusal is counted with deps.CountRejected.
//
// ServeConnsLimited takes ownership of ln. When ctx is cancelled it closes ln and every open
// connection, waits for every handler to return, and returns nil. If Accept fails for any
// other reason it does the same and returns the error, so that the Runner restarts the
// adapter.
func ServeConnsLimited(ctx context.Context, ln net.Listener, lim ConnLimits, deps Deps, handle ConnHandler) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if lim.HandshakeTimeout <= 0 {
		lim.HandshakeTimeout = 10 * time.Second
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]*connMark{}
		clock uint64
		wg    sync.WaitGroup
		// A flood of failed handshakes must not flood the log: they are all counted.
		tlsLog = deps.Logger.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Minute})
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
	failures := 0
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
				failures++
				_ = backoff.Sleep(ctx, acceptBackoff.Delay(failures))
				continue
			}
			err = fmt.Errorf("accepting connections: %w", err)
			break
		}
		failures = 0
		addr := peerAddr(c)
		if !allowed(lim.Allowed, addr) {
			// Count before closing, so that whoever sees the close also sees the count.
			deps.CountRejected(ReasonPeerNotAllowed)
			deps.Logger.Debug().Str("peer", addr.String()).Msg("connection from a peer not in the allowed list closed")
			_ = c.Close()
			continue
		}
		mu.Lock()
		var evict []net.Conn
		refuse := ""
		if ctx.Err() == nil && lim.MaxPerPeer > 0 && (lim.Max <= 0 || lim.MaxPerPeer < lim.Max) {
			if n, oldest := peerConns(conns, addr); n >= lim.MaxPerPeer {
				if oldest == nil {
					refuse = ReasonPeerLimit
				} else {
					evict = append(evict, oldest)
				}
			}
		}
		if refuse == "" && ctx.Err() == nil && lim.Max > 0 && len(conns)-len(evict) >= lim.Max {
			if oldest := idleLongest(conns, netip.Addr{}); oldest != nil {
				evict = append(evict, oldest)
			} else {
				refuse = ReasonTooManyConnections
			}
		}
		if ctx.Err() != nil || refuse != "" {
			mu.Unlock()
			if ctx.Err() == nil {
				deps.CountRejected(refuse)
			}
			_ = c.Close()
			continue
		}
		for _, e := range evict {
			conns[e].evicted = true
			delete(conns, e)
		}
		clock++
		mark := &connMark{mu: &mu, clock: &clock, addr: addr, idle: true, idleAt: clock}
		conns[c] = mark
		mu.Unlock()
		for _, e := range evict {
			deps.CountRejected(ReasonEvictedIdle)
			deps.Logger.Debug().Str("peer", e.RemoteAddr().String()).Int("max_connections", lim.Max).
				Int("max_connections_per_peer", lim.MaxPerPeer).Msg("connection limit reached; closed the connection idle the longest")
			_ = e.Close()
		}
		cctx := context.WithValue(ctx, connMarkKey{}, mark)
		wg.Go(func() {
			defer func() {
				mu.Lock()
				if conns[c] == mark {
					delete(conns, c)
				}
				mu.Unlock()
				lim.Peers.remove(c)
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
			peer := Peer{Addr: addr.String(), Since: time.Now().UTC()}
			if tc, ok := c.(*tls.Conn); ok {
				subject, err := handshake(cctx, tc, lim.HandshakeTimeout)
				if err != nil {
					if cctx.Err() == nil {
						deps.CountRejected(ReasonTLSHandshake)
						tlsLog.Info().Str("peer", addr.String()).Err(err).Msg("TLS handshake failed; connection closed")
					}
					return
				}
				peer.TLSSubject = subject
			}
			lim.Peers.add(c, peer)
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

// peerConns counts the connections open from addr and finds the one of them idle the
// longest (nil if none is idle). mu is held.
func peerConns(conns map[net.Conn]*connMark, addr netip.Addr) (int, net.Conn) {
	n := 0
	for _, m := range conns {
		if m.addr == addr {
			n++
		}
	}
	return n, idleLongest(conns, addr)
}

// idleLongest returns the connection idle the longest, of those from addr when addr is
// valid, or nil when none is idle. mu is held.
func idleLongest(conns map[net.Conn]*connMark, addr netip.Addr) net.Conn {
	var evict net.Conn
	var oldest *connMark
	for oc, m := range conns {
		if addr.IsValid() && m.addr != addr {
			continue
		}
		if m.idle && !m.evicted && (oldest == nil || m.idleAt < oldest.idleAt) {
			evict, oldest = oc, m
		}
	}
	return evict
}

// handshake runs a TLS connection's handshake within timeout and returns the subject of the
// certificate the peer presented ("" for none: a listener that does not ask for one).
func handshake(ctx context.Context, tc *tls.Conn, timeout time.Duration) (string, error) {
	_ = tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		return "", err
	}
	_ = tc.SetDeadline(time.Time{})
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		return certs[0].Subject.String(), nil
	}
	return "", nil
}
