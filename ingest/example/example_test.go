package example_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/adaptertest"
	"github.com/psgw/psgw/ingest/example"
)

// incident is source record n: valid, distinct for each n, the same for the same n.
func incident(n int) string {
	return fmt.Sprintf(`{"source":"example","local_id":"EX-%d","event_type":"incident","occurred_at":"2025-03-14","description":"Fall from bed number %d"}`, n, n)
}

// client is a source speaking the example protocol.
type client struct {
	conn net.Conn
	r    *bufio.Reader
}

func dial(ctx context.Context, a *example.Adapter) (*client, error) {
	addr, err := a.Addr(ctx)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	return &client{conn: c, r: bufio.NewReader(c)}, nil
}

func (c *client) send(line string) (string, error) {
	if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	reply, err := c.r.ReadString('\n')
	return strings.TrimSpace(reply), err
}

// TestConformance runs the suite every adapter passes.
func TestConformance(t *testing.T) {
	adaptertest.Run(t, adaptertest.Subject{
		Kind: ingest.KindIncident,
		New: func(t *testing.T, deps ingest.Deps) (ingest.Adapter, adaptertest.Sender) {
			a := example.New(example.Config{Addr: "127.0.0.1:0"}, deps)
			send := func(ctx context.Context, n int) (adaptertest.Outcome, error) {
				c, err := dial(ctx, a)
				if err != nil {
					return 0, err
				}
				defer c.conn.Close()
				reply, err := c.send(incident(n))
				if err != nil {
					return 0, err
				}
				switch verb, _, _ := strings.Cut(reply, " "); verb {
				case "ACCEPTED", "DUPLICATE":
					return adaptertest.Accepted, nil
				case "RETRY":
					return adaptertest.Retry, nil
				case "REFUSED":
					return adaptertest.Refused, nil
				}
				return 0, fmt.Errorf("unexpected reply %q", reply)
			}
			return a, send
		},
	})
}

func TestReplies(t *testing.T) {
	store := adaptertest.NewStore()
	a := example.New(example.Config{Addr: "127.0.0.1:0", MaxLineBytes: 512}, ingest.Deps{Name: "example", Publisher: store, Logger: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	c, err := dial(wctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.conn.Close()
	for _, tc := range []struct {
		name, line, want string
	}{
		{"valid", incident(1), "ACCEPTED "},
		{"resent", incident(1), "DUPLICATE "},
		{"not json", "{", "REFUSED "},
		{"missing description", `{"source":"example","local_id":"X","event_type":"risk"}`, "REFUSED description"},
		{"too long", strings.Repeat("x", 600), "REFUSED line longer than 512 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.send(tc.line)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want prefix %q", got, tc.want)
			}
		})
	}
}

func TestFactory(t *testing.T) {
	m, ok := ingest.Lookup(example.Section)
	if !ok || m.Kind != example.Kind {
		t.Fatalf("section %q: got module %+v, %v, want kind %q registered", example.Section, m, ok, example.Kind)
	}
	if _, err := m.Factory(ingest.Deps{Settings: example.Config{}}); err == nil {
		t.Error("no Addr: got no error, want one")
	}
	if _, err := m.Factory(ingest.Deps{Settings: "wrong"}); err == nil {
		t.Error("settings of the wrong type: got no error, want one")
	}
	if _, err := m.Factory(ingest.Deps{Settings: example.Config{Addr: "127.0.0.1:0"}}); err != nil {
		t.Errorf("valid settings: %v", err)
	}
	// What the config package hands over: the registered settings, with their defaults.
	s := m.New()
	s.(*example.Config).Addr = "127.0.0.1:0"
	if _, err := m.Factory(ingest.Deps{Settings: s}); err != nil {
		t.Errorf("the registered settings: %v", err)
	}
}

// TestSettings: the section is off until addr is set, its defaults validate, and each
// problem names its key in full.
func TestSettings(t *testing.T) {
	d := example.Defaults()
	if d.Enabled() {
		t.Error("the defaults enable the adapter; it must be off until example.addr is set")
	}
	d.MaxLineBytes = 1 // not checked while off
	if err := d.Validate(ingest.Shared{}); err != nil {
		t.Errorf("an adapter that is off: got %v, want no problem", err)
	}
	on := func() example.Config {
		c := example.Defaults()
		c.Addr = "127.0.0.1:7000"
		return c
	}
	adaptertest.CheckSettings(t, on, ingest.Shared{}, []adaptertest.SettingsCase[example.Config]{
		{Name: "defaults with addr", Mutate: func(*example.Config) {}, Want: ""},
		{Name: "addr without port", Mutate: func(c *example.Config) { c.Addr = "localhost" }, Want: "example.addr: must be host:port"},
		{Name: "line limit", Mutate: func(c *example.Config) { c.MaxLineBytes = 10 }, Want: "example.max_line_bytes: must be 1024 to"},
		{Name: "idle timeout", Mutate: func(c *example.Config) { c.IdleTimeout = 0 }, Want: "example.idle_timeout: must be a positive duration"},
		{Name: "connections", Mutate: func(c *example.Config) { c.MaxConnections = -1 }, Want: "example.max_connections: must not be negative"},
	})
}
