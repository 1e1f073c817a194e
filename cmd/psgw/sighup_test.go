package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/psgw/psgw/test/wait"
)

// TestSIGHUPReloadsIngestTokens runs the psgw binary as an operator would and rotates its
// ingest token files: http.ingest_tokens_file and the token_file of an entry bound to one
// source. After a real SIGHUP the new tokens are accepted, the bound one still only for its
// source, and the old ones refused, with no restart. The files are polled too (every 5 s,
// applied on the second read), but the signal is sent at once and the run's own log line
// for the signal names the keys it applied, so the test sees the SIGHUP's work, not the
// poll's.
func TestSIGHUPReloadsIngestTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the psgw binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "psgw")
	build := exec.Command("go", "build", "-o", bin, "github.com/psgw/psgw/cmd/psgw")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("building psgw: %v", err)
	}
	const (
		anyOld, anyNew     = "any-source-token-00001", "any-source-token-00002"
		datixOld, datixNew = "datix-only-token-00001", "datix-only-token-00002"
	)
	anyFile, datixFile := filepath.Join(dir, "ingest-tokens"), filepath.Join(dir, "datix-token")
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path+".new", []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	write(anyFile, anyOld+"\n")
	write(datixFile, datixOld+"\n")
	cfgFile := filepath.Join(dir, "psgw.yaml")
	if err := os.WriteFile(cfgFile, []byte(`data_dir: `+filepath.Join(dir, "data")+`
log:
  format: json
sources:
  datix: {}
  ulysses: {}
mllp:
  addr: ""
http:
  addr: 127.0.0.1:0
  ingest_tokens_file: `+anyFile+`
  ingest_tokens:
    - token_file: `+datixFile+`
      sources: [datix]
`), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "run", "--config", cfgFile)
	cmd.Env = withoutPSGW(os.Environ())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &lineLog{}
	go logs.read(stderr)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	var addr string
	wait.For(t, 60*time.Second, "psgw to start", func() (bool, string) {
		addr = logs.field("psgw started", "http")
		return addr != "", logs.tail()
	})
	n := 0
	post := func(token, source string) int {
		t.Helper()
		n++
		body := fmt.Sprintf(`{"source":%q,"local_id":"HUP-%d","event_type":"incident","occurred_at":"2025-03-14","description":"Fall from bed"}`, source, n)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/api/v1/incidents", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	check := func(when string, cases []struct {
		token, source string
		want          int
	}) {
		t.Helper()
		for _, c := range cases {
			if got := post(c.token, c.source); got != c.want {
				t.Errorf("%s: token %s… for %s: got %d, want %d", when, c.token[:12], c.source, got, c.want)
			}
		}
	}
	type tc = struct {
		token, source string
		want          int
	}
	check("before the rotation", []tc{{anyOld, "ulysses", 202}, {datixOld, "datix", 202}, {datixOld, "ulysses", 403}, {anyNew, "datix", 401}, {datixNew, "datix", 401}})

	write(anyFile, anyNew+"\n")
	write(datixFile, datixNew+"\n")
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, "psgw to log the SIGHUP's reload", func() (bool, string) {
		keys := logs.field("SIGHUP: secret files reloaded", "keys")
		return keys != "", logs.tail()
	})
	if keys := logs.field("SIGHUP: secret files reloaded", "keys"); keys != `["http.ingest_tokens[0].token_file, http.ingest_tokens_file"]` {
		t.Errorf("the SIGHUP reloaded %s, want both token files by key", keys)
	}
	check("after the SIGHUP", []tc{{anyNew, "ulysses", 202}, {datixNew, "datix", 202}, {datixNew, "ulysses", 403}, {anyOld, "ulysses", 401}, {datixOld, "datix", 401}})
	for _, tok := range []string{anyOld, anyNew, datixOld, datixNew} {
		if strings.Contains(logs.all(), tok) {
			t.Errorf("the log quotes token %s…", tok[:12])
		}
	}
}

// withoutPSGW drops PSGW_ variables, so that the test's configuration is the file's alone.
func withoutPSGW(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PSGW_") {
			out = append(out, kv)
		}
	}
	return out
}

// lineLog keeps a subprocess's JSON log lines as they arrive.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l.mu.Lock()
		l.lines = append(l.lines, sc.Text())
		l.mu.Unlock()
	}
}

// field returns the JSON text of field in the first line whose message is msg, or "".
func (l *lineLog) field(msg, field string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		var got string
		if json.Unmarshal(m["message"], &got) != nil || got != msg {
			continue
		}
		v := m[field]
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
		return string(v)
	}
	return ""
}

func (l *lineLog) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *lineLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines[max(0, len(l.lines)-5):], "\n")
}
