package epr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/ops"
	"github.com/psgw/psgw/test/tlstest"
)

// slowLoris is the attack of issue 16: conns connections, each from one of the loopback
// addresses ips, sending "\x0bMSH|" and on a byte a second, and connecting again as soon as
// they are cut off or refused. It runs until ctx ends; dials counts its connections.
func slowLoris(ctx context.Context, addr string, ips []string, conns int, dials *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	payload := []byte("\x0bMSH|^~\\&|EVIL|X|PSGW|RGT|20250310090000+0000||ADT^A08|EVIL|P|2.5\r")
	for i := range conns {
		ip := ips[i%len(ips)]
		wg.Go(func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					select {
					case <-ctx.Done():
					case <-time.After(50 * time.Millisecond):
					}
					continue
				}
				dials.Add(1)
				stop := context.AfterFunc(ctx, func() { c.Close() })
				for j := 0; ctx.Err() == nil; j++ {
					if _, err := c.Write(payload[j%len(payload) : j%len(payload)+1]); err != nil {
						break
					}
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
				}
				stop()
				c.Close()
			}
		})
	}
	return &wg
}

// dialFrom connects to the MLLP listener from the loopback address ip.
func dialFrom(t *testing.T, ip, addr string) *mllptest.Client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialling from %s: %v", ip, err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	client := mllptest.NewClient(c)
	t.Cleanup(func() { client.Close() })
	return client
}

