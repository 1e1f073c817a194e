// Package hl7mllp is the ingest adapter for the EPR's HL7 v2 feed over MLLP (docs/adapters.md,
// "The HL7 v2 MLLP adapter"). It listens on TCP (optionally TLS), reads MLLP frames, checks
// that each is an ADT message psgw handles (A01, A02, A03, A04, A05, A08, A28, A31, A40),
// publishes it as a raw ADT record and answers every frame with one ACK whose MSA-2 echoes
// MSH-10:
//
//   - AA only after Publish returned nil, i.e. after the JetStream PubAck;
//   - AE when the record could not be stored now (the sender resends later);
//   - AR, with the reason in MSA-3 and ERR, for anything that cannot be parsed or is not
//     supported, including a byte that is not valid in the message's character set (MSH-18,
//     or Config.DefaultCharset when it is empty: ISO 8859-1 unless configured); nothing is
//     published.
//
// A new connection must send within FirstMessageTimeout, and each kilobyte of a frame must
// arrive within FirstKilobyteTimeout, so a peer that dribbles is cut off in seconds. Only
// AllowedPeers may connect, when set; one address holds at most MaxConnectionsPerPeer
// connections; at MaxConnections a new connection takes the place of the one idle the
// longest, never one mid-message. With ClientTLS.ClientCAFile, a sender must present a
// certificate signed by that CA, and its subject shows in the adapter's status.
//
// The demographics store is not kept here: the patients package consumes the raw ADT records,
// and the gateway runs it because these settings say so (ingest.DemographicsFeed). The
// parser, framing and ACK builder live in the hl7 subpackage.
package hl7mllp

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/hl7mllp/hl7"
)

// Adapter is the MLLP listener. Build it with New or the registered Factory.
type Adapter struct {
	cfg   Config
	deps  ingest.Deps
	peers ingest.PeerTable // open connections, for the status
	// cutLog logs connections cut off, a few a minute: under a flood of slow peers every one
	// is counted, and a line each would drown the log.
	cutLog zerolog.Logger

	mu    sync.Mutex
	ln    net.Listener
	ready chan struct{} // closed once ln is listening for the current Run
}

var (
	_ ingest.Adapter    = (*Adapter)(nil)
	_ ingest.Listener   = (*Adapter)(nil)
	_ ingest.PeerLister = (*Adapter)(nil)
)

func init() {
	ingest.Register(ingest.Module{
		Kind:    Kind,
		Section: Section,
		New:     ingest.NewSettings(Defaults),
		Factory: Factory,
	})
}

// Factory builds the adapter from deps.Settings (a Config or *Config). It does no I/O. The
// listener's certificate, when the settings name one, is deps.TLS, loaded by the gateway.
func Factory(deps ingest.Deps) (ingest.Adapter, error) {
	cfg, err := ingest.SettingsAs[Config](Kind, deps)
	if err != nil {
		return nil, err
	}
	if cfg.Addr == "" {
		return nil, errors.New("hl7mllp adapter: Addr is required")
	}
	if _, ok := hl7.NormalizeCharset(cfg.DefaultCharset); cfg.DefaultCharset != "" && !ok {
		return nil, fmt.Errorf("hl7mllp adapter: DefaultCharset %q is not one of %s, %s, %s",
			cfg.DefaultCharset, hl7.CharsetASCII, hl7.CharsetLatin1, hl7.CharsetUTF8)
	}
	if cfg.TLS == nil {
		cfg.TLS = deps.TLS
	}
	if cfg.ClientTLS.ClientCAFile != "" && (cfg.TLS == nil || cfg.TLS.ClientCAs == nil) {
		return nil, errors.New("hl7mllp adapter: tls.client_ca_file is set but the TLS configuration verifies no client certificate")
	}
	cfg = cfg.withDefaults()
	cfg.MaxMessageBytes = int(ingest.FitRecordLimit(deps, Section+".max_message_bytes", int64(cfg.MaxMessageBytes)))
	return New(cfg, deps), nil
}

// New builds the adapter. It does no I/O.
func New(cfg Config, deps ingest.Deps) *Adapter {
	deps.Now = deps.Clock()
	return &Adapter{cfg: cfg.withDefaults(), deps: deps, ready: make(chan struct{}),
		cutLog: deps.Logger.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Minute})}
}

// Addr waits until Run is listening and returns the bound address.
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
		return nil, errors.New("hl7mllp adapter is not running")
	}
	return a.ln.Addr(), nil
}

// Run listens and serves until ctx is cancelled; see ingest.Adapter for the lifecycle. Each
// connection has its own goroutine, so a slow or broken sender holds up no other.
func (a *Adapter) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", a.cfg.Addr, err)
	}
	if a.cfg.TLS != nil {
		ln = tls.NewListener(ln, a.cfg.TLS)
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
	return ingest.ServeConnsLimited(ctx, ln, ingest.ConnLimits{
		Max: a.cfg.MaxConnections, MaxPerPeer: a.cfg.MaxConnectionsPerPeer, Allowed: a.cfg.allowedPeers(),
		HandshakeTimeout: a.cfg.FirstKilobyteTimeout, Peers: &a.peers,
	}, a.deps, a.serveConn)
}

// Peers lists the open connections by peer, with the subject of each one's client
// certificate when the listener verifies them (ingest.PeerLister: the adapter's status).
func (a *Adapter) Peers() []ingest.Peer { return a.peers.Peers() }

// RecordKey is the subject key of an ADT record: a hash of the patient's NHS number, or of
// the first local id, so that one patient's updates share a subject and no identifier
// appears in one.
func RecordKey(source string, p hl7.PatientIDs) string {
	if p.NHSNumber != "" {
		return ingest.IncidentKey(source, "nhs\x00"+p.NHSNumber)
	}
	if len(p.LocalIDs) > 0 {
		return ingest.IncidentKey(source, "local\x00"+p.LocalIDs[0].Authority+"\x00"+p.LocalIDs[0].ID)
	}
	return ingest.IncidentKey(source, "unknown")
}

// RecordID is the deduplication id of an ADT message: the sending application and facility
// with MSH-10, which HL7 requires to be unique per sender. A resent message gets the same id
// and is dropped by the durable store.
func RecordID(source string, h hl7.Header) string {
	sum := sha256.New()
	for _, s := range []string{h.SendingApplication, h.SendingFacility, h.ControlID} {
		sum.Write([]byte(s))
		sum.Write([]byte{0})
	}
	return source + ".adt." + hex.EncodeToString(sum.Sum(nil)[:16])
}
