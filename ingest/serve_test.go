package ingest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/test/tlstest"
)

// rejects counts CountRejected reasons.
type rejects struct {
	mu sync.Mutex
	m  map[string]int
}

func (r *rejects) add(reason string) {
	r.mu.Lock()
	r.m[reason]++
	r.mu.Unlock()
}

func (r *rejects) get(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[reason]
}

// serve runs ServeConnsLimited on a loopback listener until the test ends. Its handler marks
// a connection busy when it reads a byte, and idle again when the byte is a newline, which it
// answers "ok\n"; a "b" it answers "busy\n", once the connection is marked busy.
func serve(t *testing.T, lim ingest.ConnLimits, wrap func(net.Listener) net.Listener) (string, *rejects) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	rj := &rejects{m: map[string]int{}}
	deps := ingest.Deps{Name: "t", Logger: zerolog.Nop(), OnReject: rj.add}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ingest.ServeConnsLimited(ctx, ln, lim, deps, func(ctx context.Context, c net.Conn) {
			buf := make([]byte, 1)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
				ingest.ConnBusy(ctx)
				switch buf[0] {
				case 'b':
					if _, err := c.Write([]byte("busy\n")); err != nil {
						return
					}
				case '\n':
					if _, err := c.Write([]byte("ok\n")); err != nil {
						return
					}
					ingest.ConnIdle(ctx)
				}
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeConnsLimited: %v", err)
		}
	})
	return addr, rj
}

// dialFrom connects to addr from the loopback address ip (Linux routes all of 127/8 to lo).
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from %s (a loopback alias this system lacks?): %v", ip, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// answered sends a line on c and reports whether "ok" came back.
func answered(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("x\n")); err != nil {
		return false
	}
	buf := make([]byte, 3)
	n, err := c.Read(buf)
	return err == nil && string(buf[:n]) == "ok\n"
}

// closedByServer waits, bounded, for the server to close c.
func closedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the server did not close the connection")
		}
		return
	}
}

// TestPerPeerCap: one address holds at most MaxPerPeer connections; at the cap its idle one
// makes room, and with none idle its new connection is refused, while another address still
// gets in.
func TestPerPeerCap(t *testing.T) {
	addr, rj := serve(t, ingest.ConnLimits{Max: 10, MaxPerPeer: 2}, nil)
	a1 := dialFrom(t, "127.0.0.2", addr)
	a2 := dialFrom(t, "127.0.0.2", addr)
	if !answered(a1) || !answered(a2) {
		t.Fatal("the first two connections from one address were not served")
	}
	a3 := dialFrom(t, "127.0.0.2", addr) // a1 and a2 are idle: the older makes room
	closedByServer(t, a1)
	if !answered(a3) {
		t.Fatal("the third connection did not take the idle one's place")
	}
	// Both busy now (a line begun on each): the next is refused.
	for _, c := range []net.Conn{a2, a3} {
		if !busy(c) {
			t.Fatal("a connection was not marked busy")
		}
	}
	closedByServer(t, dialFrom(t, "127.0.0.2", addr))
	if got := rj.get(ingest.ReasonPeerLimit); got != 1 {
		t.Errorf("too_many_from_peer: got %d, want 1", got)
	}
	if b := dialFrom(t, "127.0.0.3", addr); !answered(b) {
		t.Error("another address was refused while one address was at its cap")
	}
	if got := rj.get(ingest.ReasonEvictedIdle); got < 1 {
		t.Errorf("evicted_idle: got %d, want at least 1", got)
	}
}

// busy begins a line on c and waits until the server has marked the connection busy.
func busy(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("b")); err != nil {
		return false
	}
	buf := make([]byte, 5)
	n, err := c.Read(buf)
	return err == nil && string(buf[:n]) == "busy\n"
}

// TestAllowedPeers: with an allowed list, a connection from outside it is closed at accept
// and counted, and never reaches the handler; one from inside is served.
func TestAllowedPeers(t *testing.T) {
	allowed, err := ingest.AllowedPeer("127.0.0.8/30") // .8 to .11
	if err != nil {
		t.Fatal(err)
	}
	addr, rj := serve(t, ingest.ConnLimits{Max: 10, Allowed: []netip.Prefix{allowed}}, nil)
	if !answered(dialFrom(t, "127.0.0.9", addr)) {
		t.Fatal("an allowed peer was not served")
	}
	out := dialFrom(t, "127.0.0.12", addr)
	closedByServer(t, out)
	if got := rj.get(ingest.ReasonPeerNotAllowed); got != 1 {
		t.Errorf("peer_not_allowed: got %d, want 1", got)
	}
}

func TestAllowedPeerSyntax(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3": "10.1.2.3/32", "10.1.2.3/16": "10.1.0.0/16", "::1": "::1/128", "::ffff:10.0.0.1": "10.0.0.1/32",
	} {
		if p, err := ingest.AllowedPeer(in); err != nil || p.String() != want {
			t.Errorf("AllowedPeer(%q): got %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "host.example", "10.1.2.3/33", "10.1.2"} {
		if _, err := ingest.AllowedPeer(bad); err == nil {
			t.Errorf("AllowedPeer(%q): got no error", bad)
		}
	}
}

// TestTLSHandshakeIsBoundedAndNamesThePeer: a TLS connection that never starts its handshake
// is closed after HandshakeTimeout (it cannot hold a slot for longer); one that completes it
// with a client certificate is listed in the peer table with the certificate's subject.
func TestTLSHandshakeIsBoundedAndNamesThePeer(t *testing.T) {
	ca := tlstest.NewCA(t, "psgw test CA")
	server := ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth)
	client := ca.Issue(t, "rhapsody.test", x509.ExtKeyUsageClientAuth)
	pool := ca.Pool()
	var peers ingest.PeerTable
	addr, rj := serve(t, ingest.ConnLimits{Max: 10, HandshakeTimeout: 200 * time.Millisecond, Peers: &peers},
		func(ln net.Listener) net.Listener {
			return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{server}, ClientCAs: pool,
				ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
		})
	silent := dialFrom(t, "127.0.0.1", addr)
	closedByServer(t, silent)
	if got := rj.get(ingest.ReasonTLSHandshake); got != 1 {
		t.Errorf("tls_handshake: got %d, want 1", got)
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{client}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !answered(c) {
		t.Fatal("a client with a certificate the CA signed was not served")
	}
	ps := peers.Peers()
	if len(ps) != 1 || ps[0].TLSSubject != "CN=rhapsody.test,O=psgw test" || ps[0].Addr != "127.0.0.1" || ps[0].Connections != 1 {
		t.Errorf("peers: got %+v, want one from 127.0.0.1 with subject CN=rhapsody.test,O=psgw test", ps)
	}
}
