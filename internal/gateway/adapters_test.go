package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/example" // the one line that adds an adapter (ingest/all holds the shipped ones)
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/test/wait"
)

// TestAnAdapterIsAddedByItsFolderAndOneImport proves docs/adapters.md's recipe with the
// template adapter: nothing in the gateway or the config package names it, yet a config file
// with an example section runs it in a real gateway, and what it accepts is stored, mapped
// and shown like any other adapter's records. Without the section it does not run.
func TestAnAdapterIsAddedByItsFolderAndOneImport(t *testing.T) {
	dir := t.TempDir()
	base := "data_dir: " + filepath.Join(dir, "data") + `
http:
  addr: 127.0.0.1:0
mllp:
  addr: ""
queue:
  sync: 1s
`
	off := load(t, dir, "off.yaml", base)
	for _, a := range off.EnabledAdapters() {
		if a.Module.Kind == example.Kind {
			t.Fatal("the example adapter runs without an example section")
		}
	}
	cfg := load(t, dir, "on.yaml", base+"example:\n  addr: 127.0.0.1:0\n  max_line_bytes: 4096\n")

	g, err := gateway.Start(context.Background(), cfg, gateway.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := g.AdapterAddr(ctx, example.Kind)
	if addr == "" {
		t.Fatal("the example adapter is not listening")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	in := bufio.NewReader(conn)
	send := func(line string) string {
		t.Helper()
		if _, err := conn.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		reply, err := in.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(reply)
	}
	incident := `{"source":"example","local_id":"EX-GW-1","event_type":"incident","occurred_at":"2025-03-14","description":"Fall from bed"}`
	if reply := send(incident); !strings.HasPrefix(reply, "ACCEPTED ") {
		t.Fatalf("got %q, want ACCEPTED", reply)
	}
	if reply := send(incident); !strings.HasPrefix(reply, "DUPLICATE ") {
		t.Errorf("the same incident again: got %q, want DUPLICATE", reply)
	}
	// The settings came from the file: a line over example.max_line_bytes is refused.
	if reply := send(strings.Repeat("x", 5000)); reply != "REFUSED line longer than 4096 bytes" {
		t.Errorf("a line over the configured limit: got %q", reply)
	}

	// Stored and mapped: the ledger holds it, held for want of a national endpoint.
	api := "http://" + g.HTTPAddr()
	wait.For(t, 30*time.Second, "the incident held in the ledger", func() (bool, string) {
		var rec struct {
			State string `json:"state"`
		}
		code := getJSON(t, api+"/api/v1/incidents/example/EX-GW-1", &rec)
		return code == http.StatusOK && rec.State == "held", rec.State
	})
	var status struct {
		Adapters []struct {
			Name    string `json:"name"`
			State   string `json:"state"`
			Records uint64 `json:"records"`
		} `json:"adapters"`
	}
	getJSON(t, api+"/api/v1/status", &status)
	var names []string
	for _, a := range status.Adapters {
		names = append(names, a.Name)
		if a.Name == example.Kind && (a.State != "running" || a.Records != 1) {
			t.Errorf("example adapter status: got %+v, want running with 1 record", a)
		}
	}
	if got := strings.Join(names, ","); got != "example,httppush" {
		t.Errorf("adapters on the status page: got %s, want example,httppush", got)
	}
}

func load(t *testing.T, dir, name, yaml string) config.Config {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}
