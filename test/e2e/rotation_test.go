package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/test/wait"
)

// TestKeyFileRotationResumesDelivery (issue 18, must-show 3): the national service refuses
// the key in national.subscription_key_file, so delivery pauses; the file is corrected and
// delivery resumes without a restart, well inside one probe interval (an hour here, so only
// the reload can have done it); and all along /readyz answers 200 and HTTP push 202.
func TestKeyFileRotationResumesDelivery(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "lfpse-key")
	const refused = "a-key-the-national-service-refuses"
	if err := os.WriteFile(keyFile, []byte(refused+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *config.Config) {
		c.National.SubscriptionKeyFile = keyFile
		c.National.SubscriptionKey = refused // as config.Load reads it from the file
		c.National.AuthProbeInterval = time.Hour
	})
	gw := h.GW

	// Ingest must stay ready throughout: probe it until the end of the test.
	var posted atomic.Int32
	var mu sync.Mutex
	var notReady []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if resp, err := http.Get(h.Base + "/readyz"); err != nil || resp.StatusCode != 200 {
				mu.Lock()
				notReady = append(notReady, fmt.Sprintf("readyz: %v %v", resp, err))
				mu.Unlock()
			} else {
				resp.Body.Close()
			}
			if i%5 == 0 {
				id := fmt.Sprintf("ROT-%d", posted.Load())
				if r := h.post(incident(id, 1, describe(id, 1))); r.Status != 202 {
					mu.Lock()
					notReady = append(notReady, fmt.Sprintf("POST %s: %d", id, r.Status))
					mu.Unlock()
					continue
				}
				posted.Add(1)
			}
		}
	})
	stopProbing := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopProbing()

	wait.For(t, 15*time.Second, "delivery paused on the refused key, with incidents waiting", func() (bool, string) {
		st := h.get("/api/v1/status")
		return strings.Contains(st, `"paused":true`) && posted.Load() >= 3, st
	})
	if n := h.sim.Stats().Creates; n != 0 {
		t.Fatalf("%d creates with a refused key", n)
	}

	if err := os.WriteFile(keyFile, []byte(simKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()
	wait.For(t, 15*time.Second, "delivery resumed and every incident so far delivered", func() (bool, string) {
		if strings.Contains(h.get("/api/v1/status"), `"paused":true`) {
			return false, "still paused"
		}
		n := int(posted.Load())
		for i := 0; i < n; i++ {
			if rec, _ := h.record("datix", fmt.Sprintf("ROT-%d", i)); rec.State != "delivered" {
				return false, fmt.Sprintf("ROT-%d %s", i, rec.State)
			}
		}
		return n >= 3, ""
	})
	t.Logf("delivery resumed %s after the key file was fixed", time.Since(fixed).Round(time.Millisecond))
	stopProbing()

	if h.GW != gw {
		t.Fatal("the gateway was restarted")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notReady) > 0 {
		t.Errorf("ingest not ready while the key was refused or changed (%d times), first: %s", len(notReady), notReady[0])
	}
	wait.For(t, 15*time.Second, "every incident posted delivered once", func() (bool, string) {
		n := int(posted.Load())
		return h.sim.Stats().Creates == n, fmt.Sprintf("%d creates, %d posted", h.sim.Stats().Creates, n)
	})
}
