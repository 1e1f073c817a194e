package hl7mllp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
)

// TestSettingsValidate: the mllp section's checks, each problem naming its key, whether or
// not the listener is on.
func TestSettingsValidate(t *testing.T) {
	adaptertest.CheckSettings(t, hl7mllp.Defaults, ingest.Shared{}, []adaptertest.SettingsCase[hl7mllp.Config]{
		{Name: "defaults", Mutate: func(*hl7mllp.Config) {}, Want: ""},
		{Name: "off", Mutate: func(c *hl7mllp.Config) { c.Addr = "" }, Want: ""},
		{Name: "addr", Mutate: func(c *hl7mllp.Config) { c.Addr = "localhost" }, Want: "mllp.addr: must be host:port"},
		{Name: "source", Mutate: func(c *hl7mllp.Config) { c.Source = "EPR" }, Want: `mllp.source: must match [a-z0-9_-]{1,64}, got "EPR"`},
		{Name: "source checked while off", Mutate: func(c *hl7mllp.Config) { c.Addr, c.Source = "", "" }, Want: "mllp.source"},
		{Name: "message limit", Mutate: func(c *hl7mllp.Config) { c.MaxMessageBytes = 32 << 20 }, Want: "mllp.max_message_bytes: must be 1024 to 16777216"},
		{Name: "read timeout", Mutate: func(c *hl7mllp.Config) { c.ReadTimeout = 0 }, Want: "mllp.read_timeout: must be a positive duration"},
		{Name: "charset", Mutate: func(c *hl7mllp.Config) { c.DefaultCharset = "EBCDIC" }, Want: `mllp.default_charset: must be ASCII, 8859/1 or UNICODE UTF-8`},
		{Name: "demographics kept an hour at least", Mutate: func(c *hl7mllp.Config) { c.DemographicsMaxAge = time.Minute }, Want: "mllp.demographics_max_age: must be at least 1h"},
		{Name: "enrich wait", Mutate: func(c *hl7mllp.Config) { c.EnrichWait = -time.Second }, Want: "mllp.enrich_wait: must not be negative"},
		{Name: "connections", Mutate: func(c *hl7mllp.Config) { c.MaxConnections = 0 }, Want: "mllp.max_connections: must be 1 to 10000"},
		{Name: "certificate without key", Mutate: func(c *hl7mllp.Config) { c.TLSCertFile = "cert.pem" }, Want: "mllp.tls_cert_file: mllp.tls_cert_file and mllp.tls_key_file must be set together"},
		{Name: "kilobyte timeout", Mutate: func(c *hl7mllp.Config) { c.FirstKilobyteTimeout = 0 }, Want: "mllp.first_kilobyte_timeout: must be a positive duration"},
		{Name: "per-peer cap", Mutate: func(c *hl7mllp.Config) { c.MaxConnectionsPerPeer = 0 }, Want: "mllp.max_connections_per_peer: must be 1 to max_connections (64), got 0"},
		{Name: "per-peer cap over the cap", Mutate: func(c *hl7mllp.Config) { c.MaxConnectionsPerPeer = 65 }, Want: "mllp.max_connections_per_peer: must be 1 to max_connections"},
		{Name: "allowed peers", Mutate: func(c *hl7mllp.Config) { c.AllowedPeers = []string{"10.1.2.3", "10.20.0.0/16", "::1"} }, Want: ""},
		{Name: "allowed peer not an address", Mutate: func(c *hl7mllp.Config) { c.AllowedPeers = []string{"10.1.2.3", "epr.trust.nhs.uk"} }, Want: `mllp.allowed_peers[1]: must be an IP address or a CIDR prefix`},
		{Name: "client CA with TLS", Mutate: func(c *hl7mllp.Config) {
			c.TLSCertFile, c.TLSKeyFile, c.ClientTLS.ClientCAFile = "cert.pem", "key.pem", "ca.pem"
		}, Want: ""},
		{Name: "client CA without TLS", Mutate: func(c *hl7mllp.Config) { c.ClientTLS.ClientCAFile = "ca.pem" }, Want: "mllp.tls.client_ca_file: needs mllp.tls_cert_file and mllp.tls_key_file"},
	})
}

// TestCharsetNamesAreTheListeners: every name mllp.default_charset accepts is one the listener
// reads (the check is hl7.NormalizeCharset itself), in any case and with spaces around it.
func TestCharsetNamesAreTheListeners(t *testing.T) {
	for _, name := range []string{"ASCII", "US-ASCII", "ISO IR6", "8859/1", "ISO IR100", "ISO-8859-1", "ISO8859-1", "LATIN-1", "LATIN1", "UNICODE UTF-8", "UTF-8", "UTF8", "ISO IR192", "utf-8", " Latin-1 "} {
		c := hl7mllp.Defaults()
		c.DefaultCharset = name
		if err := c.Validate(ingest.Shared{}); err != nil {
			t.Errorf("mllp.default_charset %q: %v", name, err)
		}
		c.Addr = "127.0.0.1:0"
		if _, err := hl7mllp.Factory(ingest.Deps{Settings: c}); err != nil {
			t.Errorf("mllp.default_charset %q refused by the Factory: %v", name, err)
		}
	}
}

// TestFactoryFitsTheStore: built from its registered settings, the listener refuses for good
// (AR) a message longer than the store takes in one message, even under a larger
// mllp.max_message_bytes, so that the EPR does not resend it for ever.
func TestFactoryFitsTheStore(t *testing.T) {
	m, ok := ingest.Lookup(hl7mllp.Section)
	if !ok || m.Kind != hl7mllp.Kind {
		t.Fatalf("section %q: got %+v, %v", hl7mllp.Section, m, ok)
	}
	s := m.New()
	s.(*hl7mllp.Config).Addr = "127.0.0.1:0"
	store := adaptertest.NewStore()
	a, err := m.Factory(ingest.Deps{Name: hl7mllp.Kind, Settings: s, Publisher: store, Logger: zerolog.Nop(), MaxRecordBytes: 2048})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	addr, err := a.(ingest.Listener).Addr(wctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mllptest.Dial(wctx, addr.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ack, err := c.Send([]byte(goodMsg("BIG2") + "ZXX|" + strings.Repeat("x", 3000) + "\r"))
	if err != nil || ack.Code != "AR" || !strings.Contains(ack.Text, "limit of 2048") {
		t.Errorf("a message over the store's limit: got %+v, %v, want AR naming the limit of 2048", ack, err)
	}
	if ack, err := c.Send([]byte(goodMsg("SMALL"))); err != nil || ack.Code != "AA" {
		t.Errorf("a message within it: got %+v, %v, want AA", ack, err)
	}
}
