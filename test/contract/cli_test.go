package contract

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/psgw/psgw/test/wait"
)

// §1: unknown keys are an error at start-up, with the key's name in the message.
func TestRunRefusesUnknownYAMLKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, yaml, key string
	}{
		{"top level", "bogus_setting: 1\n", "bogus_setting"},
		{"in http", "http:\n  adress: 127.0.0.1:1\n", "adress"},
		{"in national", "national:\n  subscription_keyy: abc\n", "subscription_keyy"},
		{"in queue", "queue:\n  nats_uri: nats://127.0.0.1:1\n", "nats_uri"},
		{"in a source", "sources:\n  datix:\n    code_mapz: {}\n", "code_mapz"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "psgw.yaml")
			if err := os.WriteFile(cfg, []byte(c.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			env := append(cleanEnv(),
				"PSGW_DATA_DIR="+filepath.Join(dir, "data"),
				"PSGW_HTTP_ADDR="+freeAddr(t),
				"PSGW_MLLP_ADDR="+freeAddr(t),
			)
			r := runPsgw(t, dir, env, nil, 20*time.Second, "run", "--config", cfg)
			if r.code == 0 {
				t.Fatalf("psgw run with unknown key %q exited 0; output:\n%s%s", c.key, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout+r.stderr, c.key) {
				t.Errorf("psgw run with unknown key %q: the message does not name the key:\n%s%s", c.key, r.stdout, r.stderr)
			}
		})
	}
}

// §1: every fixed key can be overridden by PSGW_<SECTION>_<KEY>. A YAML file sets each fixed key
// (except queue.nats_url, see TestRunQueueNATSURLAndKeyFile) to a decoy; the environment sets the
// real value. The gateway must use the environment's values.
func TestRunEnvOverridesEveryFixedKey(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	dir := t.TempDir()
	decoyData := filepath.Join(dir, "decoy-data")
	realData := filepath.Join(dir, "real-data")
	decoyHTTP, decoyMLLP := freeAddr(t), freeAddr(t)
	yaml := fmt.Sprintf(`data_dir: %s
http:
  addr: %s
mllp:
  addr: %s
national:
  base_url: http://%s
  subscription_key: decoy-key
  taxonomy_version: 5
`, decoyData, decoyHTTP, decoyMLLP, freeAddr(t))
	cfg := filepath.Join(dir, "psgw.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gwOpts{
		args: []string{"--config", cfg},
		env: map[string]string{
			"PSGW_DATA_DIR":                  realData,
			"PSGW_NATIONAL_BASE_URL":         s.url,
			"PSGW_NATIONAL_SUBSCRIPTION_KEY": simKey,
			"PSGW_NATIONAL_TAXONOMY_VERSION": "6",
		},
	})
	// http.addr and mllp.addr: the gateway answers on the environment's addresses (startGateway
	// waited for /readyz there), not on the decoys.
	for _, a := range []string{decoyHTTP, decoyMLLP} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("something listens on the YAML decoy address %s; the environment should have overridden it", a)
		}
	}
	conn := dialMLLP(t, g.mllp)
	ack := exchange(t, conn, adtMessage("A08", uid("OVR"), pidPlain()))
	if code, _, _ := msa(ack); code != "AA" {
		t.Errorf("MLLP on PSGW_MLLP_ADDR: want AA, got %q", ack)
	}
	conn.Close()
	// data_dir
	if entries, err := os.ReadDir(realData); err != nil || len(entries) == 0 {
		t.Errorf("PSGW_DATA_DIR %s holds nothing (err %v); the embedded JetStream should keep its files there", realData, err)
	}
	if entries, err := os.ReadDir(decoyData); err == nil && len(entries) > 0 {
		t.Errorf("the YAML data_dir %s was used despite PSGW_DATA_DIR", decoyData)
	}
	// national.base_url, national.subscription_key and national.taxonomy_version: an incident
	// reaches the simulator, in the v6 profile.
	id := uid("OVR")
	checkAccepted(t, g.postIncident(t, fullIncident(id)))
	rec := g.waitState(t, "datix", id, "delivered")
	ev, ok := s.eventByNationalID(t, rec.NationalID)
	if !ok {
		t.Fatalf("delivered incident %s (national id %s) is not at the simulator", id, rec.NationalID)
	}
	for _, p := range profiles(ev.resource()) {
		if !strings.HasSuffix(p, "-6") {
			t.Errorf("PSGW_NATIONAL_TAXONOMY_VERSION=6: delivered profile %q does not end in -6", p)
		}
	}
	if len(profiles(ev.resource())) == 0 {
		t.Errorf("delivered resource has no meta.profile")
	}
}

