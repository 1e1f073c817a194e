package crash

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOneGatewayPerDataDir: a second psgw on a data directory that a running one holds exits
// at once, naming the directory and the holder's pid, and leaves the first one serving; once
// the first is SIGKILLed, the directory starts again at once (the kernel dropped its lock).
func TestOneGatewayPerDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test skipped in -short mode")
	}
	bin := binary(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	env := func(addr string) []string {
		return append(os.Environ(), "PSGW_DATA_DIR="+dataDir, "PSGW_HTTP_ADDR="+addr, "PSGW_MLLP_ADDR=", "PSGW_LOG_LEVEL=info")
	}
	first := &gatewayProc{t: t, bin: bin, addr: freePort(t)}
	first.env = env(first.addr)
	first.mustStart()
	defer first.stop()
	pid := first.current.cmd.Process.Pid

	second := exec.Command(bin, "run")
	second.Env = env(freePort(t))
	var out bytes.Buffer
	second.Stdout, second.Stderr = &out, &out
	start := time.Now()
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("the second psgw exited 0; output:\n%s", out.String())
		}
	case <-time.After(20 * time.Second):
		_ = second.Process.Kill()
		<-done
		t.Fatalf("the second psgw on the same data_dir was still running after 20 s; output:\n%s", out.String())
	}
	took := time.Since(start)
	msg := out.String()
	abs, _ := filepath.Abs(dataDir)
	if !strings.Contains(msg, abs) || !strings.Contains(msg, "process "+strconv.Itoa(pid)) {
		t.Errorf("the refusal does not name the directory %s and the holder's pid %d:\n%s", abs, pid, msg)
	}
	t.Logf("second psgw refused in %s: %s", took.Round(time.Millisecond), strings.TrimSpace(msg))
	if first.current.cmd.ProcessState != nil {
		t.Fatal("the first psgw stopped")
	}
	if ok, _ := ready(first.addr); !ok {
		t.Error("the first psgw is no longer ready after the second was refused")
	}

	first.kill() // SIGKILL: no clean release
	again := &gatewayProc{t: t, bin: bin, addr: freePort(t)}
	again.env = env(again.addr)
	again.mustStart()
	again.stop()
}