// adapterStatus reads the MLLP adapter's status from GET /api/v1/status.
func adapterStatus(t *testing.T, gw *gateway.Gateway) ingest.Status {
	t.Helper()
	resp, err := http.Get("http://" + gw.HTTPAddr() + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var o ops.Overview
	if err := json.NewDecoder(resp.Body).Decode(&o); err != nil {
		t.Fatal(err)
	}
	for _, a := range o.Adapters {
		if a.Name == hl7mllp.Kind {
			return a
		}
	}
	t.Fatal("no hl7mllp adapter in the status")
	return ingest.Status{}
}

// waitStatus polls the adapter's status until cond holds.
func waitStatus(t *testing.T, gw *gateway.Gateway, what string, cond func(ingest.Status) bool) ingest.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := adapterStatus(t, gw)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; status: %+v", what, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sendADTs sends n ADT messages on c, one after the other, and returns how long the n AAs
// took; every answer must be an AA for its own message.
func sendADTs(t *testing.T, c *mllptest.Client, prefix string, n int) time.Duration {
	t.Helper()
	start := time.Now()
	for i := range n {
		ctl := fmt.Sprintf("%s%02d", prefix, i)
		ack, err := c.Send(mllptest.ADT("A08", ctl, time.Date(2025, 3, 10, 9, 0, i, 0, time.UTC), jane))
		if err != nil || ack.Code != "AA" || ack.Control != ctl {
			t.Fatalf("message %d of %d during the attack: got %s for %q (%v), want AA for %s", i+1, n, ack.Code, ack.Control, err, ctl)
		}
	}
	return time.Since(start)
}

// TestSlowPeersCannotBlockTheEPR is issue 16's second must-show. 500 connections dribble a
// frame a byte a second at the MLLP port, reconnecting whenever they are cut off, while the
// EPR sends 20 ADT messages: all 20 get their AA within 5 s (the per-address cap keeps the
// attacker to 8 slots; the kilobyte timeout cuts its connections after 5 s). Then, with
// mllp.allowed_peers set to the EPR's address, the attack comes from ten addresses at once:
// every one of their connections is refused as it connects, a full message from outside
// gets no ACK, and the EPR's 20 messages still get their AAs within 5 s.
func TestSlowPeersCannotBlockTheEPR(t *testing.T) {
	if testing.Short() {
		t.Skip("500 connections")
	}
	// Issue 16's bound is 5 s. Under the race detector on two loaded cores 20 AAs took 7.5 s
	// once with the attack held at its cap, so the bound is widened there; the defect it
	// guards against left the EPR with no AA at all.
	bound := 5 * time.Second
	if raceDetector {
		bound = 20 * time.Second
	}
	t.Run("per-address cap", func(t *testing.T) {
		gw, _ := startGatewayWith(t, nil)
		addr := gw.AdapterAddr(context.Background(), hl7mllp.Kind)
		ctx, cancel := context.WithCancel(context.Background())
		var dials atomic.Int64
		wg := slowLoris(ctx, addr, []string{"127.0.0.2"}, 500, &dials)
		defer func() { cancel(); wg.Wait() }()
		// The attack is on once its connections are being turned away.
		waitStatus(t, gw, "the attacker held at its cap", func(st ingest.Status) bool {
			return st.RejectedByReason[ingest.ReasonPeerLimit] >= 200
		})
		took := sendADTs(t, dialFrom(t, "127.0.0.1", addr), "EPR", 20)
		t.Logf("20 AAs in %s during 500 slow connections from one address (%d attacker connections so far)", took.Round(time.Millisecond), dials.Load())
		if took > bound {
			t.Errorf("20 AAs took %s, want within %s", took, bound)
		}
		st := waitStatus(t, gw, "a slow connection cut", func(st ingest.Status) bool {
			return st.RejectedByReason[hl7mllp.ReasonSlowSender] >= 1
		})
		t.Logf("refusals: %v", st.RejectedByReason)
	})
	t.Run("allowed peers", func(t *testing.T) {
		gw, _ := startGatewayWith(t, func(c *config.Config) {
			c.Adapters[hl7mllp.Section].(*hl7mllp.Config).AllowedPeers = []string{"127.0.0.1"}
		})
		addr := gw.AdapterAddr(context.Background(), hl7mllp.Kind)
		ctx, cancel := context.WithCancel(context.Background())
		var dials atomic.Int64
		var ips []string
		for i := 2; i < 12; i++ {
			ips = append(ips, fmt.Sprintf("127.0.0.%d", i))
		}
		wg := slowLoris(ctx, addr, ips, 500, &dials)
		defer func() { cancel(); wg.Wait() }()
		waitStatus(t, gw, "outsiders refused", func(st ingest.Status) bool {
			return st.RejectedByReason[ingest.ReasonPeerNotAllowed] >= 500
		})
		// A well-formed message from outside the list is never read.
		out := dialFrom(t, "127.0.0.20", addr)
		_ = out.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if ack, err := out.Send(mllptest.ADT("A08", "OUTSIDER", time.Now(), jane)); err == nil {
			t.Errorf("a peer outside mllp.allowed_peers got %s for %q", ack.Code, ack.Control)
		}
		took := sendADTs(t, dialFrom(t, "127.0.0.1", addr), "ALLOWED", 20)
		t.Logf("20 AAs in %s during 500 slow connections from 10 addresses outside mllp.allowed_peers (%d attacker connections so far)", took.Round(time.Millisecond), dials.Load())
		if took > bound {
			t.Errorf("20 AAs took %s, want within %s", took, bound)
		}
		st := adapterStatus(t, gw)
		if st.RejectedByReason[hl7mllp.ReasonSlowSender] != 0 || st.Records != 20 {
			t.Errorf("status: got %d records and %d slow senders, want 20 and 0 (no outsider's byte was read)", st.Records, st.RejectedByReason[hl7mllp.ReasonSlowSender])
		}
	})
}

// TestMutualTLS is issue 16's third must-show: with mllp.tls.client_ca_file, a sender with no
// certificate, or one signed by another CA, is refused; one with a certificate the CA signed
// gets its AA, and its certificate's subject shows in the adapter's status. The CA and the
// certificates are made here.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "psgw test trust CA")
	other := tlstest.NewCA(t, "someone else's CA")
	ca.WriteCA(t, filepath.Join(dir, "ca.pem"))
	tlstest.WritePair(t, ca.Issue(t, "localhost", x509.ExtKeyUsageServerAuth), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"))
	gw, _ := startGatewayWith(t, func(c *config.Config) {
		m := c.Adapters[hl7mllp.Section].(*hl7mllp.Config)
		m.TLSCertFile = filepath.Join(dir, "server.pem")
		m.TLSKeyFile = filepath.Join(dir, "server.key")
		m.ClientTLS.ClientCAFile = filepath.Join(dir, "ca.pem")
	})
	addr := gw.AdapterAddr(context.Background(), hl7mllp.Kind)
	roots := ca.Pool()
	dial := func(cert *tls.Certificate) (mllptest.Ack, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cfg := &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
		if cert != nil {
			// Sent whatever CAs the listener names, as a misconfigured engine would.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		c, err := mllptest.Dial(ctx, addr, cfg)
		if err != nil {
			return mllptest.Ack{}, err
		}
		defer c.Close()
		return c.Send(mllptest.ADT("A08", "MTLS", time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC), jane))
	}
	if ack, err := dial(nil); err == nil {
		t.Errorf("a sender without a certificate got %s", ack.Code)
	}
	stranger := other.Issue(t, "stranger.test", x509.ExtKeyUsageClientAuth)
	if ack, err := dial(&stranger); err == nil {
		t.Errorf("a sender whose certificate another CA signed got %s", ack.Code)
	}
	engine := ca.Issue(t, "rhapsody.rgt.test", x509.ExtKeyUsageClientAuth)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mllptest.Dial(ctx, addr, &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{engine}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ack, err := c.Send(mllptest.ADT("A08", "MTLS", time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC), jane))
	if err != nil || ack.Code != "AA" || ack.Control != "MTLS" {
		t.Fatalf("a sender with a certificate the CA signed: got %+v, %v, want AA", ack, err)
	}
	st := adapterStatus(t, gw)
	if len(st.Peers) != 1 || st.Peers[0].TLSSubject != "CN=rhapsody.rgt.test,O=psgw test" {
		t.Errorf("status peers: got %+v, want the engine's subject CN=rhapsody.rgt.test,O=psgw test", st.Peers)
	}
	if got := st.RejectedByReason[ingest.ReasonTLSHandshake]; got != 2 {
		t.Errorf("tls_handshake refusals: got %d, want 2", got)
	}
	resp, err := http.Get("http://" + gw.HTTPAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(page), "CN=rhapsody.rgt.test") {
		t.Error("the status page does not show the sender's certificate subject")
	}
}