// profiles returns meta.profile of a resource.
func profiles(res map[string]any) []string {
	meta, _ := res["meta"].(map[string]any)
	ps, _ := meta["profile"].([]any)
	var out []string
	for _, p := range ps {
		if s, ok := p.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// §1: PSGW_QUEUE_NATS_URL overrides queue.nats_url (an external NATS), and
// national.subscription_key_file in YAML is read as the key.
func TestRunQueueNATSURLAndKeyFile(t *testing.T) {
	t.Parallel()
	natsURL, monitor := startNATS(t)
	s := startSim(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "lfpse-key")
	if err := os.WriteFile(keyFile, []byte(simKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`queue:
  nats_url: nats://%s
national:
  base_url: %s
  subscription_key_file: %s
`, freeAddr(t), s.url, keyFile)
	cfg := filepath.Join(dir, "psgw.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gwOpts{
		args:   []string{"--config", cfg},
		noMLLP: true,
		env:    map[string]string{"PSGW_QUEUE_NATS_URL": natsURL, "PSGW_MLLP_ADDR": ""},
	})
	id := uid("NATS")
	checkAccepted(t, g.postIncident(t, fullIncident(id)))
	g.waitState(t, "datix", id, "delivered") // the key from the file was accepted
	// The external server holds the gateway's streams and the incident.
	var jsz struct {
		Streams  int   `json:"streams"`
		Messages int64 `json:"messages"`
	}
	code, b := httpGet(t, "http://"+monitor+"/jsz")
	if code != 200 || json.Unmarshal(b, &jsz) != nil {
		t.Fatalf("external NATS /jsz: %d %s", code, b)
	}
	if jsz.Streams == 0 || jsz.Messages == 0 {
		t.Errorf("the external NATS at PSGW_QUEUE_NATS_URL holds %d streams and %d messages; the gateway should keep its data there", jsz.Streams, jsz.Messages)
	}
}

// startNATS runs a JetStream-enabled nats-server (built from the module cache) and returns its
// client address and monitoring address.
func startNATS(t *testing.T) (string, string) {
	t.Helper()
	u, m, _ := startNATSProc(t)
	return u, m
}

// startNATSProc is startNATS with a function that stops the server.
func startNATSProc(t *testing.T) (string, string, func()) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nats-server")
	build := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building nats-server: %v\n%s", err, out)
	}
	addr, mon := freeAddr(t), freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	_, mport, _ := net.SplitHostPort(mon)
	cmd := exec.Command(bin, "-a", host, "-p", port, "-m", mport, "-js", "-sd", t.TempDir())
	var out syncBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-done
	}
	t.Cleanup(stop)
	wait.Until(t, 15*time.Second, "nats-server to serve /healthz", func() bool {
		resp, err := http.Get("http://" + mon + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	var once sync.Once
	return "nats://" + addr, mon, func() { once.Do(stop) }
}

// §1: psgw map --source NAME FILE.
func TestMapCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, v any) string {
		p := filepath.Join(dir, name)
		var b []byte
		if s, ok := v.(string); ok {
			b = []byte(s)
		} else {
			b = mustJSON(t, v)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full := fullIncident("MAP-1")
	full["description"] = "Late dose. Patient " + nhsText + " was on the ward."
	valid := write("valid.json", full)
	invalid := write("invalid.json", map[string]any{"source": "datix"})
	env := func(extra ...string) []string {
		return append(cleanEnv(), extra...)
	}
	map5 := runPsgw(t, dir, env(), nil, 30*time.Second, "map", "--source", "datix", valid)

	t.Run("valid incident exits 0 with the resource on stdout", func(t *testing.T) {
		r := map5
		if r.code != 0 {
			t.Fatalf("exit %d, want 0; stderr:\n%s", r.code, r.stderr)
		}
		var res map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("stdout is not one JSON value: %v\n%s", err, tail(r.stdout, 500))
		}
		if res["resourceType"] != "AdverseEvent" {
			t.Errorf("resourceType %v, want AdverseEvent", res["resourceType"])
		}
		ps := profiles(res)
		if len(ps) == 0 {
			t.Errorf("no meta.profile")
		}
		for _, p := range ps {
			if !strings.HasSuffix(p, "-5") {
				t.Errorf("default taxonomy: profile %q does not end in -5", p)
			}
		}
		if strings.TrimSpace(r.stderr) != "" {
			t.Errorf("a valid resource has no problems, but stderr says:\n%s", r.stderr)
		}
		assertNoIdentifiers(t, "psgw map output (the resource that would be sent)", r.stdout)
	})
	t.Run("PSGW_NATIONAL_TAXONOMY_VERSION=6", func(t *testing.T) {
		r := runPsgw(t, dir, env("PSGW_NATIONAL_TAXONOMY_VERSION=6"), nil, 30*time.Second, "map", "--source", "datix", valid)
		if r.code != 0 {
			t.Fatalf("exit %d, want 0; stderr:\n%s", r.code, r.stderr)
		}
		var res map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("stdout is not JSON: %v", err)
		}
		ps := profiles(res)
		if len(ps) == 0 {
			t.Fatalf("no meta.profile")
		}
		for _, p := range ps {
			if !strings.HasSuffix(p, "-6") {
				t.Errorf("profile %q does not end in -6", p)
			}
		}
	})
	t.Run("invalid incident exits 1 with one problem per line on stderr", func(t *testing.T) {
		r := runPsgw(t, dir, env(), nil, 30*time.Second, "map", "--source", "datix", invalid)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1; stdout %s stderr %s", r.code, r.stdout, r.stderr)
		}
		lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
		if len(lines) < 3 {
			t.Errorf("three fields are missing (local_id, event_type, description); want a line each, got:\n%s", r.stderr)
		}
		for _, f := range []string{"local_id", "event_type", "description"} {
			n := 0
			for _, l := range lines {
				if strings.Contains(l, f) {
					n++
				}
			}
			if n == 0 {
				t.Errorf("no stderr line names %s:\n%s", f, r.stderr)
			}
		}
		if out := strings.TrimSpace(r.stdout); out != "" && !json.Valid([]byte(out)) {
			t.Errorf("stdout is neither empty nor JSON:\n%s", out)
		}
	})
	t.Run("bad check digit exits 1", func(t *testing.T) {
		inc := fullIncident("MAP-2")
		inc["patients"] = []any{map[string]any{"nhs_number": nhsBad[:9] + string(rune('0'+(nhsBad[9]-'0'+1)%10))}}
		p := write("badnhs.json", inc)
		r := runPsgw(t, dir, env(), nil, 30*time.Second, "map", "--source", "datix", p)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1; stderr %s", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "nhs_number") {
			t.Errorf("stderr does not name nhs_number:\n%s", r.stderr)
		}
	})
	usage := []struct {
		name string
		args []string
	}{
		{"no --source", []string{"map", valid}},
		{"no file", []string{"map", "--source", "datix"}},
		{"file does not exist", []string{"map", "--source", "datix", filepath.Join(dir, "nope.json")}},
		{"unknown flag", []string{"map", "--source", "datix", "--frobnicate", valid}},
		{"two files", []string{"map", "--source", "datix", valid, valid}},
		{"--source without a value", []string{"map", valid, "--source"}},
	}
	for _, u := range usage {
		t.Run("usage error: "+u.name, func(t *testing.T) {
			r := runPsgw(t, dir, env(), nil, 30*time.Second, u.args...)
			if r.code != 2 {
				t.Errorf("psgw %s: exit %d, want 2; stderr:\n%s", strings.Join(u.args, " "), r.code, r.stderr)
			}
			if strings.TrimSpace(r.stderr) == "" {
				t.Errorf("a usage error should say something on stderr")
			}
		})
	}
}

// §1: psgw sim --addr HOST:PORT serves the national API there.
func TestSimAddrFlag(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	r := doReq(t, http.MethodGet, s.url+"/adverse-event/fhir/metadata", nil, map[string]string{"Ocp-Apim-Subscription-Key": simKey})
	if r.status != 200 {
		t.Fatalf("psgw sim --addr %s: GET metadata: %s", s.addr, r)
	}
}
